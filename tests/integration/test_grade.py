"""`course grade` end to end on a class of ex01 submissions: one test per attack and fault, each asserting
score and status (no attack gains a point; a broken or hostile submission never stops the others); plus
grades.csv, the gradebook, the autograded notebooks, feedback, resuming."""

import csv
import os
import signal
import subprocess
import sys
import time

import nbformat
import pytest
from nbgrader.api import Gradebook

from course_lib.grading.grade import grade
from course_lib.grading.grade import submission as submission_module
from course_lib.grading.sandbox.bubblewrap import Limits
from tests import grading_fixtures as fx
from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.attack, pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")]
LIMITS = Limits(wall_s=40, cell_timeout_s=10)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = fx.make_course(ROOT, tmp_path_factory.mktemp("course"))
    submitted = course / "submitted"
    fx.make_class(ROOT, submitted)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECTIFIED_ROOT", str(course))
        results = {g.student_id: g for g in grade(fx.A, submitted, workers=2, limits=LIMITS, progress=False)}
        yield course, submitted, results, mp


@pytest.mark.sandbox
@pytest.mark.parametrize("student", sorted(fx.CASES))
def test_each_attack_and_fault_gets_its_status_and_gains_no_point(graded, student):
    _, _, results, _ = graded
    _, status, score = fx.CASES[student]
    assert (results[student].status, results[student].score) == (status, score), results[student].flags


@pytest.mark.sandbox
@pytest.mark.parametrize("student", sorted(fx.BROKEN_FILES))
def test_unreadable_files_are_invalid_with_their_reason(graded, student):
    _, _, results, _ = graded
    _, status, reason = fx.BROKEN_FILES[student]
    assert results[student].status == status and reason in results[student].flags[0]


@pytest.mark.sandbox
def test_renamed_missing_and_unsafe_ids_are_handled_and_everyone_else_is_graded(graded):
    _, _, results, _ = graded
    assert results["renamed"].status == "graded" and results["renamed"].score == 16
    assert "expected ex01_activations.ipynb" in results["renamed"].flags[0]
    assert results["no_notebook"].status == "missing"
    assert results["has space"].status == "invalid"
    assert len(results) == len(fx.CASES) + len(fx.BROKEN_FILES) + 3
    assert "error" not in {g.status for g in results.values()}


@pytest.mark.sandbox
def test_tampering_and_borrowing_are_named_in_the_flags(graded):
    _, _, results, _ = graded
    assert "edited read-only cell 'test_relu' (restored)" in results["edit_test"].flags
    assert "changed the grading metadata of cell 'test_relu_grad' (ignored)" in results["more_points"].flags
    for student in ("borrow", "borrow_importlib"):
        assert "uses the course's reference (course_lib.activations.relu)" in results[student].flags


@pytest.mark.sandbox
def test_status_is_what_the_host_saw_never_what_the_submission_printed(graded):
    _, _, results, _ = graded
    assert results["fake_status"].flags[-1].startswith("timeout: cell")
    assert results["done_early"].flags[-1].startswith("crashed: the submission broke the grader's channel")
    assert results["flood"].flags[-1].startswith("crashed: the submission broke the grader's channel")


@pytest.mark.sandbox
def test_the_autograded_notebook_is_what_ran_whatever_runs_after_the_last_cell(graded):
    course, _, _, _ = graded
    nb = nbformat.read(course / "autograded" / "atexit" / fx.A / f"{fx.A}.ipynb", as_version=4)
    nbformat.validate(nb)
    assert "np.abs(x)" in fx.cell(nb, "relu").source
    texts = str([o for c in nb.cells if c.cell_type == "code" for o in c.outputs])
    assert "all passed" not in texts and "relu returned |x|" in texts  # the grader's message, under the test cell


@pytest.mark.sandbox
def test_invalid_cells_a_student_adds_leave_a_valid_autograded_notebook(graded):
    course, _, results, _ = graded
    nb = nbformat.read(course / "autograded" / "invalid_added_cell" / fx.A / f"{fx.A}.ipynb", as_version=4)
    nbformat.validate(nb)
    assert results["invalid_added_cell"].score == 16


@pytest.mark.sandbox
def test_grades_csv_has_one_row_per_student_with_the_documented_columns(graded):
    course, _, results, _ = graded
    with open(course / "grades.csv", newline="") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    assert list(next(iter(rows.values()))) == ["student_id", "assignment", "score", "max_score", "status", "flags",
                                              "duration_s", "late_s", "penalty"]
    assert rows.keys() == results.keys()
    assert float(rows["full"]["score"]) == 16 and float(rows["full"]["max_score"]) == 16
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows.values() for v in r.values())


@pytest.mark.sandbox
def test_the_gradebook_holds_the_autograded_scores_for_formgrader(graded):
    course, _, results, _ = graded
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        scores = {s.student.id: s.code_score for s in gradebook.assignment_submissions(fx.A)}
    assert scores["full"] == 16 and scores["wrong_relu"] == 13 and "empty" not in scores
    assert (course / "autograded" / "full" / fx.A / f"{fx.A}.ipynb").exists()


