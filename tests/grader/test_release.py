"""`course release`: exercises/ is exactly what nbgrader makes from solutions/ today, with no solutions
or hidden tests in it; a bad source stops the release with a clear error and touches nothing."""

import filecmp
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_lib.grading.authoring.release import release
from course_lib.grading.authoring.sources import SourceError, assignments, read_source
from tests.conftest import ROOT

ASSIGNMENTS = assignments()


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_every_source_has_a_committed_release():
    assert ASSIGNMENTS and sorted(p.name for p in (ROOT / "exercises").iterdir()) == ASSIGNMENTS


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_committed_exercise_is_exactly_what_release_produces_today(assignment, tmp_path):
    release([assignment], root=tmp_path)
    fresh, committed = tmp_path / "exercises" / assignment, ROOT / "exercises" / assignment
    assert _tree(fresh) == _tree(committed), f"run `course release {assignment}` and commit exercises/"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_released_exercise_holds_no_solution_hidden_test_or_mutant(assignment):
    folder = ROOT / "exercises" / assignment
    text = "\n".join(p.read_text() for p in folder.rglob("*") if p.is_file())
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "hidden=True"):
        assert marker not in text
    assert not (folder / "mutants.toml").exists()
    source = read_source(assignment)
    released = nbformat.read(folder / f"{assignment}.ipynb", as_version=4)
    solution_lines = {line.strip() for c in source.cells if c.metadata["nbgrader"].get("solution")
                      for line in c.source.split("\n") if line.strip().startswith("return ")}
    assert not any(line in text for line in solution_lines)
    assert len(released.cells) == len(source.cells)


@pytest.fixture
def fake_course(tmp_path, monkeypatch):
    """A copy of the course's config and ex01 source under tmp_path, used as the course root."""
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    shutil.copytree(ROOT / "solutions" / "ex01_activations", tmp_path / "solutions" / "ex01_activations")
    (tmp_path / "exercises").mkdir()
    monkeypatch.setenv("RECTIFIED_ROOT", str(tmp_path))
    return tmp_path


def _source_path(root: Path) -> Path:
    return root / "solutions" / "ex01_activations" / "ex01_activations.ipynb"


def _edit_source(root: Path, edit) -> None:
    nb = json.loads(_source_path(root).read_text())
    edit(nb["cells"])
    _source_path(root).write_text(json.dumps(nb))


def _grade_ids(cells) -> list[str]:
    return [c["metadata"]["nbgrader"]["grade_id"] for c in cells]


def test_release_refuses_a_missing_source_notebook(fake_course):
    _source_path(fake_course).unlink()
    with pytest.raises(SourceError, match=r"ex01_activations\.ipynb: no source notebook"):
        release(["ex01_activations"])


def test_release_refuses_malformed_json_and_names_the_file(fake_course):
    _source_path(fake_course).write_text("{not json")
    with pytest.raises(SourceError, match=r"ex01_activations\.ipynb: not a readable notebook"):
        release(["ex01_activations"])


def test_release_refuses_a_duplicate_grade_id_naming_both_cells(fake_course):
    def duplicate(cells):
        ids = _grade_ids(cells)
        cells[ids.index("relu_grad")]["metadata"]["nbgrader"]["grade_id"] = "relu"
    _edit_source(fake_course, duplicate)
    with pytest.raises(SourceError, match=r"cells \d+ and \d+ share the grade id 'relu'"):
        release(["ex01_activations"])


def test_release_refuses_a_test_cell_without_points(fake_course):
    def no_points(cells):
        del cells[_grade_ids(cells).index("test_relu")]["metadata"]["nbgrader"]["points"]
    _edit_source(fake_course, no_points)
    with pytest.raises(SourceError, match=r"cell \d+ \('test_relu'\) is graded but has no points"):
        release(["ex01_activations"])


def test_a_failed_release_leaves_the_existing_exercises_untouched(fake_course):
    existing = fake_course / "exercises" / "ex01_activations"
    shutil.copytree(ROOT / "exercises" / "ex01_activations", existing)
    before = _tree(existing)
    _source_path(fake_course).write_text("")
    with pytest.raises(SourceError):
        release(["ex01_activations"])
    assert _tree(existing) == before


def test_course_release_reports_a_bad_source_in_one_line(fake_course):
    _source_path(fake_course).write_text("{not json")
    course = Path(sys.executable).parent / "course"
    result = subprocess.run([str(course), "release", "ex01_activations"], capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1


def test_released_tree_compare_catches_a_hand_edit(tmp_path):
    """The comparison above is not vacuous: a one-character edit is seen."""
    release(["ex01_activations"], root=tmp_path)
    edited = tmp_path / "exercises" / "ex01_activations" / "ex01_activations.ipynb"
    edited.write_text(edited.read_text().replace("Exercise 1", "Exercise one"))
    assert not filecmp.cmp(edited, ROOT / "exercises" / "ex01_activations" / "ex01_activations.ipynb", shallow=False)
