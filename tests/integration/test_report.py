"""`course report` on a graded ex01 class (the solution, the blank release, every mutant, a few faults): the
item statistics equal what the gradebook holds (recomputed here with nbgrader's API and scipy), each mutant's
misconception is found for exactly the students built to make it, the Canvas CSV round-trips through a reader
of Canvas's documented columns (manual scores included), the page is one offline file, and a missing or bad
input stops the command with one line."""

import csv
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from nbgrader.api import Gradebook
from scipy import stats

from course_lib.cli import main
from course_lib.grading.authoring.mutants import load_mutants, mutate
from course_lib.grading.grade import grade
from course_lib.grading.sandbox.bubblewrap import Limits
from course_lib.report import ReportError, report
from course_lib.report.misconceptions import DETACHES, NO_NONLINEARITY, OVERFLOWS, UPCASTS
from tests import grading_fixtures as fx
from tests.conftest import ROOT

pytestmark = [pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")]
LIMITS = Limits(wall_s=40, cell_timeout_s=10)
FAULTS = ("wrong_relu", "os_exit", "borrow", "edit_test")
# What each mutant's answers reproduce, by construction (solutions/ex01_activations/mutants.toml); None: a
# wrong answer no judge names.
MUTANT_MISCONCEPTIONS = {
    "relu returns |x|": "relu returned |x|",
    "relu upcasts float32 to float64": UPCASTS,
    "relu_grad(0) = 1 (>= for >)": "relu_grad(0) returned 1",
    "relu_grad(0) = 0.5": "relu_grad(0) returned 0.5",
    "leaky_relu ignores its slope argument": None,
    "leaky_relu_grad(0) = 1": "leaky_relu_grad(0) returned 1",
    "sigmoid overflows (naive exp)": OVERFLOWS,
    "sigmoid_grad = s(1 + s)": "sigmoid_grad used s(1 + s)",
    "tanh_grad missing the square": "tanh_grad returned 1 - tanh(x)",
    "tanh by the overflowing exp formula": OVERFLOWS,  # nan at |x| = 1000, with numpy's overflow warning
    "leaky_relu default slope 0.011 (near miss)": None,  # near misses: wrong values just past the tolerance
    "sigmoid off by 1e-3 relative (near miss)": None,
    "tanh computed in float16 (near miss)": None,
}



@dataclass(frozen=True)
class Unnamed:
    """A mutant no registry entry names, and why no judge can name it."""

    reason: str


WRONG_VALUES = Unnamed("its answers fail with 'wrong values', which fits many mistakes")
OUTSIDE_LIMITS = Unnamed("a configuration outside the stated limits breaks a rule; the message names the setting")
# For every mutant of every assignment (solutions/*/mutants.toml), the registry's name for what its graded
# answers reproduced, as `course report` found it on a class of every mutant; test_course_report_works_for_
# every_assignment regrades some of them.
NAMED_MUTANTS = {
    "ex01_activations": {m: v or WRONG_VALUES for m, v in MUTANT_MISCONCEPTIONS.items()},
    "ex02_backprop": {
        "db summed over the wrong axis (axis=1)": "db summed over the wrong axis",
        "dx not reshaped back to x's shape": "dx not reshaped back to x's shape",
        "dw transposed (dout.T @ x)": "dw is transposed (dout.T @ x)",
        "relu_backward passes gradient at x == 0 (>= for >)": "relu_backward passes gradient at x == 0",
        "relu_backward multiplies by the output relu(x)": "relu_backward multiplied dout by the layer's output relu(x)",
        "relu_backward upcasts float32 (mask as float64)": UPCASTS,
        "softmax not stabilised (overflows)": "softmax not stabilised (overflow)",
        "dscores not divided by N": "the gradients are N times too large",
        "no ReLU between the layers": "no ReLU between the layers",
        "loss summed instead of averaged": "the loss is summed over the examples",
        "gradient check that always passes": "the gradient check passed a wrong gradient (compared it with itself?)",
        "gradient check whose f ignores the perturbed parameter":
            "the gradient check failed right gradients (f ignores the perturbed parameter?)",
        "gradient check of the weights only": "the gradient check skipped parameters",
        "softmax_loss adds 1e-4 inside the log (near miss)": Unnamed(
            "its loss has wrong values, and its gradients no longer match it: that fits many mistakes")},
    "ex03_dead_neurons": {
        "pre-activation >= 0 counted as active": "a pre-activation >= 0 was counted as active",
        "rates counted over the first batch only": "rates counted over one batch, not the whole data set",
        "hooks left attached": "hooks left attached after measuring",
        "monitor watches the Linear layers instead of the ReLUs":
            "the monitor watched the Linear layers, not the ReLUs",
        "monitor looks only at the model's direct children":
            "ReLUs inside nested blocks were missed (direct children only?)",
        "counts returned instead of fractions": "returned counts of active examples, not fractions",
        "a unit active on a few examples counted as dead (rate < 0.01)":
            "a unit that is active on some examples was counted as dead",
        "per-layer dead fractions averaged": "the per-layer dead fractions were averaged",
        "provoke with a good learning rate (nothing dies)": "too few units died (the learning rate not large enough?)",
        "provoke by a bias that kills units at birth": "units killed at initialisation, not by training",
        "provoke with a tiny network": "too few units for a dead fraction to mean something",
        "prevent by a lower learning rate only (no BatchNorm)":
            "units dead at initialisation were still dead after training",
        "prevent with Leaky ReLU instead of BatchNorm": "units dead at initialisation were still dead after training",
        "prevent with BatchNorm at the dying learning rate": Unnamed(
            "the judge reports how many units died, not why: BatchNorm alone at that learning rate is no named "
            "mistake")},
    "ex04_leaky_prelu": {
        "slopes shared across channels (shape (1,) instead of (C,))": "one slope shared across channels",
        "slopes not registered as nn.Parameter (they do not learn)": "the slopes are not an nn.Parameter",
        "init ignored: slopes always start at 0.25": "the slopes ignored init",
        "slope applied to the positive side": "the slope was applied to the positive side",
        "channel axis taken as the last axis instead of axis dim": "the slopes acted on the last axis",
        "dim ignored: slopes always on axis 1": "the slopes acted on axis 1 whatever dim was",
        "gradient at x == 0 is 1 instead of the slope (>= for >)": "the gradient at x == 0 was 1 instead of the slope",
        "gradient at x == 0 is 1 + slope (two clamps)": "the gradient at x == 0 was 1 + slope",
        "calls torch's F.prelu as is (slopes on axis 1 whatever dim is)": "the slopes acted on axis 1 whatever dim was",
        "output detached from the graph (numpy round trip)": DETACHES,
        "build_mlp trains with nn.ReLU instead of the activation passed in":
            "build_mlp ignored the activation passed in",
        "build_mlp shares one activation instance between the layers":
            "one PReLU instance is used by several layers, which ties their slopes together",
        "build_mlp applies the activation only to the logits (no nonlinearity between the layers)": Unnamed(
            "the judge reports the layer shapes that differ from the architecture asked for, whatever the cause")},
    "ex06_capstone": {
        "no activation between the layers (a linear model)": NO_NONLINEARITY,
        "softmax on the output (probabilities fed to cross-entropy)":
            "the model's outputs are probabilities (every row sums to 1)",
        "wrong input size of the read-out layer (miscounted conv output length)":
            "the read-out layer's input size does not fit (conv output length?)",
        "wrong input size: built for 784-pixel MNIST":
            "the read-out layer's input size does not fit (conv output length?)",
        "an MLP: reaches the MLP level, misses the bonus tier": "an MLP where the bonus tier needs a CNN",
        "too many epochs with tiny batches (over the CPU budget)":
            "over the CPU budget (too many epochs, tiny batches or too large a model?)",
        "config outside the limits (100 epochs)": OUTSIDE_LIMITS,
        "config outside the limits (unknown optimizer name)": OUTSIDE_LIMITS,
        "learning rate 1.0 (Adam diverges)":
            "accuracy near guessing (no nonlinearity, a softmax output, or too large a learning rate?)",
        "dead_fraction counts pre-activation >= 0 as active": "counted units with pre-activation >= 0 as active",
        "dead_fraction over the first batch only": "counted over one batch instead of the whole data set",
        "dead_fraction counts each (channel, position) of a conv layer as a unit":
            "counted every (channel, position) of a conv layer as a unit",
        "dead_fraction calls a unit dead when it is silent on most examples": WRONG_VALUES,
        "dead_fraction looks at the outputs (== 0) instead of the pre-activations":
            "looked at the outputs (!= 0) instead of the pre-activations",
        "dead_fraction returns the reference DeadUnitMonitor's figure": Unnamed(
            "using the reference is listed under flags to review, not as a misconception")},
    "ex05_maxout": {
        "pieces grouped with stride (z[..., j::units]) instead of contiguous blocks":
            "the pieces were grouped with stride (z[..., j::units])",
        "max taken over the wrong axis (the units, not the pieces)":
            "the max was taken over the wrong axis (over the units, not over each unit's k pieces)",
        "width not divisible by k: trailing pieces silently dropped instead of ValueError":
            "a width not divisible by k was not refused (ValueError)",
        "the gradient reached every maxout piece, not only the winner":
            "the gradient reached every maxout piece, not only the winner",
        "ties split the gradient between the tied pieces": "ties split the gradient between the tied pieces",
        "ties: gradient to every tied piece (a mask of the maximum)": "on ties every tied piece got the whole dout",
        "backward ignores dout (the winner gets 1)": "the winner got 1 instead of dout",
        "backward upcasts float32 to float64": UPCASTS,
        "gradient check that always passes":
            "the gradient check passed a wrong backward that sends the gradient to every piece",
        "gradient check compares backward with itself":
            "the gradient check passed a wrong backward that sends the gradient to every piece",
        "gradient check forgets dout in the numerical gradient": "the gradient check failed the correct backward",
        "torch Maxout groups the pieces with stride": "the pieces were grouped with stride (z[..., j::out_features])",
        "torch Maxout with amax (ties split the gradient)":
            "ties split the gradient between the tied pieces (torch.amax does that)",
        "torch Maxout's Linear has out_features outputs, not out_features * k":
            "Maxout's Linear has one output per unit, not k pieces each",
        "the MLP uses ReLU instead of Maxout": "the MLP holds no Maxout layer",
        "the MLP's Maxout layers have k = 1 (a linear network)": NO_NONLINEARITY},
}

DUE = "2026-01-10 12:00:00 UTC"
PENALTY_METHOD = "zero"  # nbgrader's LateSubmissionPlugin: a late submission scores 0
TIMESTAMPS = {"solution": "2026-01-10 11:59:00 UTC", "wrong_relu": "2026-01-10 14:00:00 UTC", "blank": "yesterday"}


def _mutant_id(index: int) -> str:
    return f"mutant-{index:02d}"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A course folder with the ex01 class graded by `course grade` and reported with --lms canvas."""
    course = fx.make_course(ROOT, tmp_path_factory.mktemp("course"))
    submitted = course / "submitted"
    with open(course / "nbgrader_config.py", "a") as f:
        f.write(f"\nc.LateSubmissionPlugin.penalty_method = {PENALTY_METHOD!r}\n")
    fx.submit(submitted, "solution", fx.solved(ROOT))
    fx.submit(submitted, "blank", fx.released(ROOT))
    for i, mutant in enumerate(load_mutants(fx.A), 1):  # as a student would submit it: the release, answered
        fx.submit(submitted, _mutant_id(i), mutate(fx.solved(ROOT), mutant, fx.A))
    for student in FAULTS:
        fx.submit(submitted, student, fx.CASES[student][0](ROOT))
    fx.submit(submitted, "empty", text="")
    (submitted / "no_notebook").mkdir()
    for student, stamp in TIMESTAMPS.items():
        (submitted / student / fx.A / "timestamp.txt").write_text(stamp)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECTIFIED_ROOT", str(course))
        mp.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")  # nbgrader's alembic
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
            gb.update_or_create_assignment(fx.A, duedate=DUE)
        results = {g.student_id: g for g in grade(fx.A, submitted, workers=2, limits=LIMITS, progress=False)}
        written = report(fx.A, course, lms="canvas")
        yield course, results, written, mp


def _csv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _gradebook_scores(course) -> dict[str, dict[str, float]]:
    """student -> {cell: score} for every cell the autograder or a grader scored, read with nbgrader's API."""
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {sub.student.id: {g.name: g.score for nb in sub.notebooks for g in nb.grades
                                 if g.auto_score is not None or g.manual_score is not None}
                for sub in gb.assignment_submissions(fx.A)}


@pytest.mark.sandbox
@pytest.mark.slow
def test_items_equal_the_gradebook_recomputed_with_scipy(graded):
    course, _, written, _ = graded
    items = {r["cell"]: r for r in _csv(written.folder / "items.csv")}
    scores = _gradebook_scores(course)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        cells = {c.name: c.max_score for nb in gb.find_assignment(fx.A).notebooks for c in nb.grade_cells}
    assert set(items) == set(cells)
    for cell, points in cells.items():
        have = [s for s in scores.values() if cell in s]
        own = [s[cell] for s in have]
        rest = [sum(v for k, v in s.items() if k != cell) for s in have]
        row = items[cell]
        assert int(row["attempted"]) == len(have) and float(row["points"]) == points
        assert int(row["full_marks"]) == sum(v >= points for v in own)
        if not own:  # a written answer nobody has graded yet in formgrader
            assert row["mean_score"] == row["discrimination"] == ""
            continue
        assert float(row["mean_score"]) == pytest.approx(sum(own) / len(own), abs=1e-4)
        if len(set(own)) > 1 and len(set(rest)) > 1:
            assert float(row["discrimination"]) == pytest.approx(stats.pointbiserialr(own, rest)[0], abs=1e-4)
        else:
            assert row["discrimination"] == ""


@pytest.mark.sandbox
@pytest.mark.slow
def test_items_are_listed_hardest_first(graded):
    _, _, written, _ = graded
    shares = [float(r["mean_score"]) / float(r["points"]) for r in _csv(written.folder / "items.csv")
              if r["mean_score"] != "" and float(r["points"])]
    # items.csv rounds mean_score to 4 decimals: equal shares of cells with other points may read 0.73685, 0.7368
    assert all(a <= b + 1e-4 for a, b in zip(shares, shares[1:], strict=False)) and shares[0] < 1


@pytest.mark.sandbox
@pytest.mark.slow
def test_each_mutants_misconception_is_found_for_exactly_the_students_built_to_make_it(graded):
    _, results, written, _ = graded
    expected: dict[str, set[str]] = {}
    for i, mutant in enumerate(load_mutants(fx.A), 1):
        if MUTANT_MISCONCEPTIONS[mutant.name]:
            expected.setdefault(MUTANT_MISCONCEPTIONS[mutant.name], set()).add(_mutant_id(i))
    for student in ("wrong_relu", "edit_test"):  # both answer relu with np.abs
        expected["relu returned |x|"].add(student)
    found: dict[str, set[str]] = {}
    for row in _csv(written.folder / "misconceptions.csv"):
        ids = set(row["student_ids"].split("; "))
        assert int(row["students"]) == len(ids)
        found.setdefault(row["misconception"], set()).update(ids)
    assert found == expected


@pytest.mark.sandbox
@pytest.mark.slow
def test_misconception_rows_equal_the_state_files_searched_for_the_judges_texts(graded):
    """Recomputed from the state files and ex01's judge constants (and verdict.py's two generic texts)."""
    from course_lib.grading.judges import ex01

    texts = {"relu returned |x|": ex01.RELU_IS_ABS.message, "relu_grad(0) returned 1": ex01.KINK_IS_ONE.message,
             "relu_grad(0) returned 0.5": ex01.KINK_IS_HALF.message,
             "leaky_relu used slope 0.1 by default": ex01.LEAKY_DEFAULT_SLOPE.message,
             "leaky_relu_grad(0) returned 1": ex01.LEAKY_KINK_IS_ONE.message,
             "sigmoid_grad used s(1 + s)": ex01.SIGMOID_GRAD_PLUS.message,
             "tanh_grad returned 1 - tanh(x)": ex01.TANH_GRAD_UNSQUARED.message,
             OVERFLOWS: "use a form that cannot overflow", UPCASTS: "keep the input's dtype"}
    course, _, written, _ = graded
    expected: dict[tuple[str, str], set[str]] = {}
    for path in (course / "grading" / fx.A / "state").glob("*.json"):
        for cell, message in json.loads(path.read_text())["messages"].items():
            for name, text in texts.items():
                if text in message:
                    expected.setdefault((name, cell), set()).add(path.stem)
    rows = {(r["misconception"], r["cell"]): (int(r["students"]), set(r["student_ids"].split("; ")))
            for r in _csv(written.folder / "misconceptions.csv")}
    assert rows == {key: (len(ids), ids) for key, ids in expected.items()}


def _read_canvas(path) -> tuple[list[str], dict[str, str]]:
    """A reader of Canvas's gradebook CSV as documented: Student, ID, SIS User ID, SIS Login ID, Section, then
    one column per assignment; rows matched by SIS User ID here."""
    rows = _csv(path)
    header = list(rows[0])
    return header, {r["SIS User ID"]: r[header[5]] for r in rows if r["SIS User ID"]}


@pytest.mark.sandbox
@pytest.mark.slow
def test_canvas_csv_round_trips_with_the_gradebook_totals(graded):
    course, results, written, _ = graded
    header, scores = _read_canvas(written.folder / "canvas.csv")
    assert header == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", fx.A]
    totals = {s: sum(cells.values()) for s, cells in _gradebook_scores(course).items()}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        penalties = {s.student.id: sum(nb.late_submission_penalty or 0 for nb in s.notebooks)
                     for s in gb.assignment_submissions(fx.A)}
    assert {s: float(v) for s, v in scores.items()} == {s: totals.get(s, 0) - penalties.get(s, 0) for s in results}
    assert float(scores["wrong_relu"]) == 0  # late: the 'zero' method
    assert scores["solution"] == "16.0" and float(scores["blank"]) == 0
    plain = {r["student_id"]: r["score"] for r in _csv(written.folder / "scores.csv")}
    assert plain == scores


@pytest.mark.sandbox
@pytest.mark.slow
def test_a_manual_score_from_formgrader_reaches_the_canvas_csv(graded, tmp_path):
    course, _, _, _ = graded
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        grade_ = gb.find_grade("test_relu_hidden", fx.A, fx.A, "mutant-01")
        grade_.manual_score = 1.5
        gb.db.commit()
    try:
        written = report(fx.A, course, lms="canvas", canvas_id="42")
        header, scores = _read_canvas(written.folder / "canvas.csv")
        assert header[5] == f"{fx.A} (42)" and float(scores["mutant-01"]) == 13 + 1.5
    finally:
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
            gb.find_grade("test_relu_hidden", fx.A, fx.A, "mutant-01").manual_score = None
            gb.db.commit()


@pytest.mark.sandbox
@pytest.mark.slow
def test_a_late_submission_gets_the_configured_penalty_in_grades_csv_and_the_gradebook(graded):
    course, results, _, _ = graded
    rows = {r["student_id"]: r for r in _csv(course / "grades.csv")}
    assert (float(rows["wrong_relu"]["late_s"]), float(rows["wrong_relu"]["penalty"])) == (2 * 3600, 13)
    assert float(rows["wrong_relu"]["score"]) == 13  # the autograded points, before the penalty
    assert (float(rows["solution"]["late_s"]), float(rows["solution"]["penalty"])) == (0, 0)
    assert float(rows["mutant-01"]["late_s"]) == 0  # no timestamp.txt: never late
    assert "not a time nbgrader can read" in rows["blank"]["flags"] and results["blank"].status == "graded"
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        late = gb.find_submission(fx.A, "wrong_relu")
        assert late.total_seconds_late == 2 * 3600 and late.notebooks[0].late_submission_penalty == 13
        assert gb.find_submission(fx.A, "solution").notebooks[0].late_submission_penalty is None


@pytest.mark.sandbox
@pytest.mark.slow
def test_the_page_is_one_offline_file_naming_misconceptions_and_flags(graded):
    course, _, written, _ = graded
    page = (written.folder / "index.html").read_text()
    assert "<script" not in page and 'src="http' not in page and "<link" not in page
    assert page.count('src="data:image/png;base64,') == 2
    assert "relu returned |x|" in page and "02_relu_and_its_derivative.ipynb" in page
    assert "late by 2.0 h: penalty 13 points" in page and "1 submitted late (wrong_relu)" in page
    for student in ("borrow", "edit_test", "os_exit", "empty", "no_notebook", "wrong_relu"):
        assert f"<td>{student}</td>" in page
    assert 'href="../../feedback/borrow/ex01_activations/ex01_activations.html"' in page
    assert (course / "feedback" / "borrow" / fx.A / f"{fx.A}.html").exists()


@pytest.mark.sandbox
@pytest.mark.slow
def test_the_command_reports_in_one_line(graded):
    course, _, _, mp = graded
    result = CliRunner().invoke(main, ["report", fx.A])
    assert result.exit_code == 0 and result.output.count("\n") == 1 and "index.html" in result.output


def _error(args, course, monkeypatch) -> str:
    monkeypatch.setenv("RECTIFIED_ROOT", str(course))
    result = CliRunner().invoke(main, ["report", *args])
    assert result.exit_code == 1 and result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def test_before_grading_the_command_says_to_grade_first(tmp_path, monkeypatch):
    course = fx.make_course(ROOT, tmp_path)
    assert "run `course grade ex01_activations` first" in _error([fx.A], course, monkeypatch)


def test_an_unknown_assignment_is_one_error_line(tmp_path, monkeypatch):
    assert "no assignment ex99" in _error(["ex99"], fx.make_course(ROOT, tmp_path), monkeypatch)


def _graded_csv(course, rows: str) -> None:
    (course / "grades.csv").write_text("student_id,assignment,score,max_score,status,flags,duration_s\n" + rows)


def test_a_missing_gradebook_is_one_error_line(tmp_path, monkeypatch):
    course = fx.make_course(ROOT, tmp_path)
    _graded_csv(course, f"a,{fx.A},16,16,graded,,0.5\n")
    assert "no gradebook at" in _error([fx.A], course, monkeypatch)
    assert not (course / "gradebook.db").exists()


def test_a_mangled_grades_csv_or_state_file_is_one_error_line(tmp_path, monkeypatch):
    course = fx.make_course(ROOT, tmp_path)
    _graded_csv(course, f"a,{fx.A},sixteen,16,graded,,0.5\n")
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")  # alembic
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.add_assignment(fx.A)
    assert "a row `course grade` did not write" in _error([fx.A], course, monkeypatch)
    _graded_csv(course, f"a,{fx.A},16,16,graded,,0.5\n")
    state = course / "grading" / fx.A / "state"
    state.mkdir(parents=True)
    (state / "a.json").write_text("{")
    assert "is not a state file" in _error([fx.A], course, monkeypatch)


def test_an_unknown_lms_is_refused():
    with pytest.raises(ReportError, match="unknown LMS"):
        report(fx.A, ROOT, lms="moodle")


def test_a_discrimination_rounding_to_zero_is_written_without_a_minus_sign():
    from course_lib.report.items import Item

    row = Item("test_x", 2.0, 3, 1, 1.0, -1e-17).row()
    assert str(row["discrimination"]) == "0.0"
    assert Item("test_x", 2.0, 3, 1, 1.0, -0.25).row()["discrimination"] == -0.25


def test_a_message_holding_nested_texts_counts_only_the_longer():
    from course_lib.report.misconceptions import REGISTRY, reproduced

    layer, forward = (n for n in REGISTRY["ex05_maxout"] if n.text.startswith("the max was taken over the wrong"))
    longer, shorter = (layer, forward) if len(layer.text) > len(forward.text) else (forward, layer)
    assert shorter.text in longer.text
    assert reproduced(f"maxout: {longer.text}", REGISTRY["ex05_maxout"]) == [longer]


def _headings(notebook: Path) -> set[str]:
    """The markdown headings of a course notebook, without their #s."""
    cells = nbformat.read(notebook, as_version=4).cells
    return {line.lstrip("#").strip() for c in cells if c.cell_type == "markdown"
            for line in c.source.splitlines() if line.startswith("#")}


def test_every_assignment_has_named_misconceptions_each_with_a_notebook_section():
    from course_lib.paths import notebooks
    from course_lib.report.misconceptions import REGISTRY

    headings = {p.name: _headings(p) for p in notebooks(ROOT)}
    assert sorted(REGISTRY) == sorted(p.name for p in (ROOT / "solutions").iterdir())
    for entries in REGISTRY.values():
        assert entries and all(n.name and n.section.heading in headings[n.section.notebook] for n in entries)
        assert len({n.text for n in entries}) == len(entries)  # a text twice would count its students twice


def test_every_mutant_is_accounted_for_and_named_by_its_assignments_registry(monkeypatch):
    """Every mutant of every assignment is in NAMED_MUTANTS, each named by an entry of its assignment's
    registry unless listed as Unnamed with the reason a judge cannot name it."""
    from course_lib.report.misconceptions import REGISTRY

    monkeypatch.setenv("RECTIFIED_ROOT", str(ROOT))  # this checkout's mutants, whatever course a fixture set

    assert sorted(NAMED_MUTANTS) == sorted(REGISTRY)
    for assignment, expected in NAMED_MUTANTS.items():
        mutants = [m.name for m in load_mutants(assignment)]
        assert sorted(expected) == sorted(mutants), assignment
        names = {n.name for n in REGISTRY[assignment]}
        named = [m for m in mutants if not isinstance(expected[m], Unnamed)]
        assert {expected[m] for m in named} <= names, assignment
        assert all(expected[m].reason for m in mutants if m not in named), assignment


@pytest.mark.sandbox
@pytest.mark.slow
@pytest.mark.chromium
def test_the_page_opens_in_chromium_offline_with_its_plots_and_no_console_error(graded):
    from playwright.sync_api import sync_playwright

    from tests.browsing import CHROMIUM, CHROMIUM_ARGS, Offline

    _, _, written, _ = graded
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            offline = Offline(browser)
            console = []
            offline.page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
            offline.page.goto((written.folder / "index.html").as_uri())
            images = offline.page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete && i.naturalWidth)")
            headings = offline.page.eval_on_selector_all("h2", "hs => hs.map(h => h.textContent)")
            offline.shot("report-ex01.png")
        finally:
            browser.close()
    assert len(images) == 2 and all(w > 100 for w in images)
    assert headings == ["Overview", "Misconceptions", "Items (test cells)", "Flags to review"]
    assert offline.remote == [] and offline.errors == [] and console == []


