"""`course grade`: grade a whole class in parallel sandboxes, every check given secret inputs and decided here.

For one assignment: the reference solution runs once in the sandbox, which tells the host which checks each
test cell makes and with which params (seed, hidden, thresholds). Then each submission is taken in (intake),
rebuilt from the source with only the student's answers (restore) and run cell by cell in its own sandbox
(session). While a test cell runs, each of its checks is given inputs prepared here from a secret seed
(derived from the course's secret, the assignment, the student and the check: nothing in the sandbox can
predict them, and each student gets their own), and the data it hands back is judged here (decide). The
sandbox holds no judge, reference answer or label, and not the names the assignment asks students to write.

Workers only produce plain results; this process alone writes the gradebook, grades.csv, the autograded
notebooks formgrader shows (rebuilt here from the restored source and the outputs read from the sandbox) and
feedback. A result is saved per student as it arrives, so a killed run, run again, grades only what is left;
an unchanged, already graded submission is not graded again. A submission whose grading fails in any way
gets the status `error` with a one-line reason; the run goes on.

Where the sandboxes run is the executor's business: `LocalWorkers` (threads on this machine, the default) or
`cluster.DaskWorkers` (a Dask cluster). Either runs `grade_task` and hands its plain result back here.
"""

import hashlib
import json
import os
import secrets
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

from course_lib.data import cache_dir
from course_lib.errors import CourseError
from course_lib.grading import judges, late, library, plain, protocol, slots
from course_lib.grading.decide import CellVerdict, Expected, decide
from course_lib.grading.feedback import feedback_notebook, hidden_lines, to_html
from course_lib.grading.gradebook import GradebookWriter, check_reachable, gradebook_url, write_csv, write_lock
from course_lib.grading.intake import Submission, extract_zip, find_submissions
from course_lib.grading.kernel.channel import CheckFailed
from course_lib.grading.nbgrader_api import cell_timeout_s
from course_lib.grading.release import generate
from course_lib.grading.restore import restore, without_comments
from course_lib.grading.sandbox import Limits
from course_lib.grading.session import Refused, SessionResult, run_notebook
from course_lib.grading.sources import grade_id, read_source
from course_lib.paths import course_root

REFERENCE_STUDENT = "(reference solution)"
REFERENCE_FLAG = "uses the course's reference"


class UndecidableCheck(CourseError, ValueError):
    """The reference solution cannot be graded this way (it fails, or a test cell makes no check)."""


@dataclass(frozen=True)
class Setup:
    """What every submission of one assignment is graded against; `expected`: test cell -> its checks."""

    assignment: str
    source: nbformat.NotebookNode
    released: nbformat.NotebookNode
    test_points: dict[str, float]
    expected: dict[str, list[Expected]]
    fingerprint: str
    secret: bytes
    written: dict[str, list[str]]


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


def _test_points(source) -> dict[str, float]:
    """Autograded test cells (graded, not answers) and their points."""
    meta = (c.metadata.get("nbgrader", {}) for c in source.cells)
    return {m["grade_id"]: float(m["points"]) for m in meta if m.get("grade") and not m.get("solution")}


def _code_cells(notebook, test_cells) -> list[tuple[int, str]]:
    """(index, source) of each code cell, test cells without their comments."""
    return [(i, without_comments(c.source) if grade_id(c) in test_cells else c.source)
            for i, c in enumerate(notebook.cells) if c.cell_type == "code"]


def library_dir() -> Path:
    """Where sandbox libraries are built: host-only, never inside a folder a sandbox is shown."""
    return Path(os.environ.get("RECTIFIED_LIBRARY_DIR") or cache_dir().parent / "rectified-sandbox-libraries")


def run_in_sandbox(notebook, test_cells, serve, limits: Limits, written: dict[str, list[str]]) -> SessionResult:
    """Run `notebook`'s code cells in a sandbox slot of this machine, with the sandbox library for `written`."""
    built = library.build(written, library_dir())
    data_cache = cache_dir()
    data_cache.mkdir(parents=True, exist_ok=True)
    with slots.claim() as worker:
        return run_notebook(_code_cells(notebook, test_cells), serve, limits, worker, built, library.PACKAGE_DIR,
                            data_cache)


