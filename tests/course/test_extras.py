"""The student set is enough for the course (issue 16): with every extra's package unimportable, each course_lib
module but the Dask side imports, and a command that needs an extra names it in one line
(tests/student_set_check.py); `course grade` grades without Dask or psycopg. System-package set-up: the
one-line advice of tools/system-packages.sh where it cannot install."""

import csv
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests import grading_fixtures as fx
from tests.conftest import ROOT, _postgresql_missing
from tests.student_set_check import EXTRA_MODULES

# As if the extras were not installed: the path finder finds none of their packages (find_spec gives None,
# import raises ModuleNotFoundError), as in a venv made by `make lab`.
BLOCK_EXTRAS = f"""
import importlib.machinery, sys
class _NoExtras(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.split(".")[0] in {sorted(EXTRA_MODULES)!r}:
            return None
        return super().find_spec(name, path, target)
sys.meta_path[:] = [_NoExtras if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
"""


def _without_extras(code: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_EXTRAS + code, *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, **kwargs)


def test_the_student_set_imports_the_course_and_each_command_names_the_extra_it_needs():
    script = str(ROOT / "tests" / "student_set_check.py")
    result = _without_extras(f"import runpy; sys.argv[1:] = [sys.argv[1]]; runpy.run_path({script!r}, "
                             "run_name='__main__')", BLOCK_EXTRAS)
    assert result.returncode == 0 and result.stdout.endswith("ok\n"), result.stdout + result.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.sandbox
def test_course_grade_grades_a_class_without_dask_or_psycopg(tmp_path):
    course = fx.make_course(ROOT, tmp_path / "course")
    fx.make_class(ROOT, course / "submitted", {k: fx.CASES[k] for k in ("full", "blank")})
    result = _without_extras("import sys\nfrom course_lib.cli import main\nsys.argv = ['course', 'grade', "
                             f"{fx.A!r}, '--workers', '1']\nmain()", env=dict(os.environ, RECTIFIED_ROOT=str(course)))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "submissions:" in result.stdout and "error" not in result.stdout, result.stdout
    with open(course / "grades.csv", newline="") as f:
        rows = {r["student_id"]: (r["status"], float(r["score"])) for r in csv.DictReader(f)}
    assert rows["full"] == ("graded", 16.0) and rows["blank"] == ("graded", 0.0), rows


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_postgresql_gradebook_without_psycopg_names_the_instructor_extra(tmp_path):
    course = fx.make_course(ROOT, tmp_path / "course")
    fx.make_class(ROOT, course / "submitted", {"full": fx.CASES["full"]})
    result = _without_extras("import sys\nfrom course_lib.cli import main\nsys.argv = ['course', 'grade', "
                             f"{fx.A!r}, '--db', 'postgresql+psycopg://u@127.0.0.1:1/db']\nmain()",
                             env=dict(os.environ, RECTIFIED_ROOT=str(course)))
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr[-3000:]
    assert result.stderr.startswith("Error: a PostgreSQL gradebook needs the instructor extra"), result.stderr


def _system_packages(tmp_path, *, path: str, user: dict | None = None, ci: str = "") -> subprocess.CompletedProcess:
    env = {"PATH": path, "PG_LIBDIR": str(tmp_path / "no-postgresql"), "CI": ci, "HOME": str(tmp_path)}
    return subprocess.run(["/bin/bash", str(ROOT / "tools" / "system-packages.sh")], capture_output=True, text=True,
                          env=env, timeout=60, **(user or {}))


def _bare_path(tmp_path) -> str:
    """A PATH with none of the tools (no make, bwrap, chromium, initdb, apt-get): the script needs only bash."""
    (tmp_path / "bin").mkdir()
    return str(tmp_path / "bin")


