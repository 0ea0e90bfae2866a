"""What `course grade` left behind for one assignment, read back as plain data for the report.

Three sources, none of which reruns student code: grades.csv (every student's status, flags and grading
time, invalid and missing ones included), the nbgrader gradebook (each graded cell's score, manual scores
from formgrader once given, students' names) and the per-student state files under
grading/<assignment>/state/ (each failed test cell's message, as the grader told the student).
"""

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SQLAlchemyError

from course_lib.errors import CourseError
from course_lib.grading.grade.gradebook import gradebook_url, shown
from course_lib.grading.nbgrader_api import CourseFolders


class ReportError(CourseError, RuntimeError):
    """An input the report needs is missing or unreadable (the message is one line)."""


@dataclass(frozen=True)
class Cell:
    """A graded cell of the assignment: its nbgrader grade id and points."""

    name: str
    points: float


@dataclass(frozen=True)
class Student:
    """One row of grades.csv, with the gradebook's scores (None: no score recorded) and the grader's
    messages for the test cells it failed."""

    student_id: str
    status: str
    score: float
    max_score: float
    flags: tuple[str, ...]
    duration_s: float
    cell_scores: dict[str, float | None]
    messages: dict[str, str]
    name: str = ""  # "Last, First" from the gradebook, when known
    late_s: float = 0.0  # seconds after the due date, and the late penalty in points (grades.csv, late.py)
    penalty: float = 0.0


@dataclass(frozen=True)
class ClassResults:
    """Everything the report reads about one assignment's graded class."""

    assignment: str
    root: Path
    db_url: str
    cells: list[Cell]
    students: list[Student]

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.cells)


def read_rows(root: Path, assignment: str) -> list[dict]:
    """grades.csv's rows for `assignment`; ReportError when there are none (not graded yet)."""
    path = root / "grades.csv"
    try:
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("assignment") == assignment]
    except OSError:
        raise ReportError(f"no {path}: run `course grade {assignment}` first") from None
    except csv.Error as err:
        raise ReportError(f"{path} is not a readable CSV ({err})") from None
    if not rows:
        raise ReportError(f"{path} has no rows for {assignment}: run `course grade {assignment}` first")
    return rows


def read_messages(root: Path, assignment: str) -> dict[str, dict[str, str]]:
    """student -> {failed test cell: message}, from the state files `course grade` saved."""
    found = {}
    for path in sorted(CourseFolders(root).state(assignment).glob("[!.]*.json")):
        try:
            found[path.stem] = dict(json.loads(path.read_text()).get("messages", {}))
        except (OSError, ValueError, TypeError, AttributeError):
            raise ReportError(f"{path} is not a state file `course grade` wrote") from None
    return found


def _cells(gradebook: Gradebook, assignment: str) -> list[Cell]:
    try:
        notebooks = gradebook.find_assignment(assignment).notebooks
    except MissingEntry:
        raise ReportError(f"the gradebook has no assignment {assignment}: run `course grade {assignment}`") from None
    return [Cell(c.name, float(c.max_score)) for nb in notebooks for c in nb.grade_cells]


def _scored(grade) -> float | None:
    """The cell's score (manual over auto, plus extra credit, as nbgrader counts it); None if never scored."""
    return None if grade.auto_score is None and grade.manual_score is None else float(grade.score)


def read_gradebook(db_url: str, assignment: str) -> tuple[list[Cell], dict[str, dict], dict[str, str]]:
    """(graded cells, student -> {cell: score or None}, student -> "Last, First") from the gradebook."""
    try:
        with Gradebook(db_url) as gradebook:
            cells = _cells(gradebook, assignment)
            scores, names = {}, {}
            for sub in gradebook.assignment_submissions(assignment):
                sid = sub.student.id
                scores[sid] = {g.name: _scored(g) for nb in sub.notebooks for g in nb.grades}
                names[sid] = ", ".join(n for n in (sub.student.last_name, sub.student.first_name) if n)
    except SQLAlchemyError as err:
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        raise ReportError(f"cannot read the gradebook {shown(db_url)}: {reason}") from None
    return cells, scores, names


def _student(row: dict, scores: dict, messages: dict, names: dict) -> Student:
    try:
        sid = row["student_id"]
        return Student(sid, row["status"], float(row["score"]), float(row["max_score"]),
                       tuple(f for f in row["flags"].split("; ") if f), float(row["duration_s"] or 0),
                       scores.get(sid, {}), messages.get(sid, {}), names.get(sid, ""),
                       float(row.get("late_s") or 0), float(row.get("penalty") or 0))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ReportError(f"grades.csv has a row `course grade` did not write: {row}") from None


def load(assignment: str, root: Path, db_url: str | None = None) -> ClassResults:
    """Read the graded class of `assignment` in the course folder `root` (gradebook: `db_url`, else the
    course's). ReportError, with one line saying what to do, when an input is missing or unreadable."""
    rows = read_rows(root, assignment)
    url = gradebook_url(root, db_url)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise ReportError(f"no gradebook at {url}: run `course grade {assignment}` first, or pass --db")
    cells, scores, names = read_gradebook(url, assignment)
    messages = read_messages(root, assignment)
    students = [_student(r, scores, messages, names) for r in rows]
    return ClassResults(assignment, root, url, cells, sorted(students, key=lambda s: s.student_id))
