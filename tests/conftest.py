"""Shared test settings: one torch thread (as the course kernel uses), a headless matplotlib backend; shared
fixtures: the course root, a real PostgreSQL server."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def course_root() -> Path:
    return ROOT


def _postgres_program(name: str) -> str:
    """A PostgreSQL server program: Debian keeps them in /usr/lib/postgresql/<version>/bin, off PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    program = str(found[-1]) if found else shutil.which(name)
    if program is None:
        pytest.fail(f"PostgreSQL's {name} is missing: apt-get install postgresql (bash .ci/run does)")
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
