"""Shared test settings: one torch thread (as the course kernel uses), a headless matplotlib backend; shared
fixtures: the course root, a real PostgreSQL server.

System tools: a test marked `sandbox`, `chromium` or `postgresql` needs that tool on this machine
(tools/system-packages.sh installs them when it can). Where one is missing the test is skipped with the reason
and what to install, and the run ends with a summary of what did not run; under CI=true it fails instead."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PG_LIBDIR = Path(os.environ.get("PG_LIBDIR", "/usr/lib/postgresql"))  # as in tools/system-packages.sh


def strict() -> bool:
    """CI skips nothing: a missing system tool is a failure there."""
    return os.environ.get("CI", "") not in ("", "false", "0")


def _sandbox_missing() -> str | None:
    from course_lib.grading.sandbox.bubblewrap import missing_requirement

    return missing_requirement()


def _chromium_missing() -> str | None:
    return None if shutil.which("chromium") else "Debian's chromium is missing (apt-get install chromium)"


def _postgresql_missing() -> str | None:
    if any(PG_LIBDIR.glob("*/bin/initdb")) or shutil.which("initdb"):
        return None
    return "PostgreSQL's initdb is missing (apt-get install postgresql)"


# marker -> why this machine cannot run its tests (None: it can); each asked once per session.
SYSTEM_REQUIREMENTS = {"sandbox": _sandbox_missing, "chromium": _chromium_missing,
                       "postgresql": _postgresql_missing}
_why_not: dict[str, str | None] = {}


def missing_system_requirement(marker: str) -> str | None:
    if marker not in _why_not:
        _why_not[marker] = SYSTEM_REQUIREMENTS[marker]()
    return _why_not[marker]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    reasons = [f"[{marker}] {why}" for marker in SYSTEM_REQUIREMENTS if item.get_closest_marker(marker)
               for why in [missing_system_requirement(marker)] if why is not None]
    if reasons:
        if strict():
            pytest.fail(f"{' | '.join(reasons)} (CI=true: nothing may be skipped; .ci/run installs it)")
        pytest.skip(" | ".join(reasons))


def pytest_terminal_summary(terminalreporter):
    """Say what did not run because this machine lacks a system tool, and what to install."""
    tests, per_tool = 0, {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else ""
        pieces = [p for p in reason.removeprefix("Skipped: ").split(" | ")
                  if p.startswith("[") and p[1:p.find("]")] in SYSTEM_REQUIREMENTS]
        tests += bool(pieces)
        for piece in pieces:
            per_tool[piece] = per_tool.get(piece, 0) + 1
    if not tests:
        return
    terminalreporter.section("not run: this machine lacks a system tool", sep="=", yellow=True, bold=True)
    for piece, count in sorted(per_tool.items()):
        terminalreporter.line(f"{count:4d} tests need {piece}")
    terminalreporter.line(f"{tests} tests skipped in all. Install what is named above (as root, "
                          "`bash tools/system-packages.sh` does) and rerun; under CI=true none is skipped.")


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The real course site, built once per test session by `course site` (tests/course/test_site.py checks it,
    tests/course/test_browser.py opens it)."""
    out = tmp_path_factory.getbasetemp() / "course-site"
    course = str(Path(sys.executable).parent / "course")
    run = subprocess.run([course, "site", "--out", str(out)], capture_output=True, text=True, timeout=3600)
    assert run.returncode == 0, run.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def course_root() -> Path:
    return ROOT


def _postgres_program(name: str) -> str:
    """A PostgreSQL server program: Debian keeps them in /usr/lib/postgresql/<version>/bin, off PATH."""
    found = sorted(PG_LIBDIR.glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    program = str(found[-1]) if found else shutil.which(name)
    if program is None:
        pytest.fail(f"PostgreSQL's {name} is missing: apt-get install postgresql (tools/system-packages.sh does)")
    return program


@pytest.fixture(scope="session")
def postgres_database():
    """A real PostgreSQL server for the session: a temporary cluster (initdb) on a free loopback port, run as
    the `postgres` user when the tests run as root (the server refuses root), stopped and deleted afterwards.
    Yields a function that creates a fresh, empty database and returns its SQLAlchemy URL."""
    import psycopg

    as_user = {"user": "postgres", "group": "postgres", "extra_groups": []} if os.geteuid() == 0 else {}
    home = Path(tempfile.mkdtemp(prefix="rectified-pg-"))
    if as_user:
        shutil.chown(home, "postgres", "postgres")
    cluster, port = home / "cluster", free_port()
    subprocess.run([_postgres_program("initdb"), "-D", str(cluster), "-U", "postgres", "-A", "trust", "--no-sync",
                    "-E", "UTF8", "--locale=C"], check=True, capture_output=True, **as_user)
    log = open(home / "server.log", "wb")  # noqa: SIM115 - closed after the server stops
    server = subprocess.Popen([_postgres_program("postgres"), "-D", str(cluster), "-p", str(port), "-k", str(home),
                               "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"], stdout=log,
                              stderr=subprocess.STDOUT, **as_user)
    admin = f"host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=2"
    deadline = time.monotonic() + 60
    while True:
        try:
            psycopg.connect(admin).close()
            break
        except psycopg.OperationalError:
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"PostgreSQL did not start: {(home / 'server.log').read_text()[-1000:]}")
            time.sleep(0.2)
    created = []

    def new_database() -> str:
        name = f"gradebook_{len(created)}"
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        created.append(name)
        return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{name}"

    yield new_database
    server.send_signal(signal.SIGINT)  # fast shutdown: disconnect clients, stop cleanly
    server.wait(timeout=60)
    log.close()
    shutil.rmtree(home, ignore_errors=True)


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
