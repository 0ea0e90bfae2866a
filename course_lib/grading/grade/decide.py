"""Decide each test cell on the host, from what the session observed and the judges' verdicts.

A test cell earns its points only if it ran to its end without an error and within its timeout, and made
exactly the checks the reference solution's run made there, in that order, each given its inputs by the host
and each handing back data its judge passes. Anything missing, refused, duplicated, malformed or unexpected
fails the cell, with a one-line reason for the student.
"""

from dataclasses import dataclass

from course_lib.grading import judges
from course_lib.grading.sandbox.session import CellRun


@dataclass(frozen=True)
class Expected:
    """One check a test cell makes, as the reference solution's run made it: name and params."""

    check: str
    params: dict


@dataclass(frozen=True)
class CellVerdict:
    """Whether a test cell passed, and what the student is told when it did not."""

    passed: bool
    message: str | None = None


PASSED = CellVerdict(True)


def _failed(message: str) -> CellVerdict:
    return CellVerdict(False, message)


def _checks_problem(expected: list[Expected], run: CellRun) -> str | None:
    """Why the checks the cell made are not the ones it must make (None when they are)."""
    made = [a.check for a in run.asks]
    if len(made) > len(expected) or any(a.refused for a in run.asks):
        return "the cell made checks the grader did not expect (was a check function replaced?)"
    if len(made) < len(expected):
        if not run.ok:
            return "the cell raised an error before its checks ran: see its output"
        return f"the cell made {len(made)} of its {len(expected)} checks"
    return None


def decide_cell(expected: list[Expected], run: CellRun | None) -> CellVerdict:
    """The verdict on one test cell."""
    if run is None or not run.done:
        return _failed("the notebook stopped (crashed or timed out) before this cell finished")
    if run.timed_out:
        return _failed("the cell ran past its time limit")
    problem = _checks_problem(expected, run)
    if problem:
        return _failed(problem)
    for asked in run.asks:
        if asked.problem:
            return _failed(f"{asked.check}: {asked.problem}")
        if not asked.answered:
            return _failed(f"{asked.check}: the check handed back nothing (did the cell stop inside it?)")
        message = judges.verdict_on(asked.served, asked.data, {"host_cpu_seconds": run.cpu_seconds})
        if message:
            return _failed(message)
    if not run.ok:
        return _failed("the cell raised an error after its checks: see its output")
    return PASSED


def decide(expected: dict[str, list[Expected]], runs_by_cell: dict[str, CellRun]) -> dict[str, CellVerdict]:
    """Test cell grade id -> verdict, for every test cell in `expected`."""
    return {cell: decide_cell(checks, runs_by_cell.get(cell)) for cell, checks in expected.items()}
