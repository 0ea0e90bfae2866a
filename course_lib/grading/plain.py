"""Plain data: what a probe may hand to a judge, as JSON that carries no code.

`encode` turns numbers, strings, numpy arrays (of numbers or booleans), lists, tuples, str-keyed dicts and
instances of `registered` dataclasses into JSON values; `decode` turns them back and refuses anything else
with `PlainDataError`. Nothing is ever imported or called while decoding (a dataclass is only built if its
class was registered by the grader's own modules), so a record written by a student's kernel can be read
safely outside the sandbox.

    {"array": {"dtype": "float32", "shape": [2], "flat": [0.5, "nan"]}}    # np.array([0.5, nan], float32)
    {"data": "course_lib.grading.kernel.probes.Outcome", "fields": {...}}   # a registered dataclass
"""

import dataclasses
import math

import numpy as np

_REGISTERED: dict[str, type] = {}
ARRAY_KINDS = "fiub"


class PlainDataError(ValueError):
    """A value that is not plain data (or a JSON value that does not decode to any)."""


def registered(cls: type) -> type:
    """Class decorator: let instances of this dataclass travel as plain data (its fields must be plain too)."""
    _REGISTERED[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return cls


def _float(value: float):
    """JSON has no NaN or infinities: those travel as the strings float() reads back."""
    return value if math.isfinite(value) else repr(value)


def _encode_array(array: np.ndarray) -> dict:
    if array.dtype.kind not in ARRAY_KINDS:
        raise PlainDataError(f"an array of dtype {array.dtype} is not plain data")
    flat = array.reshape(-1).tolist()
    if array.dtype.kind == "f":
        flat = [_float(v) for v in flat]
    return {"array": {"dtype": str(array.dtype), "shape": list(array.shape), "flat": flat}}


def encode(value):
    """A JSON value for `value`; PlainDataError for anything that is not plain data."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, np.generic):
        return encode(value.item())
    if isinstance(value, np.ndarray):
        return _encode_array(value)
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, tuple):
        return {"tuple": [encode(v) for v in value]}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise PlainDataError("only dicts with string keys are plain data")
        return {"dict": {k: encode(v) for k, v in value.items()}}
    name = f"{type(value).__module__}.{type(value).__qualname__}"
    if _REGISTERED.get(name) is type(value):
        return {"data": name, "fields": {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    raise PlainDataError(f"a {type(value).__name__} is not plain data")


def _decode_array(spec: dict) -> np.ndarray:
    dtype = np.dtype(spec["dtype"])
    if dtype.kind not in ARRAY_KINDS:
        raise PlainDataError(f"an array of dtype {dtype} is not plain data")
    flat = spec["flat"]
    if not isinstance(flat, list) or not all(isinstance(v, int | float | str) for v in flat):
        raise PlainDataError("an array's values must be numbers")
    values = np.array([float(v) for v in flat] if dtype.kind == "f" else flat, dtype=dtype)
    return values.reshape([int(n) for n in spec["shape"]])


def _decode_dict(item: dict):
    if len(item) == 1 and "float" in item:
        return float(item["float"])
    if len(item) == 1 and "tuple" in item:
        return tuple(decode(v) for v in item["tuple"])
    if len(item) == 1 and "dict" in item and isinstance(item["dict"], dict):
        return {str(k): decode(v) for k, v in item["dict"].items()}
    if len(item) == 1 and "array" in item and isinstance(item["array"], dict):
        return _decode_array(item["array"])
    if set(item) == {"data", "fields"} and item["data"] in _REGISTERED and isinstance(item["fields"], dict):
        cls = _REGISTERED[item["data"]]
        names = {f.name for f in dataclasses.fields(cls)}
        if not set(item["fields"]) <= names:
            raise PlainDataError(f"unknown fields for {item['data']}")
        return cls(**{k: decode(v) for k, v in item["fields"].items()})
    raise PlainDataError(f"not plain data: an object with keys {sorted(item)[:5]}")


def decode(item):
    """The value `encode` wrote; PlainDataError for anything else (KeyError, TypeError and ValueError from a
    malformed value are reported as PlainDataError too)."""
    try:
        if item is None or isinstance(item, bool | int | float | str):
            return item
        if isinstance(item, list):
            return [decode(v) for v in item]
        if isinstance(item, dict):
            return _decode_dict(item)
    except PlainDataError:
        raise
    except (KeyError, TypeError, ValueError) as err:
        raise PlainDataError(f"malformed plain data ({type(err).__name__}: {err})") from None
    raise PlainDataError(f"not plain data: a {type(item).__name__}")
