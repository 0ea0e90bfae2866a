"""`course grade`: grade a whole class in parallel sandboxes and decide every test outside them.

For one assignment: the reference solution is run once in the sandbox to learn which checks each test cell
makes; then each submission is taken in (intake), rebuilt from the source with only the student's answers
(restore), executed in its own sandbox (sandbox), and its probe records are judged in this process (decide).
Workers only produce plain results; this process alone writes the gradebook, grades.csv, the autograded
notebooks formgrader shows, and feedback. A result is saved per student as it arrives, so a killed run,
run again, grades only what is left; an unchanged, already graded submission is not graded again.

Where the sandboxes run is the executor's business: `LocalWorkers` (threads on this machine, the default) or
`cluster.DaskWorkers` (a Dask cluster). Either runs `grade_task` and hands its plain result back here.
"""

import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import nbformat
from tqdm.auto import tqdm

from course_lib.grading import decide, sandbox, slots
from course_lib.grading.feedback import feedback_notebook, hidden_lines, to_html
from course_lib.grading.gradebook import GradebookWriter, check_reachable, gradebook_url, write_csv, write_lock
from course_lib.grading.intake import Submission, extract_zip, find_submissions
from course_lib.grading.release import generate
from course_lib.grading.restore import restore
from course_lib.grading.sources import grade_id, read_source
from course_lib.paths import course_root

MAX_LOG_BYTES = 5 * 2**20


@dataclass(frozen=True)
class Setup:
    """What every submission of one assignment is graded against."""

    assignment: str
    source: nbformat.NotebookNode
    released: nbformat.NotebookNode
    test_points: dict[str, float]
    expected: dict[str, set[str]]
    fingerprint: str


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


def _test_points(source) -> dict[str, float]:
    """Autograded test cells (graded, not answers) and their points."""
    meta = (c.metadata.get("nbgrader", {}) for c in source.cells)
    return {m["grade_id"]: float(m["points"]) for m in meta if m.get("grade") and not m.get("solution")}


def _read_log(workdir: Path) -> str:
    path = workdir / "probes.jsonl"
    if not path.is_file() or path.is_symlink():
        return ""
    with open(path, "rb") as f:
        return f.read(MAX_LOG_BYTES).decode(errors="replace")


def _records_by_cell(workdir: Path, notebook) -> dict[str, list[dict]]:
    """For the trusted reference run: each test cell's records, cut from the log by the executor's offsets."""
    raw = (workdir / "probes.jsonl").read_bytes() if (workdir / "probes.jsonl").exists() else b""
    offsets = json.loads((workdir / "out.ipynb.offsets.json").read_text())
    by_cell, start = {}, 0
    for index, cell in enumerate(notebook.cells):
        end = offsets.get(str(index)) or start
        by_cell[grade_id(cell)] = decide.read_log(raw[start:end].decode())
        start = end
    return by_cell


def reference_run(assignment: str, source, test_points, limits: sandbox.Limits, workroot: Path) -> dict:
    """Run the solution in the sandbox; return test cell -> expected check keys. Refuses an assignment whose
    test cells cannot all be decided outside the sandbox, or whose solution fails its own checks."""
    with slots.claim() as worker:  # a concurrent run on this machine may be grading
        result = sandbox.run(source, workroot / "reference", limits, worker)
    if result.notebook is None or result.status != "ok":
        raise decide.UndecidableCheck(f"{assignment}: the reference solution did not run cleanly ({result.status})")
    by_cell = _records_by_cell(result.workdir, result.notebook)
    silent = [cell for cell in test_points if not by_cell.get(cell)]
    if silent:
        raise decide.UndecidableCheck(f"{assignment}: test cell '{silent[0]}' makes no logged check, so it "
                                      "cannot be decided outside the sandbox")
    expected = decide.expected_checks({cell: by_cell[cell] for cell in test_points})
    failing = [c for c, ok in decide.decide(expected, [r for rs in by_cell.values() for r in rs]).items() if not ok]
    if failing:
        raise decide.UndecidableCheck(f"{assignment}: the reference solution fails test cell '{failing[0]}'")
    return expected


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def grading_code_version() -> str:
    """A fingerprint of this grading code (a Dask worker's must equal the main process's)."""
    folder = Path(__file__).parent
    return _fingerprint(*(p.read_text() for p in sorted(folder.rglob("*.py"))))


