"""Compare plain outcomes with the reference and explain a failure the way a teacher would.

Nothing here calls student code: every function takes `Outcome`s (plain data) and reference arrays, so the
verdict can be computed in a process the submission cannot touch.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from course_lib.grading.judges.tolerance import tolerance
from course_lib.grading.kernel.probes import Outcome


@dataclass(frozen=True)
class Misconception:
    """A plausible wrong answer (`wrong`, a function of the input) and the message that names it."""

    wrong: Callable[[np.ndarray], np.ndarray]
    message: str


def _describe_input(x: np.ndarray, hidden: bool) -> str:
    if hidden:
        return f"a hidden test input (shape {x.shape}, dtype {x.dtype})"
    return f"input shape {x.shape}, dtype {x.dtype}: {np.array2string(x, precision=3, threshold=12)}"


OVERFLOW = ("numpy warned '{}': use a form that cannot overflow for large |x| (np.where computes both of its "
            "branches on every element, so it warns too: compute each form where it applies)")


def first_difference(got: np.ndarray, want: np.ndarray, bad: np.ndarray, dtype: str) -> str:
    """The first wrong element: where, what came back at full precision (and its dtype), what was expected."""
    index = tuple(int(k) for k in np.argwhere(bad)[0])
    where = f" at index {list(index)}" if index else ""
    return f"first{where}: returned {float(got[index])!r} ({dtype}), expected {float(want[index])!r}"


def _first_problem(outcome: Outcome, x: np.ndarray, expected: np.ndarray, warn_free: bool,
                   hidden: bool) -> str | None:
    """What is wrong with one outcome (None when it matches); a hidden input's values are never shown."""
    rtol, atol = tolerance(x.dtype)
    if outcome.error:
        return outcome.error
    if outcome.value.shape != expected.shape:
        return f"returned shape {outcome.value.shape}, expected {expected.shape} (the input's shape)"
    if outcome.dtype != str(x.dtype):
        return f"returned dtype {outcome.dtype} for a {x.dtype} input: keep the input's dtype"
    if not np.allclose(outcome.value, expected, rtol=rtol, atol=atol, equal_nan=True):
        bad = ~np.isclose(outcome.value, expected, rtol=rtol, atol=atol, equal_nan=True)
        if outcome.warnings and not np.isfinite(outcome.value[bad]).all():  # e.g. inf / inf from exp(1000)
            overflowed = OVERFLOW.format(outcome.warnings[0])
            return f"returned nan or inf at {int(bad.sum())} of {bad.size} elements: {overflowed}"
        shown = "" if hidden else f" ({first_difference(outcome.value, expected, bad, outcome.dtype)})"
        return f"wrong values at {int(bad.sum())} of {bad.size} elements{shown}"
    if warn_free and outcome.warnings:
        return OVERFLOW.format(outcome.warnings[0])
    return None


def _reproduces(outcome: Outcome, x: np.ndarray, wrong: Callable) -> bool:
    rtol, atol = tolerance(x.dtype)
    with np.errstate(all="ignore"):
        expected = np.asarray(wrong(x), dtype=np.float64)
    return (outcome.value is not None and outcome.value.shape == expected.shape
            and np.allclose(outcome.value, expected, rtol=rtol, atol=atol, equal_nan=True))


def _named_misconception(outcomes, inputs, misconceptions) -> str | None:
    """The message of the first misconception that reproduces every outcome, if any."""
    for m in misconceptions:
        if all(_reproduces(o, x, m.wrong) for o, x in zip(outcomes, inputs, strict=True)):
            return m.message
    return None


def elementwise_verdict(name: str, outcomes: Sequence[Outcome], inputs: Sequence[np.ndarray],
                        expected: Sequence[np.ndarray], misconceptions: Sequence[Misconception] = (),
                        hidden: bool = False, warn_free: bool = False) -> str | None:
    """None if every outcome matches `expected`; otherwise one message for the student.

    A known misconception is named first; else the first failing input is described (only by shape and dtype
    when `hidden`, so hidden inputs are never revealed). `warn_free` also fails outcomes that made numpy warn."""
    problems = [(x, _first_problem(o, x, e, warn_free, hidden))
                for o, x, e in zip(outcomes, inputs, expected, strict=True)]
    failing = [(x, p) for x, p in problems if p]
    if not failing:
        return None
    named = _named_misconception(outcomes, inputs, misconceptions)
    if named:
        return f"{name}: {named}"
    x, problem = failing[0]
    return f"{name}: {problem} on {_describe_input(x, hidden)} ({len(failing)} of {len(inputs)} test inputs fail)"
