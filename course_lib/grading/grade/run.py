"""`course grade`: grade a whole class in parallel sandboxes, every check given secret inputs and decided here.

For one assignment the plan (plan.py) is made once: the reference solution runs in the sandbox, which tells
the host which checks each test cell makes and with which params. Then each submission is taken in
(intake.py) and graded in its own sandbox (submission.py): restored from the source with only the student's
answers, run cell by cell, each check given inputs prepared here from a secret seed (derived from the
course's secret, the assignment, the student and the check: nothing in the sandbox can predict them, and each
student gets their own), and the data it hands back judged here. The sandbox holds no judge, reference
answer or label, and not the names the assignment asks students to write.

Executors (workers.py, cluster.py) only produce plain results; this process alone writes the gradebook,
grades.csv, the autograded notebooks formgrader shows, feedback and state files (store.py), saving each
result as it arrives, with its lateness (late.py). An unchanged, already graded submission is not graded
again. A submission whose grading or saving fails in any way gets the status `error` with a one-line reason;
the run goes on.
"""

import os
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path

import nbformat
from tqdm.auto import tqdm

from course_lib.errors import CourseError
from course_lib.grading import protocol
from course_lib.grading.authoring.release import generate
from course_lib.grading.grade import late
from course_lib.grading.grade.gradebook import GradebookWriter, check_reachable, gradebook_url, write_csv, write_lock
from course_lib.grading.grade.intake import Submission, extract_zip, find_submissions
from course_lib.grading.grade.plan import Plan, fingerprint, prepare
from course_lib.grading.grade.store import Store
from course_lib.grading.grade.submission import Graded, failed, grade_task, one_line
from course_lib.grading.grade.workers import Executor, LocalWorkers
from course_lib.grading.nbgrader_api import CourseFolders, cell_timeout_s
from course_lib.grading.sandbox.bubblewrap import Limits, missing_requirement
from course_lib.paths import course_root


class CannotGrade(CourseError, RuntimeError):
    """This machine cannot run the sandbox, or the options given contradict each other."""


def grade_class(assignment: str, submissions: Path | None = None, workers: int | None = None,
                wall_s: float | None = None, memory_mb: int | None = None, db_url: str | None = None,
                scheduler: str | None = None) -> list[Graded]:
    """`course grade`: `grade` with the caps given (the rest as `Limits` and nbgrader_config.py set them), on
    `workers` local sandboxes or the Dask cluster at `scheduler`. Refuses to grade unsandboxed."""
    if scheduler and workers:
        raise CannotGrade("--workers sets local sandboxes; with --dask the cluster's worker threads do")
    missing = missing_requirement()
    if missing:
        raise CannotGrade(missing)
    caps = {k: v for k, v in {"wall_s": wall_s, "memory_mb": memory_mb}.items() if v}
    limits = Limits(cell_timeout_s=cell_timeout_s(), **caps)
    cluster = nullcontext()
    if scheduler:  # imported only when asked for: dask takes a second to import
        from course_lib.grading.grade.cluster import DaskWorkers

        cluster = DaskWorkers.connect(scheduler)
    with cluster as executor:
        return grade(assignment, submissions, workers, limits, db_url=db_url, executor=executor)


def summary(assignment: str, results: list[Graded]) -> str:
    """One line: how many submissions, and how many of each status."""
    counts = Counter(g.status for g in results)
    return f"{assignment}: {len(results)} submissions: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))