def prepare(assignment: str, limits: sandbox.Limits, workroot: Path, cache: Path) -> Setup:
    """The assignment's source, release, test points and expected checks. The reference run's expectations
    are cached in `cache` under a fingerprint of the source, the grading code and the limits."""
    source = read_source(assignment)
    released = nbformat.read(course_root() / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    points = _test_points(source)
    fingerprint = _fingerprint(nbformat.writes(source), grading_code_version(), json.dumps(asdict(limits)))
    cached = cache / f"reference-{fingerprint}.json"
    if cached.exists():
        expected = {cell: set(keys) for cell, keys in json.loads(cached.read_text()).items()}
    else:
        expected = reference_run(assignment, source, points, limits, workroot)
        cached.write_text(json.dumps({cell: sorted(keys) for cell, keys in expected.items()}))
    return Setup(assignment, source, released, points, expected, fingerprint)


TAMPERING = ("edited read-only", "deleted cell", "changed the grading metadata", "duplicate grade id",
             "unknown grade id")


def _status(sandbox_status: str, flags: tuple[str, ...]) -> str:
    if any(f.startswith(TAMPERING) for f in flags):
        return "flagged"
    return sandbox_status.split(":")[0].replace("ok", "graded")


def grade_one(setup: Setup, submission: Submission, limits: sandbox.Limits, workdir: Path, worker: int,
              fingerprint: str, hide: tuple[Path, ...] = ()) -> tuple[Graded, nbformat.NotebookNode | None]:
    """Grade one submission (runs in a worker thread; the sandbox is a separate process)."""
    max_score = sum(setup.test_points.values())
    if submission.status:
        return Graded(submission.student_id, submission.status, 0.0, max_score, (submission.reason,),
                      fingerprint=fingerprint), None
    start = time.monotonic()
    restored, restore_flags = restore(setup.source, setup.released, submission.notebook)
    result = sandbox.run(restored, workdir, limits, worker, hide)
    verdicts = decide.decide(setup.expected, decide.read_log(_read_log(workdir)))
    scores = {cell: (points if verdicts.get(cell) else 0.0) for cell, points in setup.test_points.items()}
    flags = submission.flags + restore_flags + ((result.status,) if result.status != "ok" else ())
    graded = Graded(submission.student_id, _status(result.status, flags), sum(scores.values()), max_score, flags,
                    round(time.monotonic() - start, 2), scores, fingerprint)
    return graded, result.notebook


_RENDERING = threading.Lock()  # feedback's exporter is one per process, and nbconvert's are not thread-safe


def feedback_html(setup: Setup, graded: Graded, executed: nbformat.NotebookNode) -> str:
    """The student's feedback page: scores, flags, their code and outputs, never a hidden test."""
    header = (f"# Feedback: {setup.assignment}\n\nStudent: `{graded.student_id}` · autograded score "
              f"**{graded.score:g} / {graded.max_score:g}** · status: {graded.status}"
              + "".join(f"\n- {flag}" for flag in graded.flags)
              + "\n\nWritten answers are graded by hand and are not in this score.")
    nb = feedback_notebook(executed, setup.released, setup.test_points, graded.cell_scores, header)
    with _RENDERING:
        return to_html(nb, hidden_lines(setup.source))


Result = tuple[Graded, nbformat.NotebookNode | None, str | None]


def grade_task(setup: Setup, submission: Submission, fingerprint: str, limits: sandbox.Limits,
               hide: tuple[Path, ...]) -> Result:
    """Grade one submission on whichever machine runs this (a local thread or a Dask worker): in a fresh
    scratch folder, with a sandbox slot (worker index, uid) that no other sandbox on that machine holds.
    The feedback page is rendered here too (most of a result's cost after the sandbox), so the one writer
    only writes files and scores."""
    with slots.claim() as worker, tempfile.TemporaryDirectory(prefix="course-grade-") as scratch:
        os.chmod(scratch, 0o755)
        graded, executed = grade_one(setup, submission, limits, Path(scratch) / "work", worker, fingerprint, hide)
    return graded, executed, feedback_html(setup, graded, executed) if executed is not None else None


Task = Callable[..., Result]


class Executor(Protocol):
    """Runs `task(setup, submission, fingerprint, limits, hide)` for each (submission, fingerprint) in `todo`
    and yields each result once, as it completes."""

    def map(self, task: Task, setup: Setup, todo: list, limits: sandbox.Limits,
            hide: tuple[Path, ...]) -> Iterator[Result]: ...


@dataclass(frozen=True)
class LocalWorkers:
    """`workers` threads on this machine, each running one sandbox (a separate process) at a time."""

    workers: int

    def map(self, task, setup, todo, limits, hide):
        with ThreadPoolExecutor(self.workers) as pool:
            futures = [pool.submit(task, setup, sub, fingerprint, limits, hide) for sub, fingerprint in todo]
            for future in as_completed(futures):
                yield future.result()


class Run:
    """Where one grading run reads and writes: the course's nbgrader folders, grades.csv and state."""

    def __init__(self, assignment: str, root: Path | None = None, db_url: str | None = None):
        self.assignment, self.root = assignment, root or course_root()
        self.state = self.root / "grading" / assignment / "state"
        self.state.mkdir(parents=True, exist_ok=True)
        self.db_url = gradebook_url(self.root, db_url)

    def previous(self, student: str) -> Graded | None:
        path = self.state / f"{student}.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return Graded(**{**data, "flags": tuple(data["flags"])})

    def save(self, gradebook: GradebookWriter, graded: Graded, executed, html: str | None) -> None:
        """Gradebook, autograded notebook and feedback first, the state file last: it marks the work done."""
        if executed is not None:
            folder = self.root / "autograded" / graded.student_id / self.assignment
            folder.mkdir(parents=True, exist_ok=True)
            nbformat.write(executed, folder / f"{self.assignment}.ipynb")
            gradebook.record_scores(self.assignment, graded.student_id, graded.cell_scores)
            folder = self.root / "feedback" / graded.student_id / self.assignment
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{self.assignment}.html").write_text(html)
        tmp = self.state / f".{graded.student_id}.json"
        tmp.write_text(json.dumps(asdict(graded)))
        os.replace(tmp, self.state / f"{graded.student_id}.json")

    def csv_rows(self) -> list[dict]:
        """A grades.csv row for every student with a saved result, from this run or an earlier one."""
        return [_row(self.assignment, self.previous(path.stem)) for path in sorted(self.state.glob("[!.]*.json"))]


def _submissions_folder(submissions: Path | None, scratch: Path) -> Path:
    """The submitted/ folder to read: the course's own by default, or a .zip unpacked into `scratch`."""
    folder = submissions or course_root() / "submitted"
    return extract_zip(folder, scratch / "unzipped") if folder.suffix == ".zip" else folder


def _fingerprint_of(setup: Setup, submission: Submission) -> str:
    body = nbformat.writes(submission.notebook) if submission.notebook is not None else submission.reason
    return _fingerprint(setup.fingerprint, body, submission.status or "")


def grade(assignment: str, submissions: Path | None = None, workers: int | None = None,
          limits: sandbox.Limits | None = None, progress: bool = True, db_url: str | None = None,
          executor: Executor | None = None) -> list[Graded]:
    """Grade every submission of `assignment`; returns the results (also in the gradebook and grades.csv).
    `db_url`: the gradebook (default: nbgrader_config.py's, else gradebook.db); `executor`: where sandboxes
    run (default: `workers` local threads). An unreachable gradebook stops it before anything is written."""
    db_url = gradebook_url(course_root(), db_url)
    check_reachable(db_url)
    run, limits = Run(assignment, db_url=db_url), limits or sandbox.Limits()
    executor = executor or LocalWorkers(workers or os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="course-grade-") as scratch:
        scratch = Path(scratch)
        os.chmod(scratch, 0o755)
        with ThreadPoolExecutor(1) as side:  # the gradebook learns the assignment's cells meanwhile
            recorded = side.submit(_record_release, assignment, scratch / "release", run.db_url)
            setup = prepare(assignment, limits, scratch, run.state.parent)
            recorded.result()
        folder = _submissions_folder(submissions, scratch)
        todo, results = [], []
        for sub in find_submissions(folder, assignment):
            fingerprint = _fingerprint_of(setup, sub)
            previous = run.previous(sub.student_id) if sub.status != "invalid" else None
            if previous and previous.fingerprint == fingerprint:
                results.append(previous)
            else:
                todo.append((sub, fingerprint))
        hide = (folder, run.root / "autograded", run.root / "feedback", run.root / "grading")
        results += _grade_all(run, setup, todo, limits, executor, progress, hide)
    write_csv(run.root / "grades.csv", assignment, run.csv_rows() + [_row(assignment, g) for g in results
                                                                    if g.status == "invalid"])
    return sorted(results, key=lambda g: g.student_id)


def _row(assignment: str, g: Graded) -> dict:
    return {"student_id": g.student_id, "assignment": assignment, "score": g.score, "max_score": g.max_score,
            "status": g.status, "flags": "; ".join(g.flags), "duration_s": g.duration_s}


def _record_release(assignment: str, scratch: Path, db_url: str) -> None:
    """Record the assignment and its cells in the gradebook, holding its writer lock (a concurrent run may be
    creating the same rows)."""
    with write_lock(db_url):
        generate(assignment, scratch, db_url)


def _grade_all(run: Run, setup: Setup, todo, limits, executor: Executor, progress: bool,
               hide: tuple[Path, ...]) -> list[Graded]:
    """Grade `todo` on `executor`; this thread alone saves each result as it arrives."""
    results = []
    with GradebookWriter(run.db_url) as gradebook:
        for graded, executed, html in tqdm(executor.map(grade_task, setup, todo, limits, hide), total=len(todo),
                                           disable=not progress, desc="grading"):
            if graded.status != "invalid":
                run.save(gradebook, graded, executed, html)
            results.append(graded)
    return results

