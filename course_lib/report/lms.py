"""Grades for a learning management system: a CSV Canvas's gradebook import accepts, and a plain one.

Canvas's import reads the columns of its own gradebook export: Student, ID, SIS User ID, SIS Login ID,
Section, then one column per assignment, headed "Name (canvas id)" for an existing assignment or "Name" to
create a new one; it matches each row to a student by one of the id columns. nbgrader's student ids go in
the column the instructor names (`match`, SIS User ID by default); the others stay empty. The score is the
gradebook's total for the student (manual scores from formgrader included once given) less the late
penalty `course grade` applied; a submission whose
grading failed (status `error`, the grader's fault) gets an empty cell, which Canvas leaves unchanged.
"""

import csv
from pathlib import Path

from course_lib.grading import protocol
from course_lib.grading.grade.gradebook import spreadsheet_safe
from course_lib.report.results import ClassResults, Student

CANVAS_IDS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MATCH_COLUMNS = ("ID", "SIS User ID", "SIS Login ID")
LMS = ("canvas",)


def total(student: Student) -> float | str:
    """The student's score for the LMS: the gradebook's total where it has one, else grades.csv's, less the
    late penalty; empty for `error`."""
    if student.status == protocol.ERROR:
        return ""
    scored = [v for v in student.cell_scores.values() if v is not None]
    return round((sum(scored) if scored else student.score) - student.penalty, 4)


def canvas_header(assignment: str, canvas_id: str | None = None) -> list[str]:
    return [*CANVAS_IDS, f"{assignment} ({canvas_id})" if canvas_id else assignment]


def write_canvas(results: ClassResults, path: Path, match: str = "SIS User ID", canvas_id: str | None = None) -> Path:
    """canvas.csv: one row per student, the student id in column `match`."""
    if match not in MATCH_COLUMNS:
        raise ValueError(f"match must be one of {', '.join(MATCH_COLUMNS)}")
    header = canvas_header(results.assignment, canvas_id)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for s in results.students:
            ids = {"Student": s.name or s.student_id, match: s.student_id}
            writer.writerow([spreadsheet_safe(ids.get(c, "")) for c in CANVAS_IDS] + [total(s)])
    return path


def write_scores(results: ClassResults, path: Path) -> Path:
    """scores.csv: student_id,score, for any other LMS or spreadsheet."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student_id", "score"])
        writer.writerows([spreadsheet_safe(s.student_id), total(s)] for s in results.students)
    return path
