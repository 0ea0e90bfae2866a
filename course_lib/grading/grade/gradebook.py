"""The single writer of grades: nbgrader's gradebook (so formgrader keeps working) and grades.csv.

The gradebook is any SQLAlchemy URL nbgrader can use: SQLite in the course folder by default, or a shared
PostgreSQL database (`postgresql+psycopg://user:password@host/db`) that formgrader on another machine reads.
Only the grading run's main thread writes, through one `GradebookWriter` per run; workers hand it plain
results. Two grading runs may still write one PostgreSQL gradebook at once, so every write here (and the
release recorded by `write_lock`'s caller) holds the database's own advisory lock: nbgrader creates tables,
students, assignments and submissions by find-then-insert, and two writers interleaving those steps would
hit unique constraints. nbgrader's own commands and formgrader do not take that lock.
"""

import csv
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from course_lib.errors import CourseError
from course_lib.grading.nbgrader_api import course_config

CSV_COLUMNS = ["student_id", "assignment", "score", "max_score", "status", "flags", "duration_s", "late_s", "penalty"]
CONNECT_TIMEOUT_S = 5
LOCK_KEY = int.from_bytes(hashlib.sha256(b"rectified gradebook writer").digest()[:8], "big", signed=True)


class GradebookUnreachable(CourseError, RuntimeError):
    """The gradebook URL is malformed, its driver is missing, or its database cannot be reached."""


def gradebook_url(root: Path, override: str | None = None) -> str:
    """`override` if given, else nbgrader_config.py's CourseDirectory.db_url, else root/gradebook.db."""
    if override:
        return override
    config = course_config(root)
    return config.CourseDirectory.db_url if "db_url" in config.CourseDirectory else f"sqlite:///{root / 'gradebook.db'}"


def shown(db_url: str) -> str:
    """The URL as it may be printed: the password masked."""
    try:
        return make_url(db_url).render_as_string(hide_password=True)
    except ArgumentError:
        return db_url


def _engine(db_url: str):
    url = make_url(db_url)
    args = {"connect_timeout": CONNECT_TIMEOUT_S} if url.get_backend_name() == "postgresql" else {}
    return create_engine(url, connect_args=args, poolclass=NullPool)


def check_reachable(db_url: str) -> None:
    """Connect once, write nothing; raise GradebookUnreachable with a one-line reason if that fails. A SQLite
    file need not exist yet (nbgrader creates it), but its folder must."""
    try:
        url = make_url(db_url)
    except ArgumentError:
        raise GradebookUnreachable(f"the gradebook URL {db_url!r} is not a SQLAlchemy URL") from None
    if url.get_backend_name() == "sqlite":
        folder = Path(url.database or "").parent if url.database not in (None, "", ":memory:") else None
        if folder is None or not folder.is_dir():
            raise GradebookUnreachable(f"the gradebook {db_url} is not a file in an existing folder")
        return
    try:
        engine = _engine(db_url)
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
    except (NoSuchModuleError, ImportError, SQLAlchemyError, OSError) as err:
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        raise GradebookUnreachable(f"cannot reach the gradebook {shown(db_url)}: {reason}") from None


def _hold_lock(connection) -> Iterator[None]:
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_KEY})
    connection.commit()
    try:
        yield
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
        connection.commit()


def _is_postgres(db_url: str) -> bool:
    return make_url(db_url).get_backend_name() == "postgresql"


@contextmanager
def write_lock(db_url: str) -> Iterator[None]:
    """Hold the gradebook's writer lock for one block: a PostgreSQL session advisory lock (released when the
    block ends or the connection drops). SQLite serialises writers on its file lock itself: a no-op there."""
    if not _is_postgres(db_url):
        yield
        return
    engine = _engine(db_url)
    try:
        with engine.connect() as connection:
            yield from _hold_lock(connection)
    finally:
        engine.dispose()


class GradebookWriter:
    """One grading run's gradebook: opened once (nbgrader checks its tables on every open), each student's
    scores recorded under the writer lock, on a lock connection kept open for the run."""

    def __init__(self, db_url: str):
        self.db_url = db_url
        self._lock_engine = _engine(db_url) if _is_postgres(db_url) else None
        self._lock_connection = self._lock_engine.connect() if self._lock_engine else None
        try:
            with self._locked():  # on a fresh database, nbgrader creates its tables here
                self.gradebook = Gradebook(db_url)
        except BaseException:
            self._close_lock()
            raise

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if self._lock_connection is None:
            yield
        else:
            yield from _hold_lock(self._lock_connection)

    def record_scores(self, assignment: str, student: str, cell_scores: dict[str, float]) -> None:
        """Create the student and submission if needed and set each test cell's autograded score."""
        gradebook = self.gradebook
        with self._locked():
            gradebook.update_or_create_student(student)
            try:
                gradebook.find_submission(assignment, student)
            except MissingEntry:
                gradebook.add_submission(assignment, student)
            for cell, score in cell_scores.items():
                gradebook.find_grade(cell, assignment, assignment, student).auto_score = score
            gradebook.db.commit()

    @contextmanager
    def locked(self) -> Iterator[Gradebook]:
        """The gradebook, under the writer lock, for a write this class has no method for (late.py's)."""
        with self._locked():
            yield self.gradebook

    def _close_lock(self) -> None:
        if self._lock_engine is not None:
            self._lock_connection.close()
            self._lock_engine.dispose()

    def close(self) -> None:
        self.gradebook.close()
        self._close_lock()

    def __enter__(self) -> "GradebookWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """A CSV cell no spreadsheet reads as a formula: text starting with = + - @ (or a tab or carriage return)
    gets a leading apostrophe, as OWASP's CSV-injection advice says; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _is_number(value):
        return "'" + value
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def write_csv(path: Path, assignment: str, rows: list[dict]) -> None:
    """Replace `assignment`'s rows in the CSV at `path` (other assignments' rows are kept), atomically; every
    cell spreadsheet_safe."""
    kept = []
    if path.exists():
        with open(path, newline="") as f:
            kept = [r for r in csv.DictReader(f) if r.get("assignment") != assignment]
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".grades-", suffix=".csv")
    with os.fdopen(fd, "w", newline="") as f:
        writer = csv.DictWriter(f, CSV_COLUMNS)
        writer.writeheader()
        rows = kept + sorted(rows, key=lambda r: r["student_id"])
        writer.writerows({k: spreadsheet_safe(v) for k, v in row.items()} for row in rows)
    os.replace(tmp, path)
