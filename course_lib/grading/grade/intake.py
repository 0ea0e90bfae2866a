"""Finding and validating a class's submissions before anything runs.

Layout (nbgrader's): <submitted>/<student_id>/<assignment>/<assignment>.ipynb, or a .zip of that folder.
Every student folder yields one `Submission`: either a notebook to grade (possibly with flags, e.g. a renamed
file or an upgraded nbformat) or a final status with its reason ("invalid", "missing"). One bad submission
never stops the others.
"""

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import nbformat

from course_lib.errors import CourseError

SAFE_STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
MAX_NOTEBOOK_BYTES = 20 * 2**20


@dataclass(frozen=True)
class Submission:
    """One student's submission: `notebook` (parsed, nbformat 4) when gradable, else `status` and `reason`."""

    student_id: str
    notebook: nbformat.NotebookNode | None = None
    status: str | None = None
    reason: str = ""
    flags: tuple[str, ...] = field(default_factory=tuple)


class IntakeError(CourseError, ValueError):
    """The submissions as a whole cannot be read (a missing folder, an unsafe zip)."""


def safe_student_id(name: str) -> bool:
    """Letters, digits and _ . @ - ; starts with a letter or digit; at most 64 characters; never '..'."""
    return SAFE_STUDENT_ID.fullmatch(name) is not None and ".." not in name


def extract_zip(archive: Path, destination: Path) -> Path:
    """Unpack `archive` into `destination`, refusing the whole zip if any entry would land outside it or is a
    link. Returns the folder holding the student folders (the zip's root, or its single top folder)."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            path = PurePosixPath(info.filename)
            if path.is_absolute() or ".." in path.parts or "\\" in info.filename:
                raise IntakeError(f"{archive}: refusing the zip: entry '{info.filename}' points outside its root")
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise IntakeError(f"{archive}: refusing the zip: entry '{info.filename}' is a symbolic link")
        zf.extractall(destination)
    entries = [p for p in destination.iterdir() if not p.name.startswith("__MACOSX")]
    if len(entries) == 1 and entries[0].is_dir() and entries[0].name == "submitted":
        return entries[0]
    return destination


def read_notebook(path: Path) -> tuple[nbformat.NotebookNode | None, str, tuple[str, ...]]:
    """(notebook, "", flags) or (None, reason, ()) for a file that is not a readable notebook."""
    size = path.stat().st_size
    if size == 0:
        return None, f"{path.name} is an empty file", ()
    if size > MAX_NOTEBOOK_BYTES:
        return None, f"{path.name} is {size / 2**20:.0f} MB, over the {MAX_NOTEBOOK_BYTES // 2**20} MB limit", ()
    try:
        raw = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        version = raw.nbformat  # read first: nbformat.convert upgrades its argument in place
        notebook = nbformat.convert(raw, 4) if version != 4 else raw
    except Exception as err:  # noqa: BLE001 - any parse failure is reported the same way
        return None, f"{path.name} is not a readable notebook ({type(err).__name__}: {str(err)[:200]})", ()
    flags = (f"upgraded from nbformat {version}",) if version != 4 else ()
    try:
        nbformat.validate(notebook)
    except Exception as err:  # noqa: BLE001 - a notebook that parses but does not validate: keep its cells' text
        repaired = _repaired(notebook)
        if repaired is None:
            return None, f"{path.name} is not a readable notebook ({type(err).__name__}: {str(err)[:200]})", ()
        return repaired, "", flags + ("the notebook did not validate: graded from its cells' text and grade ids",)
    return notebook, "", flags


def _repaired_cell(cell: dict) -> nbformat.NotebookNode:
    """A code cell (or markdown, for any other type) with the cell's text and, if a dict, its nbgrader metadata."""
    text = cell.get("source", "")
    text = "".join(map(str, text)) if isinstance(text, list) else str(text)
    new = nbformat.v4.new_code_cell(text) if cell.get("cell_type") == "code" else nbformat.v4.new_markdown_cell(text)
    meta = cell.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("nbgrader"), dict):
        new.metadata["nbgrader"] = dict(meta["nbgrader"])
    return new


def _repaired(notebook) -> nbformat.NotebookNode | None:
    """A valid notebook of the same cells, keeping each cell's type, text and nbgrader metadata (when those
    are well-formed) and nothing else; None when even that fails."""
    cells = notebook.get("cells") if isinstance(notebook.get("cells"), list) else []
    repaired = nbformat.v4.new_notebook(cells=[_repaired_cell(c) for c in cells if isinstance(c, dict)])
    for index, cell in enumerate(repaired.cells):
        cell.id = f"repaired-{index}"  # stable, so an unchanged submission is recognised and not graded again
    try:
        nbformat.validate(repaired)
    except Exception:  # noqa: BLE001 - nbgrader metadata that is itself invalid: drop it
        for cell in repaired.cells:
            cell.metadata.pop("nbgrader", None)
        try:
            nbformat.validate(repaired)
        except Exception:  # noqa: BLE001
            return None
    return repaired


def _notebook_file(folder: Path, assignment: str) -> tuple[Path | None, str, tuple[str, ...]]:
    """The notebook in a student's assignment folder: the expected name, or the only .ipynb there (flagged)."""
    expected = folder / f"{assignment}.ipynb"
    if expected.is_file() and not expected.is_symlink():
        return expected, "", ()
    notebooks = sorted(p for p in folder.glob("*.ipynb") if p.is_file() and not p.is_symlink())
    if len(notebooks) == 1:
        return notebooks[0], "", (f"notebook named {notebooks[0].name}, expected {expected.name}",)
    if notebooks:
        return None, f"{len(notebooks)} notebooks and none named {expected.name}", ()
    return None, f"no {expected.name} in the submission", ()


def _one(student_folder: Path, assignment: str) -> Submission:
    student = student_folder.name
    if not safe_student_id(student):
        return Submission(student, status="invalid", reason=f"student id {student!r} is not a safe folder name")
    folder = student_folder / assignment
    if student_folder.is_symlink() or folder.is_symlink():
        return Submission(student, status="invalid", reason="symbolic links are not accepted as submissions")
    if not folder.is_dir():
        return Submission(student, status="missing", reason=f"no {assignment}/ folder")
    path, reason, flags = _notebook_file(folder, assignment)
    if path is None:
        status = "missing" if reason.startswith("no ") else "invalid"
        return Submission(student, status=status, reason=reason)
    notebook, reason, read_flags = read_notebook(path)
    if notebook is None:
        return Submission(student, status="invalid", reason=reason)
    return Submission(student, notebook, flags=flags + read_flags)


def find_submissions(submitted: Path, assignment: str) -> list[Submission]:
    """One Submission per student folder under `submitted`, sorted by student id."""
    if not submitted.is_dir():
        raise IntakeError(f"{submitted}: no such folder of submissions")
    return [_one(folder, assignment) for folder in sorted(submitted.iterdir()) if folder.is_dir()
            or folder.is_symlink()]
