"""`course grade` decides every test outside the sandbox, and agrees with nbgrader's in-kernel verdict.

For each assignment, the solution, the untouched release and every mutant in solutions/<a>/mutants.toml are
graded twice: by nbgrader (`course check`, tests run in the student's kernel) and by `course grade` (tests
judged in the grader's process from the probe log). Both must give every student the same score and fail the
same test cells, so the outside verdict is neither laxer nor stricter than the one students see.
"""

import nbformat
import pytest

from course_lib.grading.check import load_mutants
from course_lib.grading.grade import grade
from course_lib.grading.sandbox import Limits
from course_lib.grading.sources import assignments, grade_id
from tests import grading_fixtures as fx
from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")]
OUTSIDE = assignments()
LIMITS = Limits(wall_s=300, cell_timeout_s=120)


def _student_versions(assignment: str) -> dict:
    """student id -> notebook: the solution's answers typed into the release, the blank release, and each
    mutant applied to the solution's answers (the names course check uses)."""
    versions = {"solution": fx.solved(ROOT, assignment), "blank": fx.released(ROOT, assignment)}
    for i, mutant in enumerate(load_mutants(assignment), 1):
        nb = fx.solved(ROOT, assignment)
        cell = fx.cell(nb, mutant.cell)
        assert cell.source.count(mutant.find) == 1, mutant.name
        cell.source = cell.source.replace(mutant.find, mutant.replace)
        versions[f"mutant-{i:02d}"] = nb
    return versions


def _failed_cells(graded, source_points: dict) -> set[str]:
    return {cell for cell, points in source_points.items() if graded.cell_scores.get(cell, 0.0) < points}


@pytest.mark.parametrize("assignment", OUTSIDE)
def test_course_grade_gives_every_student_nbgraders_score_and_failed_tests(assignment, tmp_path, monkeypatch):
    inside = fx.checked(assignment)
    nbgrader_scores = {"solution": inside.solution, "blank": inside.blank,
                       **{f"mutant-{i:02d}": inside.mutants[m.name] for i, m in enumerate(load_mutants(assignment), 1)}}
    course = fx.make_course(ROOT, tmp_path / "course", assignment)
    for student, nb in _student_versions(assignment).items():
        folder = course / "submitted" / student / assignment
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{assignment}.ipynb")
    monkeypatch.setenv("RECTIFIED_ROOT", str(course))
    results = grade(assignment, workers=2, limits=LIMITS, progress=False)
    outside = {g.student_id: g for g in results}
    source = nbformat.read(course / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    points = {grade_id(c): float(c.metadata["nbgrader"]["points"]) for c in source.cells
              if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution")}
    for student, score in nbgrader_scores.items():
        graded = outside[student]
        assert graded.status == "graded", (student, graded.flags)
        assert (graded.score, _failed_cells(graded, points)) == (score.points, set(score.failed_tests)), student
