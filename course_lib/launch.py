"""Starting JupyterLab on the course: the command line `course lab` (and so `make lab`) runs."""

import os
import sys
from pathlib import Path

from course_lib.paths import course_root, notebooks

KERNEL_NAME = "rectified"


def lab_argv(extra_args: tuple[str, ...] = (), root: Path | None = None, is_root_user: bool | None = None) -> list[str]:
    """The JupyterLab command line: opens the first notebook; adds --allow-root only for the root user."""
    root = root or course_root()
    is_root_user = os.geteuid() == 0 if is_root_user is None else is_root_user
    found = notebooks(root)
    first = found[0].relative_to(root).as_posix() if found else "notebooks"
    argv = [sys.executable, "-m", "jupyterlab", first, f"--ServerApp.root_dir={root}"]
    if is_root_user:
        argv.append("--allow-root")
    return argv + list(extra_args)


def run_lab(extra_args: tuple[str, ...] = ()) -> None:
    """Replace this process with JupyterLab, run from the course root so paths in notebooks resolve."""
    argv = lab_argv(extra_args)
    os.chdir(course_root())
    os.execv(argv[0], argv)
