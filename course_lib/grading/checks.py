"""What exercise test cells call: probe the student's function, then judge the plain outcomes.

    from course_lib.grading import checks
    checks.elementwise("relu", relu, reference=ref.relu, seed=0)

Raises AssertionError with a teaching message when the check fails. Inside nbgrader both steps run in the
student's kernel; `course grade` runs the verdict step outside it.
"""

from collections.abc import Callable, Sequence

import numpy as np

from course_lib.grading import probelog, probes
from course_lib.grading.inputs import elementwise_inputs
from course_lib.grading.verdict import Misconception, elementwise_verdict


def elementwise(name: str, fn: Callable, reference: Callable, seed: int, extra: tuple = (),
                misconceptions: Sequence[Misconception] = (), hidden: bool = False, extremes: bool = True,
                warn_free: bool = False, inputs: Sequence[np.ndarray] | None = None) -> None:
    """Check fn(x, *extra) against reference(x, *extra) on the grader's inputs for `seed` (or on `inputs`,
    which are then not logged: an outside verdict can only re-create seeded inputs)."""
    given_inputs = inputs
    inputs = elementwise_inputs(seed, extremes=extremes) if inputs is None else inputs
    outcomes = probes.elementwise(fn, inputs, *extra)
    if given_inputs is None:
        probelog.record("elementwise", name=name, reference=f"{reference.__module__}.{reference.__name__}",
                        seed=seed, extra=list(extra), hidden=hidden, extremes=extremes, warn_free=warn_free,
                        outcomes=[probelog.outcome_to_json(o) for o in outcomes])
    expected = [np.asarray(reference(x, *extra), dtype=np.float64) for x in inputs]
    message = elementwise_verdict(name, outcomes, inputs, expected, misconceptions, hidden, warn_free)
    if message:
        raise AssertionError(message)