# The mutant each assignment's report is regraded with (one whose name this registry gained from a judge's
# constant, so the constant is checked end to end), beside the solution and the blank release.
REGRADED = {"ex01_activations": "relu_grad(0) = 0.5", "ex02_backprop": "gradient check of the weights only",
            "ex03_dead_neurons": "hooks left attached",
            "ex04_leaky_prelu": "build_mlp shares one activation instance between the layers",
            "ex05_maxout": "width not divisible by k: trailing pieces silently dropped instead of ValueError",
            "ex06_capstone": "wrong input size of the read-out layer (miscounted conv output length)"}


@pytest.mark.sandbox
@pytest.mark.slow
@pytest.mark.parametrize("assignment", sorted(REGRADED))
def test_course_report_works_for_every_assignment(assignment, tmp_path, monkeypatch):
    """Three submissions graded by `course grade` and reported by `course report`: the items are the
    gradebook's cells, the solution scores every autograded point and the blank none, and only the mutant
    reproduces a misconception, the one NAMED_MUTANTS says."""
    monkeypatch.setenv("RECTIFIED_ROOT", str(ROOT))  # this checkout's mutants, whatever course a fixture set
    mutant = next(m for m in load_mutants(assignment) if m.name == REGRADED[assignment])
    notebooks = {"solution": fx.solved(ROOT, assignment), "blank": fx.released(ROOT, assignment),
                 "mutant": mutate(fx.solved(ROOT, assignment), mutant, assignment)}
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")  # alembic
    results = fx.grade_class(ROOT, tmp_path, assignment, notebooks, monkeypatch)
    assert {s: g.status for s, g in results.items()} == dict.fromkeys(notebooks, "graded")
    result = CliRunner().invoke(main, ["report", assignment])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "reports" / assignment
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
        cells = {c.name for nb in gb.find_assignment(assignment).notebooks for c in nb.grade_cells}
    items = _csv(folder / "items.csv")
    assert {r["cell"] for r in items} == cells and all(int(r["attempted"]) in (0, 3) for r in items)
    scores = {r["student_id"]: float(r["score"]) for r in _csv(folder / "scores.csv")}
    assert scores == {s: g.score for s, g in results.items()}
    assert scores["solution"] == results["solution"].max_score > scores["mutant"] and scores["blank"] == 0
    found = {r["misconception"]: r["student_ids"] for r in _csv(folder / "misconceptions.csv")}
    assert set(found.values()) == {"mutant"} and NAMED_MUTANTS[assignment][mutant.name] in found
    page = (folder / "index.html").read_text()
    assert all(f"<h2>{h}" in page for h in ("Overview", "Misconceptions", "Items (test cells)", "Flags to review"))
