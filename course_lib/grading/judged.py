"""A check in two halves: a probe that runs the student's code and keeps plain data, and a judge that decides.

An exercise check runs the student's code through a probe (course_lib.grading.probes, layers, modules,
training), which returns plain data only: arrays, numbers, strings and registered dataclasses of them. It
then calls

    judged.check(judge_affine, probes, seed=seed, hidden=hidden)

which writes the judge's name, the params and the data to the probe log, and asks the judge here too, so a
student running the notebook (and nbgrader) sees the verdict and its message. `course grade` never reads that
verdict: it reads the log outside the sandbox and calls the same judge itself (course_lib.grading.decide).

A judge is `judge_*(data, **params) -> message or None`, defined in a course_lib.grading.exercises module. It
must decide from the data and params alone, re-computing every reference value and label itself (from the
seed), because nothing the student's kernel computed besides the probed data reaches it. The in-kernel call
gets the data after an encode/decode round trip, so both places judge exactly the same plain values.
"""

import importlib
from collections.abc import Callable

from course_lib.grading import plain, probelog

JUDGE_PACKAGE = "course_lib.grading.exercises"
PARAM_TYPES = (str, int, float, bool, type(None))


def name_of(judge: Callable) -> str:
    return f"{judge.__module__}.{judge.__name__}"


def resolve(dotted: str) -> Callable:
    """The judge a record names; ValueError unless it is a judge_* function of an exercises module."""
    module, _, name = str(dotted).rpartition(".")
    if not module.startswith(JUDGE_PACKAGE + ".") or not name.startswith("judge_"):
        raise ValueError(f"not a judge: {dotted}")
    judge = getattr(importlib.import_module(module), name, None)
    if not callable(judge) or getattr(judge, "__module__", None) != module:
        raise ValueError(f"not a judge: {dotted}")
    return judge


def check(judge: Callable, data, **params) -> None:
    """Log (judge, params, data) for an outside verdict, then judge here; AssertionError with the message
    when the judge finds a problem. `params` must be JSON scalars (seed, hidden, threshold, ...)."""
    bad = [k for k, v in params.items() if not isinstance(v, PARAM_TYPES)]
    if bad:
        raise TypeError(f"judge params must be plain scalars: {bad}")
    encoded = plain.encode(data)
    probelog.record("judged", judge=name_of(resolve(name_of(judge))), params=params, data=encoded)
    message = judge(plain.decode(encoded), **params)
    if message:
        raise AssertionError(message)


def passes(record: dict) -> bool:
    """Re-judge a logged record: the named judge on its decoded data. Anything malformed fails."""
    try:
        judge = resolve(record["judge"])
        params = record["params"]
        if not isinstance(params, dict) or not all(isinstance(v, PARAM_TYPES) for v in params.values()):
            return False
        return judge(plain.decode(record["data"]), **params) is None
    except Exception:  # noqa: BLE001 - a forged or malformed record is a failed check, never a crashed run
        return False


def borrowed(*fns: Callable) -> list[str]:
    """The names of those functions that are course_lib's own: a reference imported instead of written."""
    return [getattr(fn, "__name__", type(fn).__name__) for fn in fns
            if str(getattr(fn, "__module__", None) or "").startswith("course_lib")]


def borrowed_message(names: list[str]) -> str | None:
    """The message for `borrowed` names (None when there are none)."""
    return f"{names[0]} is course_lib's reference, imported: write your own" if names else None