def _reference_server(source, test_points, secret: bytes, assignment: str):
    """A `serve` for the reference run: gives any test cell's check its (secret) inputs and records it, and
    records checks no judges module knows."""
    made: dict[str, list[Expected]] = {}
    unknown: list[tuple[str, str]] = []

    def serve(index: int, position: int, check: str, params: dict):
        gid = grade_id(source.cells[index])
        if gid not in test_points:
            raise Refused(f"{check}: checks run only in test cells")
        try:
            served = judges.serve(check, judges.secret_params(check, params, secret, assignment, REFERENCE_STUDENT))
        except judges.UnknownCheck:
            unknown.append((gid, check))
            raise Refused(f"{check}: no judge for this check") from None
        made.setdefault(gid, []).append(Expected(check, params))
        return served

    return serve, made, unknown


def reference_run(assignment: str, source, test_points, limits: Limits, secret: bytes, written) -> dict:
    """Run the solution in the sandbox; return test cell -> the checks it makes. Refuses an assignment whose
    test cells do not all make checks, or whose solution fails its own checks under secret inputs."""
    serve, made, unknown = _reference_server(source, test_points, secret, assignment)
    result = run_in_sandbox(source, test_points, serve, limits, written)
    if unknown:
        raise UndecidableCheck(f"{assignment}: test cell '{unknown[0][0]}' makes the check {unknown[0][1]}, which "
                               "has no judge in course_lib/grading/judges")
    if result.status != protocol.GRADED:
        raise UndecidableCheck(f"{assignment}: the reference solution did not run cleanly ({result.status})")
    silent = [cell for cell in test_points if not made.get(cell)]
    if silent:
        raise UndecidableCheck(f"{assignment}: test cell '{silent[0]}' makes no check, so it cannot be graded")
    verdicts = decide(made, _runs_by_cell(source, result))
    failing = [(cell, v.message) for cell, v in verdicts.items() if not v.passed]
    if failing:
        raise UndecidableCheck(f"{assignment}: the reference solution fails test cell '{failing[0][0]}' under "
                               f"secret inputs: {failing[0][1]}")
    return made


def _runs_by_cell(notebook, result: SessionResult) -> dict:
    return {grade_id(notebook.cells[i]): run for i, run in result.cells.items() if grade_id(notebook.cells[i])}


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def grading_code_version() -> str:
    """A fingerprint of this grading code (a Dask worker's must equal the main process's)."""
    folder = Path(__file__).parent
    return _fingerprint(*(p.read_text() for p in sorted(folder.rglob("*.py"))))


def course_secret(folder: Path) -> bytes:
    """The course's grading secret for one assignment (created once, readable by the instructor only): the
    key every secret seed is derived from. Deleting it draws new inputs for everyone at the next run."""
    path = folder / "secret.key"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    return path.read_bytes()


def _encode_expected(expected: dict[str, list[Expected]]) -> str:
    return json.dumps({cell: [[e.check, plain.encode(e.params)] for e in checks]
                       for cell, checks in expected.items()})


def _decode_expected(text: str) -> dict[str, list[Expected]]:
    return {cell: [Expected(check, plain.decode(params)) for check, params in checks]
            for cell, checks in json.loads(text).items()}


