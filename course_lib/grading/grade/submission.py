"""Grading one submission: restore it, run it in a sandbox with its own secret inputs, judge what came back.

`grade_task` is what an executor runs for each submission, on a local thread or a Dask worker: it returns
plain data (the result, the graded notebook the host rebuilt, the feedback page) and never raises, so one
submission's failure is that submission's status `error`, never the end of the class's run.
"""

import threading
import time
from dataclasses import dataclass, field

import nbformat

from course_lib.grading import judges, protocol
from course_lib.grading.authoring.sources import grade_id
from course_lib.grading.grade.decide import CellVerdict, decide
from course_lib.grading.grade.feedback import feedback_notebook, hidden_lines, to_html
from course_lib.grading.grade.intake import Submission
from course_lib.grading.grade.plan import Plan, code_cells, runs_by_cell
from course_lib.grading.grade.restore import restore
from course_lib.grading.kernel.channel import CheckFailed
from course_lib.grading.sandbox.bubblewrap import Limits
from course_lib.grading.sandbox.session import Refused, SessionResult, run_in_sandbox

REFERENCE_FLAG = "uses the course's reference"
TAMPERING = ("edited read-only", "deleted cell", "changed the grading metadata", "duplicate grade id",
             "unknown grade id", REFERENCE_FLAG)


@dataclass(frozen=True)
class Graded:
    """One student's result, as plain data (also what the state file holds)."""

    student_id: str
    status: str
    score: float
    max_score: float
    flags: tuple[str, ...] = ()
    duration_s: float = 0.0
    cell_scores: dict[str, float] = field(default_factory=dict)
    fingerprint: str = ""
    cpu_s: float = 0.0
    messages: dict[str, str] = field(default_factory=dict)  # failed test cell -> what the grader told the student
    late_s: float = 0.0  # seconds after the due date (late.py); 0 on time, or without a timestamp or due date
    penalty: float = 0.0  # the configured late penalty, in points (score is before it)


Result = tuple[Graded, nbformat.NotebookNode | None, str | None]


def _status(session_status: str, flags: tuple[str, ...]) -> str:
    if any(f.startswith(TAMPERING) for f in flags):
        return protocol.FLAGGED
    return session_status.split(":")[0]


def student_server(plan: Plan, notebook, student: str):
    """A `serve` for a student's run: a test cell's checks get their inputs in the order the reference run
    made them, with that run's params and a secret seed for this student; any other ask is refused."""

    def serve(index: int, position: int, check: str, params: dict):
        expected = plan.expected.get(grade_id(notebook.cells[index]) or "", [])
        if position >= len(expected) or expected[position].check != check:
            raise Refused(f"{check} is not a check this cell makes")
        trusted = expected[position].params
        return judges.serve(check, judges.secret_params(check, trusted, plan.secret, plan.assignment, student))

    return serve


def _executed(notebook, result: SessionResult, verdicts: dict[str, CellVerdict]):
    """The graded notebook as the host saw it: the restored cells, the outputs read from the sandbox (capped),
    and under each failed test cell the grader's message, as an error output."""
    nb = nbformat.from_dict(notebook)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        run = result.cells.get(index)
        cell.outputs = [nbformat.from_dict(o) for o in run.outputs] if run else []
        cell.execution_count = run.execution_count if run else None
        verdict = verdicts.get(grade_id(cell) or "")
        if verdict and verdict.message:
            failed = CheckFailed(verdict.message)  # shown as the student saw it in their own Jupyter
            cell.outputs.append(nbformat.v4.new_output("error", ename=type(failed).__name__, evalue=verdict.message,
                                                       traceback=failed._render_traceback_()))
    return nb


def grade_one(plan: Plan, submission: Submission, limits: Limits,
              fingerprint: str) -> tuple[Graded, nbformat.NotebookNode | None]:
    """Grade one submission (runs in a worker thread; the sandbox is a separate process)."""
    max_score = sum(plan.test_points.values())
    if submission.status:
        return Graded(submission.student_id, submission.status, 0.0, max_score, (submission.reason,),
                      fingerprint=fingerprint), None
    start = time.monotonic()
    restored, restore_flags = restore(plan.source, plan.released, submission.notebook)
    serve = student_server(plan, restored, submission.student_id)
    result = run_in_sandbox(code_cells(restored, plan.test_points), serve, limits, plan.written)
    verdicts = decide(plan.expected, runs_by_cell(restored, result))
    scores = {cell: (points if verdicts[cell].passed else 0.0) for cell, points in plan.test_points.items()}
    used = tuple(f"{REFERENCE_FLAG} ({name})" for name in result.references)
    flags = submission.flags + restore_flags + used + ((result.status,) if result.status != protocol.GRADED else ())
    messages = {cell: v.message for cell, v in verdicts.items() if v.message}
    graded = Graded(submission.student_id, _status(result.status, flags), sum(scores.values()), max_score, flags,
                    round(time.monotonic() - start, 2), scores, fingerprint, result.cpu_seconds, messages)
    return graded, _executed(restored, result, verdicts)


_RENDERING = threading.Lock()  # feedback's exporter is one per process, and nbconvert's are not thread-safe


def feedback_html(plan: Plan, graded: Graded, executed: nbformat.NotebookNode) -> str:
    """The student's feedback page: scores, flags, their code and outputs, the grader's messages; hidden test
    cells as released (their source removed) and any hidden-test line redacted."""
    header = (f"# Feedback: {plan.assignment}\n\nStudent: `{graded.student_id}` · autograded score "
              f"**{graded.score:g} / {graded.max_score:g}** · status: {graded.status}"
              + "".join(f"\n- {flag}" for flag in graded.flags)
              + "\n\nWritten answers are graded by hand and are not in this score.")
    nb = feedback_notebook(executed, plan.released, plan.test_points, graded.cell_scores, header)
    with _RENDERING:
        return to_html(nb, hidden_lines(plan.source))


def one_line(err: BaseException) -> str:
    """An exception as one line for a status reason: its type and the first line of its message."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:300]}" if text else type(err).__name__


def failed(plan: Plan, student: str, fingerprint: str, reason: str) -> Graded:
    """The result of a submission whose grading failed: status `error`, no points, the reason as its flag."""
    return Graded(student, protocol.ERROR, 0.0, sum(plan.test_points.values()), (reason,), fingerprint=fingerprint)


def grade_task(plan: Plan, submission: Submission, fingerprint: str, limits: Limits) -> Result:
    """Grade one submission on whichever machine runs this (a local thread or a Dask worker) and render its
    feedback page there too. Any failure is this submission's status `error`, never the run's end."""
    try:
        graded, executed = grade_one(plan, submission, limits, fingerprint)
        return graded, executed, feedback_html(plan, graded, executed) if executed is not None else None
    except Exception as err:  # noqa: BLE001 - one submission's failure must not stop the class
        return failed(plan, submission.student_id, fingerprint, f"grading failed: {one_line(err)}"), None, None
