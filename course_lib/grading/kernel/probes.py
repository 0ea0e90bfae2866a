"""Run a student's function on the grader's inputs and keep only plain data.

An `Outcome` holds a float64 numpy copy of what came back (plus its dtype and type name) or the error it
raised, so nothing the student's code returns (a subclass, an object with a custom __eq__) reaches the
comparison. Inputs are copied before each call, so a function that writes into its argument cannot change
the next call's input or the reference's.
"""

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np

from course_lib.grading import plain
from course_lib.grading.kernel.inputs import elementwise_inputs

T = TypeVar("T")


@plain.registered
@dataclass(frozen=True)
class Outcome:
    """What one call produced: `value` (float64 array) with `dtype` and `type_name`, or `error`."""

    value: np.ndarray | None
    dtype: str | None = None
    type_name: str | None = None
    error: str | None = None
    warnings: tuple[str, ...] = ()


def _plain(result) -> Outcome:
    """Copy a returned value into plain data; anything not array-like becomes an error outcome."""
    type_name = type(result).__name__
    if not isinstance(result, np.ndarray | float | int | np.floating | np.integer):
        return Outcome(None, None, type_name, f"returned a {type_name}, not a numpy array")
    array = np.array(result)  # an exact ndarray (subclasses dropped), never a view of student memory
    if array.dtype.kind not in "fiub":
        return Outcome(None, str(array.dtype), type_name, f"returned an array of dtype {array.dtype}")
    return Outcome(array.astype(np.float64), str(array.dtype), type_name)


def student_error(err: BaseException) -> str:
    """How a check reports an exception the student's code raised: "ValueError: message"."""
    return f"{type(err).__name__}: {err}"


def guarded(body: Callable[[], T]) -> tuple[T | None, str | None, tuple[str, ...]]:
    """(body(), None, warnings), or (None, student_error, warnings) when it raised: a student's bug is data
    here, not a crash of the grader. The warnings are the numpy floating-point ones it caused (overflow,
    invalid value, division by zero; not harmless underflow), sorted and without repeats."""
    result, error = None, None
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="warn", under="ignore"):
        warnings.simplefilter("always")
        try:
            result = body()
        except Exception as err:  # noqa: BLE001 - the one place a probe catches what the student's code raised
            error = student_error(err)
    return result, error, tuple(sorted({str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)}))


def call(fn: Callable, *args) -> Outcome:
    """fn(*copies of args) as an Outcome (see `guarded` for errors and warnings)."""
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    outcome, error, found = guarded(lambda: _plain(fn(*copies)))
    return replace(Outcome(None, error=error) if error else outcome, warnings=found)


def call_each(fn: Callable, inputs: Sequence[np.ndarray], *extra) -> list[Outcome]:
    """One Outcome per input: fn(x, *extra)."""
    return [call(fn, x, *extra) for x in inputs]


def elementwise(**functions: Callable) -> Callable:
    """A probe for element-wise functions: `given` = {"parts": [{"fn", "extra", "seed", "extremes"}, ...]}
    (what course_lib.grading.judges.elementwise prepares); for each part, one Outcome per grader input of
    functions[fn](x, *extra), the inputs re-created here from the part's seed."""

    def probe(given) -> list[list[Outcome]]:
        return [call_each(functions[part["fn"]], elementwise_inputs(part["seed"], extremes=part["extremes"]),
                          *part["extra"]) for part in given["parts"]]

    return probe
