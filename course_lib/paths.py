"""Where the course's folders are, so every command works from any current directory."""

import os
from pathlib import Path


def course_root() -> Path:
    """The repository root: $RECTIFIED_ROOT if set, else the folder holding course_lib/ and pyproject.toml."""
    if "RECTIFIED_ROOT" in os.environ:
        return Path(os.environ["RECTIFIED_ROOT"]).resolve()
    root = Path(__file__).resolve().parent.parent
    if not (root / "pyproject.toml").exists():
        raise FileNotFoundError(
            f"cannot find the course folder above {Path(__file__).parent}; "
            "install with `pip install -e .` from a clone, or set RECTIFIED_ROOT"
        )
    return root


def notebooks(root: Path | None = None) -> list[Path]:
    """The lecture notebooks in reading order (their file names start with 00_, 01_, ...)."""
    return sorted(((root or course_root()) / "notebooks").glob("[0-9][0-9]_*.ipynb"))
