"""`course report` on a PostgreSQL gradebook: a small ex01 class graded by `course grade --db postgresql+psycopg://...`
(a throw-away server from the `postgres_database` fixture) reports the same items, misconceptions and scores as
the same class graded into SQLite, and those items are what the PostgreSQL gradebook holds, read back with
nbgrader's own API."""

import csv
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from nbgrader.api import Gradebook

from course_lib.cli import main
from course_lib.grading.authoring.mutants import load_mutants, mutate
from tests import grading_fixtures as fx
from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.postgresql,
              pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")]
MUTANTS = (1, 3)  # relu returns |x|; relu_grad(0) = 1: two named misconceptions
CSVS = ("items.csv", "misconceptions.csv", "scores.csv", "canvas.csv")


def _class(course: Path) -> Path:
    """ex01's solution, blank release, two mutants and the wrong-relu fault, as submitted."""
    fx.make_course(ROOT, course)
    submitted = course / "submitted"
    fx.submit(submitted, "solution", fx.solved(ROOT))
    fx.submit(submitted, "blank", fx.released(ROOT))
    fx.submit(submitted, "wrong_relu", fx.CASES["wrong_relu"][0](ROOT))
    mutants = load_mutants(fx.A)
    for i in MUTANTS:
        fx.submit(submitted, f"mutant-{i:02d}", mutate(fx.solved(ROOT), mutants[i - 1], fx.A))
    return course


def _run(course: Path, *args: str) -> str:
    """`course ARGS` in the course folder `course`, through the command line; its output."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECTIFIED_ROOT", str(course))
        mp.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")  # nbgrader's alembic
        result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def reported(tmp_path_factory, postgres_database):
    """The class graded and reported twice: into SQLite (the default) and into PostgreSQL (--db)."""
    tmp, url = tmp_path_factory.mktemp("report"), postgres_database()
    lite, pg = _class(tmp / "sqlite"), _class(tmp / "postgres")
    for course, db in ((lite, ()), (pg, ("--db", url))):
        _run(course, "grade", fx.A, "--workers", "2", "--timeout", "40", *db)
        _run(course, "report", fx.A, "--lms", "canvas", *db)
    return lite, pg, url


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_the_postgres_gradebook_was_used(reported):
    lite, pg, url = reported
    assert (lite / "gradebook.db").exists() and not (pg / "gradebook.db").exists()
    with Gradebook(url) as gb:
        assert {s.student.id for s in gb.assignment_submissions(fx.A)} == {
            "solution", "blank", "wrong_relu", *(f"mutant-{i:02d}" for i in MUTANTS)}


@pytest.mark.parametrize("name", CSVS)
def test_the_report_from_postgres_equals_the_report_from_sqlite(reported, name):
    lite, pg, _ = reported
    rows = _rows(pg / "reports" / fx.A / name)
    assert rows and rows == _rows(lite / "reports" / fx.A / name)


def test_the_items_from_postgres_are_what_its_gradebook_holds(reported):
    """Attempts, full marks and mean score per cell, recounted from the PostgreSQL gradebook with nbgrader's API."""
    _, pg, url = reported
    with Gradebook(url) as gb:
        scores = [{g.name: g.score for nb in s.notebooks for g in nb.grades if g.auto_score is not None}
                  for s in gb.assignment_submissions(fx.A)]
        points = {c.name: c.max_score for nb in gb.find_assignment(fx.A).notebooks for c in nb.grade_cells}
    items = {r["cell"]: r for r in _rows(pg / "reports" / fx.A / "items.csv")}
    autograded = {cell for s in scores for cell in s}
    assert autograded and autograded <= set(items)
    for cell in autograded:
        own = [s[cell] for s in scores if cell in s]
        assert int(items[cell]["attempted"]) == len(own)
        assert int(items[cell]["full_marks"]) == sum(v >= points[cell] for v in own)
        assert float(items[cell]["mean_score"]) == pytest.approx(sum(own) / len(own), abs=1e-4)


def test_the_misconceptions_built_into_the_class_are_found_in_the_postgres_report(reported):
    _, pg, _ = reported
    found = {r["misconception"]: set(r["student_ids"].split("; "))
             for r in _rows(pg / "reports" / fx.A / "misconceptions.csv")}
    assert found["relu returned |x|"] == {"mutant-01", "wrong_relu"}
    assert found["relu_grad(0) returned 1"] == {"mutant-03"}