@pytest.mark.sandbox
def test_feedback_shows_scores_and_messages_but_no_hidden_test_source(graded):
    course, _, _, _ = graded
    html = (course / "feedback" / "wrong_relu" / fx.A / f"{fx.A}.html").read_text()
    assert "relu: relu returned |x|" in html  # the grader's teaching message
    assert "Test <code>test_relu_hidden</code>: 0 / 2 points" in html
    for secret in ("7301", "hidden=True", "BEGIN HIDDEN TESTS"):
        assert secret not in html


@pytest.mark.sandbox
def test_hidden_test_source_a_submission_printed_is_redacted_from_its_feedback(graded):
    course, _, results, _ = graded
    html = (course / "feedback" / "print_cells" / fx.A / f"{fx.A}.html").read_text()
    assert "ex01.check_relu(relu, seed=7301, hidden=True)" not in html and "[hidden test]" in html
    assert results["print_cells"].score == 16


@pytest.mark.sandbox
def test_an_unchanged_class_is_not_graded_again_and_a_changed_submission_is(graded, monkeypatch):
    course, submitted, results, _ = graded
    calls = []
    real = submission_module.grade_one
    monkeypatch.setattr(submission_module, "grade_one", lambda *a, **k: calls.append(a[1].student_id) or real(*a, **k))
    again = {g.student_id: g for g in grade(fx.A, submitted, workers=2, limits=LIMITS, progress=False)}
    assert sorted(calls) == sorted(s for s, g in results.items() if g.status == "invalid")
    assert {s: (g.status, g.score) for s, g in again.items()} == {s: (g.status, g.score) for s, g in results.items()}
    fx.submit(submitted, "wrong_relu", fx.solved(ROOT))
    calls.clear()
    fixed = {g.student_id: g for g in grade(fx.A, submitted, workers=2, limits=LIMITS, progress=False)}
    assert "wrong_relu" in calls and fixed["wrong_relu"].score == 16


@pytest.mark.sandbox
def test_a_failure_while_grading_one_submission_is_its_error_and_the_others_are_saved(tmp_path, monkeypatch):
    cases = {k: fx.CASES[k] for k in ("full", "wrong_relu", "blank")}
    course = fx.make_course(ROOT, tmp_path / "course")
    fx.make_class(ROOT, course / "submitted", cases)
    monkeypatch.setenv("RECTIFIED_ROOT", str(course))
    real = submission_module.feedback_html

    def broken_for_one(plan, graded, executed):
        if graded.student_id == "wrong_relu":
            raise OverflowError("int too large to convert to float")
        return real(plan, graded, executed)

    monkeypatch.setattr(submission_module, "feedback_html", broken_for_one)
    results = {g.student_id: g for g in grade(fx.A, course / "submitted", workers=2, limits=LIMITS, progress=False)}
    assert results["wrong_relu"].status == "error"
    assert results["wrong_relu"].flags == ("grading failed: OverflowError: int too large to convert to float",)
    assert (results["full"].status, results["full"].score) == ("graded", 16)
    with open(course / "grades.csv", newline="") as f:
        rows = {r["student_id"]: r["status"] for r in csv.DictReader(f)}
    assert rows["wrong_relu"] == "error" and rows["full"] == "graded" and rows["blank"] == "graded"
    monkeypatch.setattr(submission_module, "feedback_html", real)  # fixed: the errored one is graded again
    again = {g.student_id: g for g in grade(fx.A, course / "submitted", workers=2, limits=LIMITS, progress=False)}
    assert (again["wrong_relu"].status, again["wrong_relu"].score) == ("graded", 13)


@pytest.mark.sandbox
def test_a_run_killed_midway_finishes_the_rest_when_run_again(tmp_path):
    course = fx.make_course(ROOT, tmp_path / "course")
    cases = {k: fx.CASES[k] for k in ("full", "wrong_relu", "blank", "patch_numpy", "always_equal", "set_result")}
    fx.make_class(ROOT, course / "submitted", cases)
    env = dict(os.environ, RECTIFIED_ROOT=str(course))
    command = [str(ROOT / ".venv" / "bin" / "course") if (ROOT / ".venv").exists() else "course", "grade", fx.A,
               "--workers", "1"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = course / "grading" / fx.A / "state"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and len([p for p in state.glob("[!.]*.json")]) < 2:
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    first.wait()
    done_before = {p.stem for p in state.glob("[!.]*.json")}
    assert 2 <= len(done_before) < len(cases)  # killed with submissions left to grade
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    with open(course / "grades.csv", newline="") as f:
        rows = {r["student_id"]: (r["status"], float(r["score"])) for r in csv.DictReader(f)}
    for student, (_, status, score) in cases.items():
        assert rows[student] == (status, score)
    assert len(rows) == len(cases) + 5


def test_course_grade_cli_refuses_an_unknown_assignment_in_one_line():
    course = [sys.executable, "-m", "course_lib.cli", "grade", "ex99"]
    result = subprocess.run(course, capture_output=True, text=True)
    assert result.returncode == 1 and result.stderr.startswith("Error: no assignment ex99")
