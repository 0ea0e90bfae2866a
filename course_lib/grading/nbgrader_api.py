"""nbgrader, configured for this course, as a Python object (no CLI start-up per call).

Loads the course's nbgrader_config.py and overrides only where the call says so (a different root for a
scratch copy, a gradebook URL), so the instructor's configuration stays the single source of truth.
"""

import os
import sys
from pathlib import Path

from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config
from traitlets.config.loader import ConfigFileNotFound, PyFileConfigLoader

from course_lib.paths import course_root


def course_config(root: Path | None = None, db_url: str | None = None) -> Config:
    """The course's nbgrader config, with CourseDirectory.root = `root` and, if given, the gradebook URL; as
    nbgrader itself does, a course without nbgrader_config.py gets nbgrader's defaults."""
    try:
        config = PyFileConfigLoader("nbgrader_config.py", path=str(course_root())).load_config()
    except ConfigFileNotFound:  # a course folder without one (e.g. lecture notebooks only): nbgrader's defaults
        config = Config()
    config.CourseDirectory.root = str(root or course_root())
    if db_url:
        config.CourseDirectory.db_url = db_url
    return config


class CourseFolders:
    """Every folder of the course, named once: nbgrader's CourseDirectory as nbgrader_config.py configures it
    (source, release, submitted, autograded and feedback directories and their layout), plus the state folder
    `course grade` keeps beside them. `root`: the course (default this one) or a scratch copy."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root or course_root())
        self.nbgrader = CourseDirectory(config=course_config(self.root))

    def _path(self, step: str, assignment: str, student: str) -> Path:
        return Path(os.path.normpath(self.nbgrader.format_path(step, student, assignment)))

    def step(self, name: str) -> Path:
        """The folder of an nbgrader step ("source", "release", "submitted", "autograded", "feedback")."""
        return self.root / getattr(self.nbgrader, f"{name}_directory")

    def source(self, assignment: str) -> Path:
        return self._path(self.nbgrader.source_directory, assignment, ".")

    def release(self, assignment: str) -> Path:
        return self._path(self.nbgrader.release_directory, assignment, ".")

    def submitted(self, assignment: str, student: str) -> Path:
        return self._path(self.nbgrader.submitted_directory, assignment, student)

    def autograded(self, assignment: str, student: str) -> Path:
        return self._path(self.nbgrader.autograded_directory, assignment, student)

    def feedback(self, assignment: str, student: str) -> Path:
        return self._path(self.nbgrader.feedback_directory, assignment, student)

    def grading(self, assignment: str) -> Path:
        """`course grade`'s own folder for an assignment: its secret and the reference run's cache."""
        return self.root / "grading" / assignment

    def state(self, assignment: str) -> Path:
        """`course grade`'s saved result per student (a state file each)."""
        return self.grading(assignment) / "state"


def cell_timeout_s(root: Path | None = None) -> float:
    """The one per-cell timeout, nbgrader_config.py's Execute.timeout: plain nbgrader, `course check` and
    `course grade` all give a cell this long."""
    return float(course_config(root).Execute.timeout)


def _put_env_bin_on_path() -> None:
    """nbgrader runs the `alembic` command by name; the env's bin/ is not on PATH when its python is called
    directly (as `make test` does), so put it there."""
    env_bin = str(Path(sys.executable).parent)
    if env_bin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = env_bin + os.pathsep + os.environ.get("PATH", "")


def api(root: Path | None = None, db_url: str | None = None) -> NbGraderAPI:
    _put_env_bin_on_path()
    config = course_config(root, db_url)
    return NbGraderAPI(CourseDirectory(config=config), config=config)
