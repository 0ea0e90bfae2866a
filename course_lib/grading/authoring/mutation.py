"""`course check`: the instructor's CI for an assignment.

Releases the assignment in a scratch course, then grades the full solution (must get every autograded point),
the untouched student version (must get 0) and each mutant in solutions/<a>/mutants.toml, a plausible wrong
solution (must lose points), twice: with plain nbgrader (tests in the student's kernel, the notebook's seeds;
submissions in parallel, each with its own copy of the scratch gradebook) and with `course grade` (sandboxed,
secret inputs, judged on the host), when this machine can run its sandbox.
"""

import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import nbformat

from course_lib.grading.authoring.mutants import Mutant, mutate, named
from course_lib.grading.authoring.release import generate
from course_lib.grading.authoring.sources import read_source
from course_lib.grading.nbgrader_api import CourseFolders, api, cell_timeout_s
from course_lib.grading.sandbox.bubblewrap import Limits

CHECK_WALL_S = 600  # a whole notebook under `course check`: its trainings on a busy machine


@dataclass(frozen=True)
class Score:
    """Autograded points of one submission, and the test cells that lost points."""

    student: str
    points: float
    max_points: float
    failed_tests: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()  # under `course grade`: what the grader said in each failed test cell


@dataclass
class MutationResult:
    """One grader's scores for solution, blank and mutants; `graded` holds `course grade`'s (None when it did
    not run: `skipped` says why)."""

    assignment: str
    solution: Score
    blank: Score
    mutants: dict[str, Score] = field(default_factory=dict)
    graded: "MutationResult | None" = None
    skipped: str | None = None

    @property
    def killed(self) -> list[str]:
        return [name for name, s in self.mutants.items() if s.points < self.solution.max_points]

    @property
    def ok(self) -> bool:
        full = self.solution.points == self.solution.max_points
        mine = full and self.blank.points == 0 and len(self.killed) == len(self.mutants)
        return mine and (self.graded is None or self.graded.ok)


def _autograde_one(root: str, assignment: str, student: str) -> Score:
    """Autograde one submission with a private copy of the gradebook (runs in a worker process)."""
    from nbgrader.api import Gradebook

    db = Path(root) / f"gradebook-{student}.db"
    shutil.copy(Path(root) / "gradebook.db", db)
    result = api(Path(root), f"sqlite:///{db}").autograde(assignment, student, force=True, create=True)
    if not result["success"]:
        return Score(student, 0.0, float("nan"), ("autograde failed: " + (result["error"] or "")[-300:],))
    with Gradebook(f"sqlite:///{db}") as gradebook:
        submission = gradebook.find_submission(assignment, student)
        failed = tuple(g.name for nb in submission.notebooks for g in nb.grades
                       if g.cell_type == "code" and g.score < g.max_score)
        return Score(student, submission.code_score, submission.max_code_score, failed)


def _submit(root: Path, assignment: str, student: str, nb) -> None:
    folder = CourseFolders(root).submitted(assignment, student)
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / f"{assignment}.ipynb")


def _result(assignment: str, mutants: dict[str, Mutant], scores: dict[str, Score]) -> MutationResult:
    return MutationResult(assignment, scores["solution"], scores["blank"],
                       {m.name: scores[student] for student, m in mutants.items()})


def _nbgrader_scores(root: Path, assignment: str, students, workers: int) -> dict[str, Score]:
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = {s: pool.submit(_autograde_one, str(root), assignment, s) for s in students}
        return {s: f.result() for s, f in futures.items()}


def _course_grade_scores(root: Path, assignment: str, workers: int) -> dict[str, Score]:
    """`course grade` of the scratch course's submissions (its own gradebook and secret)."""
    from course_lib.grading.grade import grade

    limits = Limits(wall_s=CHECK_WALL_S, cell_timeout_s=cell_timeout_s())
    results = grade(assignment, CourseFolders(root).step("submitted"), workers, limits, progress=False,
                    db_url=f"sqlite:///{root / 'graded.db'}", root=root)
    return {g.student_id: Score(g.student_id, g.score, g.max_score,
                                tuple(cell for cell, points in g.cell_scores.items() if points == 0),
                                tuple(f"{cell}: {text}" for cell, text in g.messages.items()) + g.flags)
            for g in results}


def mutation_test(assignment: str, workers: int | None = None, sandboxed: bool = True) -> MutationResult:
    """Release, then grade solution, blank and every mutant of `assignment` with nbgrader and (if `sandboxed`
    and this machine can run the sandbox) with `course grade`."""
    from course_lib.grading.sandbox.bubblewrap import missing_requirement

    source = read_source(assignment)
    mutants = named(assignment)
    submissions = {"solution": source, **{student: mutate(source, m, assignment) for student, m in mutants.items()}}
    workers = workers or os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        released = generate(assignment, root)
        submissions["blank"] = nbformat.read(released / f"{assignment}.ipynb", as_version=4)
        for student, nb in submissions.items():
            _submit(root, assignment, student, nb)
        result = _result(assignment, mutants, _nbgrader_scores(root, assignment, submissions, workers))
        result.skipped = missing_requirement() if sandboxed else "not asked for"
        if result.skipped is None:
            result.graded = _result(assignment, mutants, _course_grade_scores(root, assignment, workers))
    return result


def _line(name: str, r: MutationResult) -> list[str]:
    line = (f"{name:<32} {r.solution.points:>4g} / {r.solution.max_points:<3g} {r.blank.points:>8g} "
            f"{len(r.killed):>7} / {len(r.mutants):<6}")
    lost = [f"    solution lost {m}" for m in r.solution.messages] if r.solution.points < r.solution.max_points else []
    return [line] + lost + [f"    survived: {m}" for m in r.mutants if m not in r.killed]


def format_table(results: list[MutationResult]) -> str:
    """assignment and grader | solution | blank | mutants killed, one line each, plus surviving mutants."""
    lines = [f"{'assignment (grader)':<32} {'solution':>10} {'blank':>8} {'mutants killed':>15}"]
    for r in results:
        lines += _line(f"{r.assignment} (nbgrader)", r)
        if r.graded is not None:
            lines += _line(f"{r.assignment} (course grade)", r.graded)
        else:
            lines.append(f"{r.assignment} (course grade): not run: {r.skipped}")
    return "\n".join(lines)
