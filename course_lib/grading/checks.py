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
                warn_free: bool = False) -> None:
    """Check fn(x, *extra) against reference(x, *extra) on the grader's inputs for `seed`; the outcomes are
    logged for an outside verdict, which re-creates the inputs from the seed."""
    inputs = elementwise_inputs(seed, extremes=extremes)
    outcomes = probes.elementwise(fn, inputs, *extra)
    probelog.record("elementwise", name=name, reference=f"{reference.__module__}.{reference.__name__}",
                    seed=seed, extra=list(extra), hidden=hidden, extremes=extremes, warn_free=warn_free,
                    outcomes=[probelog.outcome_to_json(o) for o in outcomes])
    expected = [np.asarray(reference(x, *extra), dtype=np.float64) for x in inputs]
    message = elementwise_verdict(name, outcomes, inputs, expected, misconceptions, hidden, warn_free)
    if message:
        raise AssertionError(message)