def test_system_packages_without_apt_names_what_to_install_in_one_line_and_lets_the_tests_run(tmp_path):
    result = _system_packages(tmp_path, path=_bare_path(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1 and result.stderr == "", result.stdout + result.stderr
    assert result.stdout.startswith("Not installed: make bubblewrap util-linux procps chromium postgresql; ")
    assert "with your package manager" in result.stdout


def test_system_packages_under_ci_fails_instead_of_skipping(tmp_path):
    result = _system_packages(tmp_path, path=_bare_path(tmp_path), ci="true")
    assert result.returncode == 1 and result.stdout == "" and result.stderr.count("\n") == 1, result
    assert result.stderr.startswith("error: the tests need the system packages make bubblewrap")


def test_system_packages_as_a_user_with_apt_says_the_apt_get_command():
    """Not root (as root: dropped to nobody) on Debian: the one line is the sudo apt-get command."""
    with tempfile.TemporaryDirectory() as folder:  # not pytest's tmp_path: that is private to its owner
        folder = Path(folder)
        folder.chmod(0o755)
        bare = _bare_path(folder)
        (folder / "bin" / "apt-get").symlink_to("/bin/false")  # present, never run: not root
        user = {"user": 65534, "group": 65534, "extra_groups": []} if os.geteuid() == 0 else None
        result = _system_packages(folder, path=bare, user=user)
    assert result.returncode == 0 and result.stdout.count("\n") == 1, result
    assert result.stdout.startswith("Not installed: make bubblewrap")
    assert "run: sudo apt-get install make bubblewrap util-linux procps chromium postgresql" in result.stdout


def test_system_packages_is_silent_where_nothing_is_missing(tmp_path):
    tools = ("make", "bwrap", "setpriv", "prlimit", "pgrep", "chromium")
    if any(shutil.which(t) is None for t in tools) or _postgresql_missing():
        pytest.skip("this machine lacks a system package: nothing to show")
    result = subprocess.run(["bash", str(ROOT / "tools" / "system-packages.sh")], capture_output=True, text=True,
                            timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.skipif(os.geteuid() != 0, reason="the install branch runs only as root")
def test_system_packages_as_root_with_apt_installs_what_is_missing(tmp_path):
    """A fake apt-get that 'installs' by creating the programs: the script asks for exactly the missing packages."""
    bare = _bare_path(tmp_path)
    log, pg = tmp_path / "apt.log", tmp_path / "no-postgresql" / "16" / "bin"
    mkdir, chmod = shutil.which("mkdir"), shutil.which("chmod")
    programs = " ".join(f"{bare}/{p}" for p in ("make", "bwrap", "setpriv", "prlimit", "pgrep", "chromium"))
    (tmp_path / "bin" / "apt-get").write_text(
        f'#!/bin/bash\necho "$*" >> {log}\n[ "$1" = install ] || exit 0\n'
        f"for p in {programs} {pg}/initdb; do\n  {mkdir} -p ${{p%/*}}; printf '#!/bin/bash\\n' > $p; {chmod} +x $p\n"
        "done\n")
    (tmp_path / "bin" / "apt-get").chmod(0o755)
    result = _system_packages(tmp_path, path=bare)
    assert result.returncode == 0, result
    assert result.stdout == "Installing system packages for the tests: make bubblewrap util-linux procps chromium " \
                            "postgresql\n", result.stdout + result.stderr
    assert log.read_text().splitlines() == [
        "update -qq", "install -y -qq make bubblewrap util-linux procps chromium postgresql"]
    assert _system_packages(tmp_path, path=bare).stdout == ""  # nothing missing now: silent


@pytest.mark.parametrize("extras", ["", "instructor", "lecturer", "instructor,lecturer"])
def test_bootstrap_asked_for_an_extra_the_maintainer_set_includes_installs_nothing(extras):
    """`make test` installed the maintainer set this suite runs in; maintainer includes instructor and lecturer."""
    path = Path(sys.prefix) / ".rectified-install-stamp"
    stamp = path.read_text() if path.exists() else "none"
    if not stamp.rstrip().endswith("extras=maintainer"):
        pytest.skip(f"this environment was not installed by make test (stamp: {stamp.strip()})")
    result = subprocess.run(["bash", str(ROOT / "tools" / "bootstrap.sh")], capture_output=True, text=True,
                            env=dict(os.environ, PYTHON=sys.executable, VENV=sys.prefix, EXTRAS=extras))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
