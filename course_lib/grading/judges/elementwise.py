"""Judges for element-wise functions (ex01's activations and their derivatives): one Judge per check, made
of parts, each a student function compared with its reference on the grader's inputs for one seed.

The sandbox is given only seeds and the names of the functions to call (kernel.probes.elementwise re-creates
the inputs from each seed); the references are called here, on this side.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from course_lib.grading.judges import Judge, Prepared
from course_lib.grading.judges.verdict import Misconception, elementwise_verdict
from course_lib.grading.kernel.inputs import elementwise_inputs
from course_lib.grading.kernel.probes import Outcome


@dataclass(frozen=True)
class Part:
    """The student's `fn`(x, *extra) against `reference`(x, *extra) on the inputs for seed + `seed_offset`;
    `name` is how messages call it."""

    name: str
    fn: str
    reference: Callable
    extra: tuple = ()
    seed_offset: int = 0
    misconceptions: Sequence[Misconception] = ()
    warn_free: bool = False
    extremes: bool = True


def _outcomes(value, n: int) -> list[Outcome]:
    """The probe's outcomes for one part, checked to be what a probe writes (ValueError otherwise)."""
    if not (isinstance(value, list) and len(value) == n and all(isinstance(o, Outcome) for o in value)):
        raise ValueError("not one outcome per input")
    for o in value:
        if o.error is None and not (isinstance(o.value, np.ndarray) and o.value.dtype == np.float64):
            raise ValueError("an outcome without a value")
    return value


def judge(*parts: Part) -> Judge:
    """A Judge that checks every part; the first part that fails gives the message."""

    def prepare(params: dict) -> Prepared:
        return Prepared({"parts": [{"fn": p.fn, "extra": list(p.extra), "seed": params["seed"] + p.seed_offset,
                                    "extremes": p.extremes} for p in parts]})

    def decide(data, prepared: Prepared, params: dict) -> str | None:
        if not isinstance(data, list) or len(data) != len(parts):
            return f"{parts[0].name}: the check returned {type(data).__name__}, not one result per part"
        for part, spec, value in zip(parts, prepared.given["parts"], data, strict=True):
            inputs = elementwise_inputs(spec["seed"], extremes=spec["extremes"])
            expected = [np.asarray(part.reference(x, *part.extra), dtype=np.float64) for x in inputs]
            message = elementwise_verdict(part.name, _outcomes(value, len(inputs)), inputs, expected,
                                          part.misconceptions, bool(params.get("hidden")), part.warn_free)
            if message:
                return message
        return None

    return Judge(prepare, decide)
