"""Restore: what is graded is the source's locked and test cells plus only the student's answer text.
Deleting or editing read-only or test cells, or changing grading metadata, cannot change the grade."""

import nbformat
import pytest

from course_lib.grading.authoring.sources import grade_id, read_source
from course_lib.grading.grade.restore import restore
from tests.conftest import ROOT

A = "ex01_activations"
SOURCE = read_source(A)
RELEASED = nbformat.read(ROOT / "exercises" / A / f"{A}.ipynb", as_version=4)


def _student():
    return nbformat.from_dict(RELEASED)


def _cell(nb, gid):
    return next(c for c in nb.cells if grade_id(c) == gid)


def test_untouched_release_restores_to_the_source_with_stubs_and_no_flags():
    restored, flags = restore(SOURCE, RELEASED, _student())
    assert flags == ()
    assert [grade_id(c) for c in restored.cells] == [grade_id(c) for c in SOURCE.cells]
    assert "raise NotImplementedError()" in _cell(restored, "relu").source
    assert "BEGIN HIDDEN TESTS" in _cell(restored, "test_relu_hidden").source


def test_the_students_answer_text_is_what_gets_graded():
    student = _student()
    _cell(student, "relu").source = "def relu(x):\n    return x.clip(0)\n"
    restored, _ = restore(SOURCE, RELEASED, student)
    assert _cell(restored, "relu").source == "def relu(x):\n    return x.clip(0)\n"


def test_an_edited_test_cell_is_restored_and_flagged():
    student = _student()
    _cell(student, "test_relu").source = "pass  # tests removed"
    restored, flags = restore(SOURCE, RELEASED, student)
    assert _cell(restored, "test_relu").source == _cell(SOURCE, "test_relu").source
    assert flags == ("edited read-only cell 'test_relu' (restored)",)


def test_a_deleted_test_cell_comes_back_with_its_hidden_tests():
    student = _student()
    student.cells = [c for c in student.cells if grade_id(c) != "test_relu_hidden"]
    restored, flags = restore(SOURCE, RELEASED, student)
    assert "hidden=True" in _cell(restored, "test_relu_hidden").source
    assert flags == ("deleted cell 'test_relu_hidden' (restored)",)


def test_a_deleted_answer_cell_is_graded_as_the_stub_never_as_the_solution():
    student = _student()
    student.cells = [c for c in student.cells if grade_id(c) != "relu"]
    restored, flags = restore(SOURCE, RELEASED, student)
    assert "BEGIN SOLUTION" not in _cell(restored, "relu").source
    assert "raise NotImplementedError()" in _cell(restored, "relu").source
    assert flags == ("deleted answer cell 'relu' (graded as unanswered)",)


def test_changed_points_are_ignored_and_flagged():
    student = _student()
    _cell(student, "test_relu").metadata["nbgrader"]["points"] = 100
    restored, flags = restore(SOURCE, RELEASED, student)
    assert _cell(restored, "test_relu").metadata["nbgrader"]["points"] == 1
    assert flags == ("changed the grading metadata of cell 'test_relu' (ignored)",)


def test_a_test_cell_relabelled_as_an_answer_cell_is_still_a_test():
    student = _student()
    meta = _cell(student, "test_relu").metadata["nbgrader"]
    meta.update(solution=True, grade=False, locked=False)
    _cell(student, "test_relu").source = "pass"
    restored, flags = restore(SOURCE, RELEASED, student)
    assert _cell(restored, "test_relu").source == _cell(SOURCE, "test_relu").source
    assert "changed the grading metadata of cell 'test_relu' (ignored)" in flags


def test_added_cells_are_kept_after_the_cell_they_followed_without_outputs():
    student = _student()
    helper = nbformat.v4.new_code_cell("def helper(x):\n    return x", outputs=[], execution_count=3)
    index = student.cells.index(_cell(student, "relu"))
    student.cells.insert(index + 1, helper)
    restored, flags = restore(SOURCE, RELEASED, student)
    position = [grade_id(c) for c in restored.cells].index("relu")
    assert restored.cells[position + 1].source == helper.source and flags == ()
    assert restored.cells[position + 1].execution_count is None


def test_a_duplicated_grade_id_grades_the_first_copy_and_is_flagged():
    student = _student()
    first = _cell(student, "relu")
    first.source = "def relu(x):\n    return x.clip(0)\n"
    copy = nbformat.from_dict(first)
    copy.source = "def relu(x):\n    return x\n"
    student.cells.append(copy)
    restored, flags = restore(SOURCE, RELEASED, student)
    assert _cell(restored, "relu").source == first.source
    assert flags == ("duplicate grade id 'relu' (the first copy was graded)",)


@pytest.mark.parametrize("gid", ["relu", "answer_kink"])
def test_restored_answer_cells_never_contain_the_solution(gid):
    restored, _ = restore(SOURCE, RELEASED, _student())
    assert "BEGIN SOLUTION" not in _cell(restored, gid).source


def test_a_cell_whose_grade_id_was_changed_is_ignored_and_flagged():
    student = _student()
    _cell(student, "test_relu").metadata["nbgrader"]["grade_id"] = "my_own_test"
    restored, flags = restore(SOURCE, RELEASED, student)
    assert _cell(restored, "test_relu").source == _cell(SOURCE, "test_relu").source
    assert "unknown grade id 'my_own_test' (cell ignored)" in flags
    assert "deleted cell 'test_relu' (restored)" in flags