def prepare(assignment: str, limits: Limits, state: Path, root: Path) -> Setup:
    """The assignment's source and release (from the course at `root`), test points, secret and expected
    checks. The reference run's expectations are cached in `state` under a fingerprint of the source, the
    grading code, the library, the limits and the secret."""
    source = read_source(assignment, root)
    released = nbformat.read(root / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    points, secret, written = _test_points(source), course_secret(state), judges.written(assignment)
    fingerprint = _fingerprint(nbformat.writes(source), grading_code_version(), library.fingerprint(written),
                               json.dumps(asdict(limits)), hashlib.sha256(secret).hexdigest())
    cached = state / f"reference-{fingerprint}.json"
    if cached.exists():
        expected = _decode_expected(cached.read_text())
    else:
        expected = reference_run(assignment, source, points, limits, secret, written)
        cached.write_text(_encode_expected(expected))
    return Setup(assignment, source, released, points, expected, fingerprint, secret, written)


TAMPERING = ("edited read-only", "deleted cell", "changed the grading metadata", "duplicate grade id",
             "unknown grade id", REFERENCE_FLAG)


def _status(session_status: str, flags: tuple[str, ...]) -> str:
    if any(f.startswith(TAMPERING) for f in flags):
        return protocol.FLAGGED
    return session_status.split(":")[0]


def student_server(setup: Setup, notebook, student: str):
    """A `serve` for a student's run: a test cell's checks get their inputs in the order the reference run
    made them, with that run's params and a secret seed for this student; any other ask is refused."""

    def serve(index: int, position: int, check: str, params: dict):
        expected = setup.expected.get(grade_id(notebook.cells[index]) or "", [])
        if position >= len(expected) or expected[position].check != check:
            raise Refused(f"{check} is not a check this cell makes")
        trusted = expected[position].params
        return judges.serve(check, judges.secret_params(check, trusted, setup.secret, setup.assignment, student))

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


def grade_one(setup: Setup, submission: Submission, limits: Limits,
              fingerprint: str) -> tuple[Graded, nbformat.NotebookNode | None]:
    """Grade one submission (runs in a worker thread; the sandbox is a separate process)."""
    max_score = sum(setup.test_points.values())
    if submission.status:
        return Graded(submission.student_id, submission.status, 0.0, max_score, (submission.reason,),
                      fingerprint=fingerprint), None
    start = time.monotonic()
    restored, restore_flags = restore(setup.source, setup.released, submission.notebook)
    serve = student_server(setup, restored, submission.student_id)
    result = run_in_sandbox(restored, setup.test_points, serve, limits, setup.written)
    verdicts = decide(setup.expected, _runs_by_cell(restored, result))
    scores = {cell: (points if verdicts[cell].passed else 0.0) for cell, points in setup.test_points.items()}
    used = tuple(f"{REFERENCE_FLAG} ({name})" for name in result.references)
    flags = submission.flags + restore_flags + used + ((result.status,) if result.status != protocol.GRADED else ())
    messages = {cell: v.message for cell, v in verdicts.items() if v.message}
    graded = Graded(submission.student_id, _status(result.status, flags), sum(scores.values()), max_score, flags,
                    round(time.monotonic() - start, 2), scores, fingerprint, result.cpu_seconds, messages)
    return graded, _executed(restored, result, verdicts)


_RENDERING = threading.Lock()  # feedback's exporter is one per process, and nbconvert's are not thread-safe


def feedback_html(setup: Setup, graded: Graded, executed: nbformat.NotebookNode) -> str:
    """The student's feedback page: scores, flags, their code and outputs, the grader's messages; hidden test
    cells as released (their source removed) and any hidden-test line redacted."""
    header = (f"# Feedback: {setup.assignment}\n\nStudent: `{graded.student_id}` · autograded score "
              f"**{graded.score:g} / {graded.max_score:g}** · status: {graded.status}"
              + "".join(f"\n- {flag}" for flag in graded.flags)
              + "\n\nWritten answers are graded by hand and are not in this score.")
    nb = feedback_notebook(executed, setup.released, setup.test_points, graded.cell_scores, header)
    with _RENDERING:
        return to_html(nb, hidden_lines(setup.source))


Result = tuple[Graded, nbformat.NotebookNode | None, str | None]


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:300]}" if text else type(err).__name__


def grade_task(setup: Setup, submission: Submission, fingerprint: str, limits: Limits) -> Result:
    """Grade one submission on whichever machine runs this (a local thread or a Dask worker) and render its
    feedback page there too. Any failure is this submission's status `error`, never the run's end."""
    try:
        graded, executed = grade_one(setup, submission, limits, fingerprint)
        return graded, executed, feedback_html(setup, graded, executed) if executed is not None else None
    except Exception as err:  # noqa: BLE001 - one submission's failure must not stop the class
        return _error(setup, submission.student_id, fingerprint, f"grading failed: {_one_line(err)}"), None, None


def _error(setup: Setup, student: str, fingerprint: str, reason: str) -> Graded:
    return Graded(student, protocol.ERROR, 0.0, sum(setup.test_points.values()), (reason,), fingerprint=fingerprint)


Task = Callable[..., Result]


class Executor(Protocol):
    """Runs `task(setup, submission, fingerprint, limits)` for each (submission, fingerprint) in `todo` and
    yields each result once, as it completes."""

    def map(self, task: Task, setup: Setup, todo: list, limits: Limits) -> Iterator[Result]: ...


