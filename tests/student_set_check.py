"""What a student-set install (`make lab`: no extra) must allow; run as a script with that environment's Python:
`python tests/student_set_check.py` prints `ok` or stops at the first broken promise. tests/course/test_extras.py runs
it with the extras' packages made unimportable; a fresh student venv can run it as it is.

Every course_lib module imports (course_lib.grading.grade.cluster, the Dask side, aside) without importing any
extra's package, and each command that needs an extra says in one line which to install."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import course_lib

# Top-level modules of the extras' own packages (pyproject.toml: instructor, lecturer, maintainer).
EXTRA_MODULES = {"dask", "distributed", "psycopg", "sphinx", "sphinx_revealjs", "jupyter_server_mathjax",
                 "pytest", "hypothesis", "playwright"}
NEEDS_AN_EXTRA = {"course_lib.grading.grade.cluster"}
ROOT = Path(course_lib.__file__).resolve().parent.parent


def import_every_module() -> list[str]:
    names = sorted(m.name for m in pkgutil.walk_packages(course_lib.__path__, "course_lib."))
    for name in names:
        if name not in NEEDS_AN_EXTRA:
            __import__(name)
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in EXTRA_MODULES)
    assert not leaked, f"a student-set module imported an extra's package: {leaked}"
    return names


def course(*args: str, prelude: str = "") -> subprocess.CompletedProcess:
    code = f"{prelude}\nimport sys\nfrom course_lib.cli import main\nsys.argv = ['course', *{list(args)!r}]\nmain()"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)


def check_commands(prelude: str = "") -> None:
    expected = {("grade", "ex01_activations", "--dask", "tcp://127.0.0.1:1"): "--dask needs the instructor extra",
                ("slides", "00_welcome.ipynb"): "course slides needs the lecturer extra",
                ("site",): "course site needs the lecturer extra"}
    for argv, message in expected.items():
        result = course(*argv, prelude=prelude)
        assert result.returncode == 1, (argv, result.stdout, result.stderr[-2000:])
        assert result.stderr.startswith(f"Error: {message}") and result.stderr.count("\n") == 1, result.stderr
        assert "make install EXTRAS=" in result.stderr, result.stderr
    helped = course("grade", "--help", prelude=prelude)
    assert helped.returncode == 0 and "--dask" in helped.stdout, helped.stderr


if __name__ == "__main__":
    prelude = sys.argv[1] if len(sys.argv) > 1 else ""
    print(f"{len(import_every_module())} modules imported")
    check_commands(prelude)
    print("ok")
