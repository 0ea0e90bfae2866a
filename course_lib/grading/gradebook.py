"""The single writer of grades: nbgrader's gradebook (so formgrader keeps working) and grades.csv.

Only the grading run's main thread calls these functions; workers hand it plain results.
"""

import csv
import os
import tempfile
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

CSV_COLUMNS = ["student_id", "assignment", "score", "max_score", "status", "flags", "duration_s"]


def record_scores(db_url: str, assignment: str, student: str, cell_scores: dict[str, float]) -> None:
    """Create the student and submission if needed and set each test cell's autograded score."""
    with Gradebook(db_url) as gradebook:
        gradebook.update_or_create_student(student)
        try:
            gradebook.find_submission(assignment, student)
        except MissingEntry:
            gradebook.add_submission(assignment, student)
        for cell, score in cell_scores.items():
            grade = gradebook.find_grade(cell, assignment, assignment, student)
            grade.auto_score = score
        gradebook.db.commit()


def write_csv(path: Path, assignment: str, rows: list[dict]) -> None:
    """Replace `assignment`'s rows in the CSV at `path` (other assignments' rows are kept), atomically."""
    kept = []
    if path.exists():
        with open(path, newline="") as f:
            kept = [r for r in csv.DictReader(f) if r.get("assignment") != assignment]
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".grades-", suffix=".csv")
    with os.fdopen(fd, "w", newline="") as f:
        writer = csv.DictWriter(f, CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(kept + sorted(rows, key=lambda r: r["student_id"]))
    os.replace(tmp, path)
