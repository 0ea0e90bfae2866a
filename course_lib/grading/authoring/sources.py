"""Validating an assignment's instructor source before anything is generated from it.

A bad source (missing, unreadable, two cells with one grade id, a test cell without points) raises
SourceError naming the file and the cell, so `course release` and `course check` stop before they write.
"""

from pathlib import Path

import nbformat

from course_lib.errors import CourseError
from course_lib.grading.nbgrader_api import CourseFolders


class SourceError(CourseError, ValueError):
    """An assignment's source notebook cannot be released; the message names the file and the cell."""


def assignments(root: Path | None = None) -> list[str]:
    """Every assignment with a folder in solutions/, sorted."""
    source = CourseFolders(root).step("source")
    return sorted(p.name for p in source.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def source_notebook(assignment: str, root: Path | None = None) -> Path:
    return CourseFolders(root).source(assignment) / f"{assignment}.ipynb"


def grade_id(cell) -> str | None:
    """The nbgrader grade id of a cell, or None for a cell nbgrader does not track."""
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def is_answer(cell) -> bool:
    """True for a cell the student writes in (nbgrader solution cell, code or written answer)."""
    return bool(cell.metadata.get("nbgrader", {}).get("solution"))


def _cell_label(index: int, cell) -> str:
    gid = grade_id(cell)
    return f"cell {index}" + (f" ('{gid}')" if gid else "")


def read_source(assignment: str, root: Path | None = None) -> nbformat.NotebookNode:
    """The validated source notebook of `assignment`."""
    path = source_notebook(assignment, root)
    if not path.exists():
        raise SourceError(f"{path}: no source notebook (expected solutions/{assignment}/{assignment}.ipynb)")
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # noqa: BLE001 - any parse failure is reported the same way
        raise SourceError(f"{path}: not a readable notebook ({type(err).__name__}: {err})") from None
    _check_cells(path, nb)
    return nb


def _check_cells(path: Path, nb) -> None:
    seen: dict[str, int] = {}
    for index, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader")
        if not meta:
            continue
        gid = meta.get("grade_id")
        if gid in seen:
            raise SourceError(f"{path}: cells {seen[gid]} and {index} share the grade id '{gid}'")
        seen[gid] = index
        if meta.get("grade") and not meta.get("points"):
            raise SourceError(f"{path}: {_cell_label(index, cell)} is graded but has no points")
    if not any(c.metadata.get("nbgrader", {}).get("grade") for c in nb.cells):
        raise SourceError(f"{path}: no graded cells (no autograder tests and no manually graded answers)")
