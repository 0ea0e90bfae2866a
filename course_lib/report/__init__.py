"""`course report`: a graded class turned into a lecture plan and grades an LMS can import.

Reads what `course grade` wrote (grades.csv, the gradebook, the per-student state files), never student
code, and writes reports/<assignment>/: index.html (one self-contained page), items.csv, misconceptions.csv,
scores.csv and, for `lms="canvas"`, canvas.csv.
"""

import csv
from dataclasses import dataclass
from pathlib import Path

from course_lib.grading.grade.gradebook import spreadsheet_safe
from course_lib.report import items as item_analysis
from course_lib.report import lms as lms_export
from course_lib.report import misconceptions, page
from course_lib.report.results import ReportError, load

__all__ = ["ReportError", "Written", "report"]
FORMGRADER = "http://localhost:8888"


@dataclass(frozen=True)
class Written:
    """What one report wrote, and its headline counts (for the command's one-line summary)."""

    folder: Path
    files: list[Path]
    students: int
    misconceptions: int


def _write_rows(path: Path, columns: list[str], rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows({k: spreadsheet_safe(v) for k, v in row.items()} for row in rows)
    return path


def report(assignment: str, root: Path, db_url: str | None = None, lms: str | None = None,
           canvas_match: str = "SIS User ID", canvas_id: str | None = None,
           formgrader: str = FORMGRADER) -> Written:
    """Write the report of `assignment`'s graded class in the course folder `root`; ReportError (one line)
    when an input is missing or unreadable, or `lms` is not one this knows."""
    if lms is not None and lms not in lms_export.LMS:
        raise ReportError(f"unknown LMS {lms!r}; known: {', '.join(lms_export.LMS)}")
    results = load(assignment, root, db_url)
    items, found = item_analysis.analyse(results), misconceptions.find(results)
    folder = root / "reports" / assignment
    folder.mkdir(parents=True, exist_ok=True)
    files = [_write_rows(folder / "items.csv", item_analysis.COLUMNS, [i.row() for i in items]),
             _write_rows(folder / "misconceptions.csv", misconceptions.COLUMNS, [f.row() for f in found]),
             lms_export.write_scores(results, folder / "scores.csv")]
    if lms == "canvas":
        files.append(lms_export.write_canvas(results, folder / "canvas.csv", canvas_match, canvas_id))
    index = folder / "index.html"
    index.write_text(page.render(results, items, found, formgrader), encoding="utf-8")
    return Written(folder, [index, *files], len(results.students), len({f.misconception.text for f in found}))
