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
import tomllib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import nbformat

from course_lib.grading.nbgrader_api import api, cell_timeout_s
from course_lib.grading.release import generate
from course_lib.grading.sandbox import Limits
from course_lib.grading.sources import SourceError, read_source
from course_lib.paths import course_root

CHECK_WALL_S = 600  # a whole notebook under `course check`: its trainings on a busy machine


@dataclass(frozen=True)
class Mutant:
    """A plausible wrong solution: in cell `cell`, the text `find` replaced by `replace`."""

    name: str
    cell: str
    find: str
    replace: str


@dataclass(frozen=True)
class Score:
    """Autograded points of one submission, and the test cells that lost points."""

    student: str
    points: float
    max_points: float
    failed_tests: tuple[str, ...] = ()


@dataclass
class CheckResult:
    """One grader's scores for solution, blank and mutants; `graded` holds `course grade`'s (None when it did
    not run: `skipped` says why)."""

    assignment: str
    solution: Score
    blank: Score
    mutants: dict[str, Score] = field(default_factory=dict)
    graded: "CheckResult | None" = None
    skipped: str | None = None

    @property
    def killed(self) -> list[str]:
        return [name for name, s in self.mutants.items() if s.points < self.solution.max_points]

    @property
    def ok(self) -> bool:
        full = self.solution.points == self.solution.max_points
        mine = full and self.blank.points == 0 and len(self.killed) == len(self.mutants)
        return mine and (self.graded is None or self.graded.ok)


def load_mutants(assignment: str) -> list[Mutant]:
    path = course_root() / "solutions" / assignment / "mutants.toml"
    if not path.exists():
        return []
    try:
        entries = tomllib.loads(path.read_text())["mutant"]
        return [Mutant(**entry) for entry in entries]
    except (tomllib.TOMLDecodeError, KeyError, TypeError) as err:
        raise SourceError(f"{path}: malformed mutants file ({type(err).__name__}: {err})") from None


def mutate(nb, mutant: Mutant, assignment: str):
    """A copy of the source notebook with the mutant applied; the text must occur exactly once in the cell."""
    nb = nbformat.from_dict(nb)
    cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == mutant.cell]
    if len(cells) != 1 or cells[0].source.count(mutant.find) != 1:
        raise SourceError(f"solutions/{assignment}/mutants.toml: mutant '{mutant.name}': the text to replace "
                          f"must occur exactly once in cell '{mutant.cell}'")
    cells[0].source = cells[0].source.replace(mutant.find, mutant.replace)
    return nb


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
    folder = root / "submitted" / student / assignment
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / f"{assignment}.ipynb")


def _result(assignment: str, mutants: list[Mutant], scores: dict[str, Score]) -> CheckResult:
    return CheckResult(assignment, scores["solution"], scores["blank"],
                       {m.name: scores[f"mutant-{i:02d}"] for i, m in enumerate(mutants, 1)})


def _nbgrader_scores(root: Path, assignment: str, students, workers: int) -> dict[str, Score]:
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = {s: pool.submit(_autograde_one, str(root), assignment, s) for s in students}
        return {s: f.result() for s, f in futures.items()}


def _course_grade_scores(root: Path, assignment: str, workers: int) -> dict[str, Score]:
    """`course grade` of the scratch course's submissions (its own gradebook and secret)."""
    from course_lib.grading.grade import grade

    limits = Limits(wall_s=CHECK_WALL_S, cell_timeout_s=cell_timeout_s())
    results = grade(assignment, root / "submitted", workers, limits, progress=False,
                    db_url=f"sqlite:///{root / 'graded.db'}", root=root)
    return {g.student_id: Score(g.student_id, g.score, g.max_score,
                                tuple(cell for cell, points in g.cell_scores.items() if points == 0))
            for g in results}


def check(assignment: str, workers: int | None = None, sandboxed: bool = True) -> CheckResult:
    """Release, then grade solution, blank and every mutant of `assignment` with nbgrader and (if `sandboxed`
    and this machine can run the sandbox) with `course grade`."""
    from course_lib.grading.sandbox import missing_requirement

    source = read_source(assignment)
    mutants = load_mutants(assignment)
    submissions = {"solution": source, **{f"mutant-{i:02d}": mutate(source, m, assignment)
                                          for i, m in enumerate(mutants, 1)}}
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


def _line(name: str, r: CheckResult) -> list[str]:
    line = (f"{name:<32} {r.solution.points:>4g} / {r.solution.max_points:<3g} {r.blank.points:>8g} "
            f"{len(r.killed):>7} / {len(r.mutants):<6}")
    return [line] + [f"    survived: {m}" for m in r.mutants if m not in r.killed]


def format_table(results: list[CheckResult]) -> str:
    """assignment and grader | solution | blank | mutants killed, one line each, plus surviving mutants."""
    lines = [f"{'assignment (grader)':<32} {'solution':>10} {'blank':>8} {'mutants killed':>15}"]
    for r in results:
        lines += _line(f"{r.assignment} (nbgrader)", r)
        if r.graded is not None:
            lines += _line(f"{r.assignment} (course grade)", r.graded)
        else:
            lines.append(f"{r.assignment} (course grade): not run: {r.skipped}")
    return "\n".join(lines)
