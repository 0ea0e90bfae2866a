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
from traitlets.config.loader import PyFileConfigLoader

from course_lib.paths import course_root


def course_config(root: Path | None = None, db_url: str | None = None) -> Config:
    """The course's nbgrader config, with CourseDirectory.root = `root` and, if given, the gradebook URL."""
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course_root())).load_config()
    config.CourseDirectory.root = str(root or course_root())
    if db_url:
        config.CourseDirectory.db_url = db_url
    return config


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