def grade(assignment: str, submissions: Path | None = None, workers: int | None = None,
          limits: Limits | None = None, progress: bool = True, db_url: str | None = None,
          executor: Executor | None = None, root: Path | None = None) -> list[Graded]:
    """Grade every submission of `assignment`; returns the results (also in the gradebook and grades.csv).
    `db_url`: the gradebook (default: nbgrader_config.py's, else gradebook.db); `executor`: where sandboxes
    run (default: `workers` local threads); `root`: the course folder (default: this course). An unreachable
    gradebook stops it before anything is written."""
    root = root or course_root()
    db_url = gradebook_url(root, db_url)
    check_reachable(db_url)
    store, limits = Store(assignment, root, db_url), limits or Limits(cell_timeout_s=cell_timeout_s(root))
    executor = executor or LocalWorkers(workers or os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="course-grade-") as scratch:
        scratch = Path(scratch)
        with ThreadPoolExecutor(1) as side:  # the gradebook learns the assignment's cells meanwhile
            recorded = side.submit(_record_release, assignment, scratch / "release", db_url, root)
            plan = prepare(assignment, limits, store.folders.grading(assignment), root)
            recorded.result()
        folder = _submissions_folder(submissions, scratch, root)
        unchanged, todo = _unchanged_and_todo(store, plan, find_submissions(folder, assignment))
        saving = _Saving(store, plan, folder)
        with GradebookWriter(db_url) as gradebook:
            results = [saving.save(gradebook, graded) for graded in unchanged]
            for graded, executed, html in tqdm(executor.map(grade_task, plan, todo, limits), total=len(todo),
                                               disable=not progress, desc="grading"):
                results.append(saving.save(gradebook, graded, executed, html))
    invalid = [g for g in results if g.status == protocol.INVALID]
    write_csv(root / "grades.csv", assignment, [_row(assignment, g) for g in store.saved() + invalid])
    return sorted(results, key=lambda g: g.student_id)


def _submissions_folder(submissions: Path | None, scratch: Path, root: Path) -> Path:
    """The submitted/ folder to read: the course's own by default, or a .zip unpacked into `scratch`."""
    folder = submissions or CourseFolders(root).step("submitted")
    return extract_zip(folder, scratch / "unzipped") if folder.suffix == ".zip" else folder


def _fingerprint_of(plan: Plan, submission: Submission) -> str:
    body = nbformat.writes(submission.notebook) if submission.notebook is not None else submission.reason
    return fingerprint(plan.fingerprint, body, submission.status or "")


def _unchanged_and_todo(store: Store, plan: Plan, submissions) -> tuple[list[Graded], list]:
    """Saved results of submissions graded before, unchanged since, and (submission, fingerprint) to grade."""
    unchanged, todo = [], []
    for sub in submissions:
        key = _fingerprint_of(plan, sub)
        previous = store.previous(sub.student_id) if sub.status != protocol.INVALID else None
        if previous and previous.fingerprint == key and previous.status != protocol.ERROR:
            unchanged.append(previous)
        else:
            todo.append((sub, key))
    return unchanged, todo


class _Saving:
    """Saves each result as it arrives, in this (the main) thread only: pages and scores for a new one, its
    lateness, then its state file. A result that cannot be saved becomes status `error` with the reason."""

    def __init__(self, store: Store, plan: Plan, folder: Path):
        self.store, self.plan, self.folder = store, plan, folder
        self.late_plugin = late.plugin(store.root)

    def save(self, gradebook, graded: Graded, executed=None, html: str | None = None) -> Graded:
        if graded.status == protocol.INVALID:
            return graded  # no notebook: nothing to save, only a grades.csv row
        try:
            if executed is not None:
                self.store.save_pages(gradebook, graded, executed, html)
            graded = late.apply(gradebook, graded, self.folder / graded.student_id / self.store.assignment,
                                self.store.assignment, self.late_plugin)
        except Exception as err:  # noqa: BLE001 - one student's files must not stop the class
            gradebook.gradebook.db.rollback()
            graded = failed(self.plan, graded.student_id, graded.fingerprint, f"saving failed: {one_line(err)}")
        self.store.record(graded)
        return graded


def _row(assignment: str, g: Graded) -> dict:
    return {"student_id": g.student_id, "assignment": assignment, "score": g.score, "max_score": g.max_score,
            "status": g.status, "flags": "; ".join(g.flags), "duration_s": g.duration_s, "late_s": g.late_s,
            "penalty": g.penalty}


def _record_release(assignment: str, scratch: Path, db_url: str, root: Path) -> None:
    """Record the assignment and its cells in the gradebook, holding its writer lock (a concurrent run may be
    creating the same rows)."""
    with write_lock(db_url):
        generate(assignment, scratch, db_url, root)
