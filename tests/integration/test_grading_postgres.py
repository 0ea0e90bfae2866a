"""`course grade` into a real PostgreSQL gradebook (a server started by the `postgres_database` fixture):
the same grades as SQLite, read back through nbgrader's own API and a running formgrader; two concurrent
runs into one fresh database lose nothing; an unreachable database stops the run before anything is written."""

import json
import os
import subprocess
import time
import urllib.request

import pytest
from nbgrader.api import Gradebook

from course_lib.grading.grade import grade
from course_lib.grading.nbgrader_api import api
from course_lib.grading.sandbox.bubblewrap import Limits
from tests import grading_fixtures as fx
from tests.conftest import ROOT, free_port

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")]
LIMITS = Limits(wall_s=40, cell_timeout_s=10)
CASES = {k: fx.CASES[k] for k in ("full", "wrong_relu", "patch_channel", "edit_test", "os_exit", "blank")}
COURSE = [str(ROOT / ".venv" / "bin" / "course") if (ROOT / ".venv").exists() else "course"]


def _class(tmp_path, name, cases=CASES):
    course = fx.make_course(ROOT, tmp_path / name)
    fx.make_class(ROOT, course / "submitted", cases)
    return course


def _cell_scores(db_url: str) -> dict[tuple[str, str], float]:
    """(student, test cell) -> autograded score, for every submission in the gradebook."""
    with Gradebook(db_url) as gradebook:
        return {(s.student.id, g.name): g.auto_score for s in gradebook.assignment_submissions(fx.A)
                for nb in s.notebooks for g in nb.grades if g.cell_type == "code"}


def _formgrader_rows(course, db_url: str) -> dict[str, tuple]:
    """What formgrader's data layer (nbgrader's API object) lists for the assignment's submissions."""
    rows = api(course, db_url).get_submissions(fx.A)
    return {r["student"]: (r["score"], r["max_score"], r["autograded"]) for r in rows}


@pytest.fixture(scope="module")
def both(tmp_path_factory, postgres_database):
    """The same class graded into SQLite (the default) and into PostgreSQL (named in nbgrader_config.py)."""
    tmp, url = tmp_path_factory.mktemp("both"), postgres_database()
    lite, pg = _class(tmp, "sqlite"), _class(tmp, "postgres")
    with open(pg / "nbgrader_config.py", "a") as config:
        config.write(f"\nc.CourseDirectory.db_url = {url!r}\n")
    results = {}
    for course in (lite, pg):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("RECTIFIED_ROOT", str(course))
            results[course.name] = grade(fx.A, course / "submitted", workers=2, limits=LIMITS, progress=False)
    return lite, pg, url, results


def _plain(g):
    return g.student_id, g.status, g.score, g.flags, g.cell_scores


@pytest.mark.sandbox
@pytest.mark.postgresql
def test_postgres_gets_the_same_grades_as_sqlite(both):
    lite, pg, url, results = both
    assert not (pg / "gradebook.db").exists()  # the URL in nbgrader_config.py was used
    assert [_plain(g) for g in results["sqlite"]] == [_plain(g) for g in results["postgres"]]
    sqlite_url = f"sqlite:///{lite / 'gradebook.db'}"
    assert _cell_scores(url) == _cell_scores(sqlite_url)
    assert len({student for student, _ in _cell_scores(url)}) == len(CASES) + 1  # + "renamed"
    formgrader = _formgrader_rows(pg, url)
    assert formgrader == _formgrader_rows(lite, sqlite_url)
    assert formgrader["full"][:2] == (16, 20) and formgrader["wrong_relu"][0] == 13  # 4 points are written answers


@pytest.mark.sandbox
@pytest.mark.postgresql
def test_a_running_formgrader_serves_the_postgres_grades(both):
    _, pg, _, _ = both
    port, token = free_port(), "rectified-formgrader-token"
    jupyter = str(ROOT / ".venv" / "bin" / "jupyter") if (ROOT / ".venv").exists() else "jupyter"
    server = subprocess.Popen([jupyter, "server", "--no-browser", "--allow-root", f"--port={port}",
                               "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
                               f"--ServerApp.root_dir={pg}"], cwd=pg, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/formgrader/api/submissions/{fx.A}"
        rows = _get_json(url, token, server)
        scores = {r["student"]: r["score"] for r in rows}
        assert scores["full"] == 16 and scores["wrong_relu"] == 13 and scores["patch_channel"] == 0
    finally:
        server.terminate()
        server.wait(timeout=30)


def _get_json(url: str, token: str, server: subprocess.Popen, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while True:
        try:
            request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.mark.sandbox
@pytest.mark.postgresql
def test_two_concurrent_runs_into_one_fresh_database_lose_nothing(tmp_path, postgres_database):
    url = postgres_database()  # empty: both runs race to create the tables, the assignment and its cells
    halves = [dict(list(CASES.items())[:3]), dict(list(CASES.items())[3:])]
    courses = [_class(tmp_path, f"run{i}", {f"{student}-{i}": case for student, case in half.items()})
               for i, half in enumerate(halves)]
    runs = [subprocess.Popen(COURSE + ["grade", fx.A, "--db", url, "--workers", "1"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=_env(course)) for course in courses]
    try:
        errors = [run.communicate(timeout=300)[1] for run in runs]
    finally:
        for run in runs:
            run.kill()
    assert [run.returncode for run in runs] == [0, 0], [e[-2000:] for e in errors]
    scores = {}
    for (student, _), score in _cell_scores(url).items():
        scores[student] = scores.get(student, 0.0) + score
    expected = {f"{student}-{i}": case[2] for i, half in enumerate(halves) for student, case in half.items()}
    assert scores == {**expected, "renamed": 16}  # "renamed" is in both classes: graded by both runs


def _env(course):
    return dict(os.environ, RECTIFIED_ROOT=str(course))


def _files(course) -> set:
    return {p.relative_to(course) for p in course.rglob("*")}


@pytest.mark.sandbox
@pytest.mark.parametrize("url", ["postgresql+psycopg://postgres@127.0.0.1:{port}/nowhere", "not a url",
                                 "sqlite:////no/such/folder/gradebook.db"])
def test_an_unreachable_gradebook_is_one_line_before_anything_is_written(tmp_path, url):
    course = _class(tmp_path, "course", {"full": CASES["full"]})
    before = _files(course)
    result = subprocess.run(COURSE + ["grade", fx.A, "--db", url.format(port=free_port())], capture_output=True,
                            text=True, env=_env(course), timeout=60)
    assert result.returncode == 1 and result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert "gradebook" in result.stderr, result.stderr
    assert _files(course) == before  # no state file, no grades.csv, no gradebook.db, no reference cache
