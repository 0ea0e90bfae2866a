"""What every submission of an assignment is graded against: its `Plan`, made once per run by `prepare`.

The plan holds the source and release, the test cells' points, the course's secret and the checks each test
cell makes. Those checks come from a reference run: the solution graded in the sandbox the same way as a
student, which also proves the solution passes its own checks under secret inputs. The reference run's
findings are cached under a fingerprint of everything they depend on.
"""

import hashlib
import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat

from course_lib.errors import CourseError
from course_lib.grading import judges, plain, protocol
from course_lib.grading.authoring.sources import grade_id, read_source
from course_lib.grading.grade.decide import Expected, decide
from course_lib.grading.grade.restore import without_comments
from course_lib.grading.nbgrader_api import CourseFolders
from course_lib.grading.sandbox import library
from course_lib.grading.sandbox.bubblewrap import Limits
from course_lib.grading.sandbox.session import Refused, SessionResult, run_in_sandbox

REFERENCE_STUDENT = "(reference solution)"


class UndecidableCheck(CourseError, ValueError):
    """The reference solution cannot be graded this way (it fails, or a test cell makes no check)."""


@dataclass(frozen=True)
class Plan:
    """What every submission of one assignment is graded against; `expected`: test cell -> its checks."""

    assignment: str
    source: nbformat.NotebookNode
    released: nbformat.NotebookNode
    test_points: dict[str, float]
    expected: dict[str, list[Expected]]
    fingerprint: str
    secret: bytes
    written: dict[str, list[str]]


def cell_points(source) -> dict[str, float]:
    """Autograded test cells (graded, not answers) and their points."""
    meta = (c.metadata.get("nbgrader", {}) for c in source.cells)
    return {m["grade_id"]: float(m["points"]) for m in meta if m.get("grade") and not m.get("solution")}


def code_cells(notebook, test_cells) -> list[tuple[int, str]]:
    """(index, source) of each code cell, test cells without their comments."""
    return [(i, without_comments(c.source) if grade_id(c) in test_cells else c.source)
            for i, c in enumerate(notebook.cells) if c.cell_type == "code"]


def runs_by_cell(notebook, result: SessionResult) -> dict:
    """Grade id -> what the session observed in that cell."""
    return {grade_id(notebook.cells[i]): run for i, run in result.cells.items() if grade_id(notebook.cells[i])}


def _reference_server(source, points, secret: bytes, assignment: str):
    """A `serve` for the reference run: gives any test cell's check its (secret) inputs and records it, and
    records checks no judges module knows."""
    made: dict[str, list[Expected]] = {}
    unknown: list[tuple[str, str]] = []

    def serve(index: int, position: int, check: str, params: dict):
        gid = grade_id(source.cells[index])
        if gid not in points:
            raise Refused(f"{check}: checks run only in test cells")
        try:
            served = judges.serve(check, judges.secret_params(check, params, secret, assignment, REFERENCE_STUDENT))
        except judges.UnknownCheck:
            unknown.append((gid, check))
            raise Refused(f"{check}: no judge for this check") from None
        made.setdefault(gid, []).append(Expected(check, params))
        return served

    return serve, made, unknown


def reference_run(assignment: str, source, points, limits: Limits, secret: bytes, written) -> dict:
    """Run the solution in the sandbox; return test cell -> the checks it makes. Refuses an assignment whose
    test cells do not all make checks, or whose solution fails its own checks under secret inputs."""
    serve, made, unknown = _reference_server(source, points, secret, assignment)
    result = run_in_sandbox(code_cells(source, points), serve, limits, written)
    if unknown:
        raise UndecidableCheck(f"{assignment}: test cell '{unknown[0][0]}' makes the check {unknown[0][1]}, which "
                               "has no judge in course_lib/grading/judges")
    if result.status != protocol.GRADED:
        raise UndecidableCheck(f"{assignment}: the reference solution did not run cleanly ({result.status})")
    silent = [cell for cell in points if not made.get(cell)]
    if silent:
        raise UndecidableCheck(f"{assignment}: test cell '{silent[0]}' makes no check, so it cannot be graded")
    verdicts = decide(made, runs_by_cell(source, result))
    failing = [(cell, v.message) for cell, v in verdicts.items() if not v.passed]
    if failing:
        raise UndecidableCheck(f"{assignment}: the reference solution fails test cell '{failing[0][0]}' under "
                               f"secret inputs: {failing[0][1]}")
    return made


def fingerprint(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def grading_code_version() -> str:
    """A fingerprint of the grading code (a Dask worker's must equal the main process's)."""
    folder = Path(__file__).parents[1]
    return fingerprint(*(p.read_text() for p in sorted(folder.rglob("*.py"))))


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


def prepare(assignment: str, limits: Limits, state: Path, root: Path) -> Plan:
    """The assignment's source and release (from the course at `root`), test points, secret and expected
    checks. The reference run's expectations are cached in `state` under a fingerprint of the source, the
    grading code, the library, the limits and the secret."""
    source = read_source(assignment, root)
    released = nbformat.read(CourseFolders(root).release(assignment) / f"{assignment}.ipynb", as_version=4)
    points, secret, written = cell_points(source), course_secret(state), judges.written(assignment)
    key = fingerprint(nbformat.writes(source), grading_code_version(), library.fingerprint(written),
                      json.dumps(asdict(limits)), hashlib.sha256(secret).hexdigest())
    cached = state / f"reference-{key}.json"
    if cached.exists():
        expected = _decode_expected(cached.read_text())
    else:
        expected = reference_run(assignment, source, points, limits, secret, written)
        cached.write_text(_encode_expected(expected))
    return Plan(assignment, source, released, points, expected, key, secret, written)
