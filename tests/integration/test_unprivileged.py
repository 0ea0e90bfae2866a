"""Grading without root: the attack tests that depend on the sandbox pass when a user without root runs them.

`course grade` picks its sandbox mode by who runs it: as root each sandbox gets a uid of its own; without root,
a user namespace of its own. The rest of the suite runs as whoever runs it (root in CI, so the root mode); this
test runs the tests marked `attack` again as a real user without root, created for the purpose, so that the
unprivileged mode faces the same attacks: every containment test of the sandbox (memory, processes, files,
time, network, what is visible, CPU measured from outside), ex01's whole class of attacks and faults, and
ex06's attacks (budgets dodged with patched clocks, forks and pretraining; label theft; borrowing). The other
assignments' attacks are judged on the host by code that is the same in both modes, so they run once. It
needs root to create that user; without root the whole suite already ran unprivileged.
"""

import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

from course_lib.data import cache_dir
from course_lib.paths import course_root

USER = "rectified-test"
pytestmark = [pytest.mark.slow, pytest.mark.sandbox]


def _user() -> pwd.struct_passwd:
    """The test user, created (a system user without a home or a login shell) when missing."""
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True)
        return pwd.getpwnam(USER)


@contextmanager
def _reachable(paths: list[Path]):
    """Let every user pass through (not list) each folder above `paths` while the block runs: the interpreter
    of a root-installed Python (pyenv's under /root, as on CI) is otherwise out of the test user's reach."""
    changed = {}
    for path in paths:
        for folder in [path, *path.parents]:
            mode = folder.stat().st_mode
            if folder.is_dir() and not mode & stat.S_IXOTH and folder not in changed:
                changed[folder] = mode
                folder.chmod(mode | stat.S_IXOTH)
    try:
        yield
    finally:
        for folder, mode in changed.items():
            folder.chmod(stat.S_IMODE(mode))


def _environment(home: Path) -> dict:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("RECTIFIED_", "PYTEST_"))}
    return {**keep, "HOME": str(home), "RECTIFIED_CACHE": str(home / "cache"), "PYTHONDONTWRITEBYTECODE": "1"}


@contextmanager
def _home(user: pwd.struct_passwd):
    """A home for the test user in the temporary folder (not under pytest's own, which pytest keeps root-only),
    holding a copy of the generated data sets so that they are not made again; removed afterwards."""
    home = Path(tempfile.mkdtemp(prefix="rectified-unprivileged-"))
    try:
        if cache_dir().is_dir():
            shutil.copytree(cache_dir(), home / "cache")
        for path in [home, *home.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="not root: the whole suite already ran course grade unprivileged")
def test_every_attack_test_passes_for_a_user_without_root():
    user = _user()
    python = Path(os.path.realpath(sys.executable))
    with _home(user) as home, _reachable([python.parent, Path(sys.prefix), course_root()]):
        command = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--",
                   sys.executable, "-m", "pytest", "-m", "attack", "-q", "-p", "no:cacheprovider",
                   f"--basetemp={home / 'pytest'}"]
        run = subprocess.run(command, cwd=course_root(), env=_environment(home), capture_output=True, text=True,
                             timeout=3600)
    last = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0, (run.stdout + run.stderr)[-8000:]
    assert " passed" in last and "failed" not in last and "error" not in last, last
