"""`course release`: generate exercises/<assignment>/ from solutions/<assignment>/ with nbgrader.

Every requested source is validated first; each release is generated in a scratch folder with a scratch
gradebook and only then swapped into exercises/, so a failure leaves the course exactly as it was.
"""

import shutil
import tempfile
from pathlib import Path

from course_lib.grading.authoring.sources import SourceError, read_source
from course_lib.grading.nbgrader_api import CourseFolders, api


def generate(assignment: str, scratch_root: Path, db_url: str | None = None, root: Path | None = None) -> Path:
    """Copy the source (from the course at `root`, default this one) into `scratch_root`, run nbgrader's
    generate_assignment there; return the release. The assignment and its cells are recorded in the gradebook
    at `db_url` (default: a scratch one)."""
    shutil.copytree(CourseFolders(root).source(assignment), CourseFolders(scratch_root).source(assignment))
    db_url = db_url or f"sqlite:///{scratch_root}/gradebook.db"
    result = api(scratch_root, db_url).generate_assignment(assignment, force=True)
    if not result["success"]:
        last_error = [line for line in result["log"].splitlines() if "[ERROR]" in line][-1:]
        raise SourceError(f"nbgrader could not release {assignment}: {' '.join(last_error) or result['error']}")
    return CourseFolders(scratch_root).release(assignment)


def release(assignments: list[str], root: Path | None = None) -> list[Path]:
    """Release each assignment into the release folder, exercises/, of the course at `root` (default: this
    course). Returns the released folders."""
    folders = CourseFolders(root)
    for assignment in assignments:
        read_source(assignment)
    released = []
    for assignment in assignments:
        with tempfile.TemporaryDirectory() as scratch:
            fresh = generate(assignment, Path(scratch))
            target = folders.release(assignment)
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(fresh, target)
        released.append(target)
    return released