@dataclass(frozen=True)
class LocalWorkers:
    """`workers` threads on this machine, each running one sandbox (a separate process) at a time."""

    workers: int

    def map(self, task, setup, todo, limits):
        with ThreadPoolExecutor(self.workers) as pool:
            futures = [pool.submit(task, setup, sub, fingerprint, limits) for sub, fingerprint in todo]
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
        try:
            data = json.loads(path.read_text())
            return Graded(**{**data, "flags": tuple(data["flags"])})
        except (ValueError, TypeError, KeyError):
            return None  # a state file from an older version: grade again

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
        self.record(graded)

    def record(self, graded: Graded) -> None:
        tmp = self.state / f".{graded.student_id}.json"
        tmp.write_text(json.dumps(asdict(graded)))
        os.replace(tmp, self.state / f"{graded.student_id}.json")

    def csv_rows(self) -> list[dict]:
        """A grades.csv row for every student with a saved result, from this run or an earlier one."""
        rows = (self.previous(path.stem) for path in sorted(self.state.glob("[!.]*.json")))
        return [_row(self.assignment, g) for g in rows if g is not None]


def _submissions_folder(submissions: Path | None, scratch: Path, root: Path) -> Path:
    """The submitted/ folder to read: the course's own by default, or a .zip unpacked into `scratch`."""
    folder = submissions or root / "submitted"
    return extract_zip(folder, scratch / "unzipped") if folder.suffix == ".zip" else folder


def _fingerprint_of(setup: Setup, submission: Submission) -> str:
    body = nbformat.writes(submission.notebook) if submission.notebook is not None else submission.reason
    return _fingerprint(setup.fingerprint, body, submission.status or "")


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
    run, limits = Run(assignment, root, db_url), limits or Limits(cell_timeout_s=cell_timeout_s(root))
    executor = executor or LocalWorkers(workers or os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="course-grade-") as scratch:
        scratch = Path(scratch)
        with ThreadPoolExecutor(1) as side:  # the gradebook learns the assignment's cells meanwhile
            recorded = side.submit(_record_release, assignment, scratch / "release", run.db_url, root)
            setup = prepare(assignment, limits, run.state.parent, root)
            recorded.result()
        folder = _submissions_folder(submissions, scratch, root)
        todo, results = [], []
        for sub in find_submissions(folder, assignment):
            fingerprint = _fingerprint_of(setup, sub)
            previous = run.previous(sub.student_id) if sub.status != protocol.INVALID else None
            if previous and previous.fingerprint == fingerprint and previous.status != protocol.ERROR:
                results.append(previous)
            else:
                todo.append((sub, fingerprint))
        results += _grade_all(run, setup, todo, limits, executor, progress)
        results = _with_lateness(run, results, folder)
    write_csv(run.root / "grades.csv", assignment, run.csv_rows() + [_row(assignment, g) for g in results
                                                                    if g.status == protocol.INVALID])
    return sorted(results, key=lambda g: g.student_id)


def _row(assignment: str, g: Graded) -> dict:
    return {"student_id": g.student_id, "assignment": assignment, "score": g.score, "max_score": g.max_score,
            "status": g.status, "flags": "; ".join(g.flags), "duration_s": g.duration_s, "late_s": g.late_s,
            "penalty": g.penalty}


def _with_lateness(run: Run, results: list[Graded], folder: Path) -> list[Graded]:
    """Each saved result with its submission's lateness and penalty (late.py), in the gradebook and state."""
    late_plugin, out = late.plugin(run.root), []
    with GradebookWriter(run.db_url) as writer:
        for graded in results:
            if graded.status != protocol.INVALID:
                graded = late.apply(writer, graded, folder / graded.student_id / run.assignment, run.assignment,
                                    late_plugin)
                run.record(graded)
            out.append(graded)
    return out


def _record_release(assignment: str, scratch: Path, db_url: str, root: Path) -> None:
    """Record the assignment and its cells in the gradebook, holding its writer lock (a concurrent run may be
    creating the same rows)."""
    with write_lock(db_url):
        generate(assignment, scratch, db_url, root)


def _grade_all(run: Run, setup: Setup, todo, limits, executor: Executor, progress: bool) -> list[Graded]:
    """Grade `todo` on `executor`; this thread alone saves each result as it arrives. A result that cannot be
    saved is recorded with status `error` and the reason; the others are saved as usual."""
    results = []
    with GradebookWriter(run.db_url) as gradebook:
        for graded, executed, html in tqdm(executor.map(grade_task, setup, todo, limits), total=len(todo),
                                           disable=not progress, desc="grading"):
            if graded.status != protocol.INVALID:
                try:
                    run.save(gradebook, graded, executed, html)
                except Exception as err:  # noqa: BLE001 - one student's files must not stop the class
                    gradebook.gradebook.db.rollback()
                    graded = _error(setup, graded.student_id, graded.fingerprint, f"saving failed: {_one_line(err)}")
                    run.record(graded)
            results.append(graded)
    return results
