"""Plain data: what a probe hands to the host can be read back safely, and nothing else is.

(ex02's judged checks, once tested here, are in test_grading_ex02.py.)
"""

import json

import numpy as np
import pytest

from course_lib.grading import plain
from course_lib.grading.kernel.layers import Probe
from course_lib.grading.kernel.probes import Outcome
from course_lib.grading.kernel.training import TrainingOutcome

# ---- plain data ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [
    None, True, 3, -2.5, "text", float("nan"), float("inf"), [1, "a", None], (1, (2.0, "b")),
    {"a": [1, 2], "b": {"c": None}},
    np.array([[0.5, np.nan], [-np.inf, 3e38]], dtype=np.float32), np.arange(6, dtype=np.int64).reshape(2, 3),
    np.array([True, False]), np.float32(1.5), np.int16(7),
    Outcome(np.array([1.0, 2.0]), "float32", "ndarray", None, ("overflow",)),
    TrainingOutcome(0.5, 1.0, None, 12, None, np.array([0, 1, 1])),
    Probe({"dx": Outcome(np.array([1.0]), "float32", "ndarray")}, None, ("overflow",)),
])
def test_plain_values_survive_a_json_round_trip(value):
    back = plain.decode(json.loads(json.dumps(plain.encode(value))))
    assert _same(back, value)


def _same(a, b) -> bool:
    if isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    if isinstance(b, float) and np.isnan(b):
        return np.isnan(a)
    if isinstance(b, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(b, dict):
        return isinstance(a, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in b)
    if hasattr(b, "__dataclass_fields__"):
        return type(a) is type(b) and all(_same(getattr(a, f), getattr(b, f)) for f in b.__dataclass_fields__)
    return a == b and type(a) is type(b.item() if isinstance(b, np.generic) else b)


class Unregistered:
    pass


@pytest.mark.parametrize("value", [
    object(), Unregistered(), {1: "int key"}, np.array(["a", "b"]), np.array([object()]), lambda: 1, {1.5},
])
def test_anything_else_is_refused_when_encoding(value):
    with pytest.raises(plain.PlainDataError):
        plain.encode(value)


@pytest.mark.parametrize("item", [
    {"data": "builtins.object", "fields": {}},                                   # not registered: never built
    {"data": "course_lib.grading.kernel.probes.Outcome", "fields": {"__class__": 1}},   # unknown field
    {"array": {"dtype": "object", "shape": [1], "flat": [1]}},
    {"array": {"dtype": "float64", "shape": [3], "flat": [1.0]}},                # wrong size
    {"array": {"dtype": "float64", "shape": [1], "flat": [[1.0]]}},
    {"float": "not a number"}, {"tuple": 5}, {"unknown": 1}, {"dict": [1]},
])
def test_malformed_or_foreign_json_is_a_plain_data_error(item):
    with pytest.raises(plain.PlainDataError):
        plain.decode(item)
