"""ex02_backprop graded on secret inputs with host-side judges.

Fast: every check through the host's end of the channel in this process (fx.graded: secret seeds, judged on
the host side): the solution passes, each misconception is named (also on hidden inputs, which are never
shown), and forged, replayed or malformed data fails without raising; the training check's inputs hold no
label, and the sandbox library has no reference. Slow (`course grade` in bubblewrap): the solution, the blank
release and every mutant; forged records, label theft and reference borrowing each earn exactly what the
honest part of the work earns, with the right status and flags.
"""

import subprocess
import sys
from dataclasses import replace

import nbformat
import numpy as np
import pytest

from course_lib.data import spirals
from course_lib.grading import judges
from course_lib.grading.authoring.mutants import named
from course_lib.grading.authoring.sources import is_answer, read_source
from course_lib.grading.checks import ex02
from course_lib.grading.judges import ex02 as judge
from course_lib.grading.kernel.layers import Probe
from course_lib.grading.kernel.probes import Outcome
from course_lib.grading.kernel.training import TrainingOutcome
from course_lib.grading.sandbox import library
from course_lib.grading.sandbox.bubblewrap import Limits
from tests import grading_fixtures as fx
from tests.conftest import ROOT

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")
A = "ex02_backprop"


def _answers() -> dict:
    """The solution notebook's answer cells, run: name -> what they define."""
    namespace: dict = {}
    exec("import numpy as np\nfrom course_lib.gradcheck import check_gradient", namespace)
    for cell in read_source(A, ROOT).cells:
        if cell.cell_type == "code" and is_answer(cell):
            exec(cell.source, namespace)
    return namespace


S = _answers()
LAYERS = {"affine": (ex02.check_affine, S["affine_forward"], S["affine_backward"]),
          "relu_layer": (ex02.check_relu_layer, S["relu_forward"], S["relu_backward"])}


def _graded(check_fn, *args, student="student", **params):
    return fx.graded(check_fn, *args, host=fx.Host(A, student), **params)


# ---- the solution ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize("check_fn, args, params", [
    (ex02.check_affine, ("affine_forward", "affine_backward"), {"seed": 1}),
    (ex02.check_relu_layer, ("relu_forward", "relu_backward"), {"seed": 2}),
    (ex02.check_two_layer_loss, ("two_layer_loss",), {"seed": 3}),
    (ex02.check_gradient_check, ("gradient_check",), {"seed": 4}),
    (ex02.check_training, ("two_layer_loss",), {"seed": 5, "threshold": 0.93}),
])
def test_the_solution_passes_locally_and_on_secret_inputs(check_fn, args, params, hidden):
    functions = [S[a] for a in args]
    assert fx.message_of(check_fn, *functions, hidden=hidden, **params) is None
    assert _graded(check_fn, *functions, hidden=hidden, **params) is None


def test_the_notebooks_own_problems_pass_the_gradient_check_except_at_the_kink():
    errors = S["gradient_check"](S["two_layer_loss"], *ex02.small_problem(0))
    assert max(errors.values()) < 1e-7
    assert max(S["gradient_check"](S["two_layer_loss"], *ex02.kink_problem(0)).values()) > 1e-3


# ---- misconceptions -------------------------------------------------------------------------------------


def _affine_with(change):
    def backward(dout, cache):
        return change(*S["affine_backward"](dout, cache), dout, cache)
    return backward


def _relu_with(mask):
    return lambda dout, x: dout * mask(x)


@pytest.mark.parametrize("check, backward, message", [
    ("affine", _affine_with(lambda dx, dw, db, dout, c: (dx, dw, dout.sum(axis=1))), judge.DB_WRONG_AXIS.message),
    ("affine", _affine_with(lambda dx, dw, db, dout, c: (dx, dw, dout.sum())), judge.DB_SUMMED_ALL.message),
    ("affine", _affine_with(lambda dx, dw, db, dout, c: (dx.reshape(len(dx), -1), dw, db)),
     judge.DX_NOT_RESHAPED.message),
    ("affine", _affine_with(lambda dx, dw, db, dout, c: (dx, dw.T, db)), judge.DW_TRANSPOSED.message),
    ("relu_layer", _relu_with(lambda x: x >= 0), judge.RELU_KINK.message),
    ("relu_layer", _relu_with(lambda x: np.maximum(x, 0)), judge.RELU_TIMES_OUTPUT.message),
    ("relu_layer", _relu_with(lambda x: 1), judge.RELU_PASSES_ALL.message),
    ("relu_layer", _relu_with(lambda x: (x > 0).astype(np.float64)), "dx has dtype float64 for float32 inputs"),
])
@pytest.mark.parametrize("hidden", [False, True])
def test_a_wrong_layer_is_named_locally_and_on_secret_inputs(check, backward, message, hidden):
    check_fn, forward, _ = LAYERS[check]
    assert message in fx.message_of(check_fn, forward, backward, seed=1, hidden=hidden)
    assert message in _graded(check_fn, forward, backward, seed=1, hidden=hidden)


def _net(**variant):
    """The reference two-layer loss with a wrong variant (relu=False, at_zero=1.0)."""
    def loss(params, x, y=None):
        return judge.two_layer_loss(params, x, y, **variant) if y is not None else judge.two_layer_loss(
            params, x, **variant)
    return loss


def _scaled(loss_by: str | float = 1.0, grads_by: str | float = 1.0):
    """The reference two-layer loss with its loss and gradients multiplied ("n": by the batch size)."""
    def loss(params, x, y=None):
        if y is None:
            return judge.two_layer_loss(params, x)
        value, grads = judge.two_layer_loss(params, x, y)
        by_loss, by_grads = (len(y) if f == "n" else f for f in (loss_by, grads_by))
        return value * by_loss, {k: g * by_grads for k, g in grads.items()}
    return loss


def _naive_softmax(params, x, y=None):
    scores = np.maximum(x @ params["W1"] + params["b1"], 0) @ params["W2"] + params["b2"]
    if y is None:
        return scores
    p = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    return -np.log(p[np.arange(len(y)), y]).mean(), judge.two_layer_loss(params, x, y)[1]


def _changed_grads(change):
    def loss(params, x, y=None):
        if y is None:
            return judge.two_layer_loss(params, x)
        value, grads = judge.two_layer_loss(params, x, y)
        return value, change(grads, x)
    return loss


@pytest.mark.parametrize("loss, message, visible_too", [
    (_net(relu=False), judge.NO_RELU.message, True),
    (_net(at_zero=1.0), judge.NET_KINK.message, False),  # only the hidden inputs put an example at the kink
    (_scaled(grads_by="n"), judge.NOT_DIVIDED_BY_N.message, True),
    (_scaled(loss_by="n"), judge.LOSS_SUMMED.message, True),
    (_naive_softmax, judge.OVERFLOW.message, True),
    (_changed_grads(lambda g, x: {**g, "b2": np.ones(len(x))}), judge.NET_DB_WRONG_AXIS.message, True),
    (_changed_grads(lambda g, x: {**g, "W1": g["W1"].T}), judge.NET_DW_TRANSPOSED.message, True),
    (_changed_grads(lambda g, x: {**g, "W1": 2 * g["W1"]}), "Your gradients of W1 do not match finite differences "
                                                             "of your own loss", True),
    (_scaled(2.0, 2.0), "Your gradients do match finite differences of your own loss", True),
])
def test_a_wrong_two_layer_loss_is_named_locally_and_on_secret_inputs(loss, message, visible_too):
    assert message in _graded(ex02.check_two_layer_loss, loss, seed=3, hidden=True)
    local = fx.message_of(ex02.check_two_layer_loss, loss, seed=3)
    assert (message in local) if visible_too else local is None


def test_a_float32_loss_is_told_to_keep_the_dtype_not_blamed_on_the_kink():
    """Its values are right, so no misconception about values may be named (the kink's applied vacuously)."""
    def float32_loss(params, x, y=None):
        if y is None:
            return judge.two_layer_loss(params, x)
        value, grads = judge.two_layer_loss(params, x, y)
        return np.float32(value), grads

    local = fx.message_of(ex02.check_two_layer_loss, float32_loss, seed=3)
    assert "loss has dtype float32 for float64 inputs: keep the inputs' dtype" in local
    assert judge.NET_KINK.message not in local


def _blame_all(loss_fn, params, x, y):
    errors = S["gradient_check"](loss_fn, params, x, y)
    return dict.fromkeys(errors, 1.0) if max(errors.values()) > 1e-3 else errors


def _ignores_p(loss_fn, params, x, y):
    from course_lib.gradcheck import check_gradient
    _, grads = loss_fn(params, x, y)
    return {k: check_gradient(lambda p: loss_fn(params, x, y)[0], grads[k], params[k].copy()).max_error
            for k in params}


@pytest.mark.parametrize("gradient_check, message", [
    (lambda loss_fn, params, x, y: dict.fromkeys(params, 0.0), "gradient_check passed a loss whose gradient for"),
    (_ignores_p, "for a loss whose gradients are right (expected below 1e-05, the grader's bar)"),
    (lambda loss_fn, params, x, y: {k: 0.0 for k in params if k.startswith("W")}, "check every parameter"),
    (_blame_all, "whose gradients are right: only one parameter's gradient was wrong"),
    (lambda loss_fn, params, x, y: 1 / 0, "gradient_check raised ZeroDivisionError"),
    (lambda loss_fn, params, x, y: [0.0], "gradient_check returned a list, not a dict"),
    (lambda loss_fn, params, x, y: dict.fromkeys(params, "small"), "the relative errors must be numbers"),
    (lambda loss_fn, params, x, y: dict.fromkeys(params, -1.0), "the relative errors must be finite and >= 0"),
])
def test_a_wrong_gradient_check_is_named_on_secret_inputs(gradient_check, message):
    assert message in _graded(ex02.check_gradient_check, gradient_check, seed=4, hidden=True)
    assert message in fx.message_of(ex02.check_gradient_check, gradient_check, seed=4)


def test_the_wrong_parameter_is_named_on_visible_inputs_only():
    wrong = judges.serve("ex02.gradient_check", {"seed": 4}).prepared.private
    zeros = lambda loss_fn, params, x, y: dict.fromkeys(params, 0.0)  # noqa: E731
    assert f"gradient for '{next(w for w in wrong if w)}' is 1.5 times" in fx.message_of(
        ex02.check_gradient_check, zeros, seed=4)
    hidden = _graded(ex02.check_gradient_check, zeros, seed=4, hidden=True)
    assert "gradient for a hidden test's parameter" in hidden and not any(f"'{p}'" in hidden for p in judge.PARAMS)


def test_which_gradient_is_wrong_is_secret_so_neither_a_fixed_guess_nor_comparing_problems_passes():
    wrong = [judges.serve("ex02.gradient_check", judges.secret_params(
        "ex02.gradient_check", {"seed": 4, "hidden": True}, b"s", A, f"student-{i}")).prepared.private
        for i in range(40)]
    assert len({tuple(w) for w in wrong}) > 20 and all(None in w and set(w) - {None} for w in wrong)
    seen = []

    def compare_with_the_last_problem(loss_fn, params, x, y):
        grads = loss_fn(params, x, y)[1]
        previous = seen[-1] if seen else grads
        seen.append(grads)
        return {k: float(previous[k].shape == grads[k].shape and not np.allclose(previous[k], grads[k]))
                for k in params}

    guess = lambda loss_fn, params, x, y: {k: float(k == "W2") for k in params}  # noqa: E731
    for cheat in (compare_with_the_last_problem, guess):
        passed = sum(_graded(ex02.check_gradient_check, cheat, student=f"s{i}", seed=4, hidden=True) is None
                     for i in range(20))
        assert passed == 0


def _linear(params, x, y=None):
    return _net(relu=False)(params, x, y)


def _zero_grads(params, x, y=None):
    if y is None:
        return judge.two_layer_loss(params, x)
    return 1.0, {k: np.zeros_like(v) for k, v in params.items()}


TRAINING_SET = spirals(n_per_class=300, seed=123).numpy()


def _nearest_neighbour(params, x, y=None):
    """No real training (gradients that only nudge every weight), and scores from the nearest point of spirals
    it drew itself."""
    if y is not None:
        return 1.0, {k: np.full_like(v, 1e-3) for k, v in params.items()}
    nearest = ((x[:, None, :] - TRAINING_SET.x_train[None]) ** 2).sum(-1).argmin(1)
    return np.eye(3)[TRAINING_SET.y_train[nearest]]


@pytest.mark.parametrize("loss, message", [
    (_linear, "is the ReLU applied between the layers?"),
    (_zero_grads, "training did not move the weights: every gradient two_layer_loss returned was zero"),
    (_nearest_neighbour, "the trained params do not"),
    (lambda params, x, y=None: 1 / 0, "building or training the model failed: ZeroDivisionError"),
    (lambda params, x, y=None: S["two_layer_loss"](params, x, y) if y is not None else np.zeros(3),
     "called without labels, loss(params, x) must return the scores"),
])
def test_a_net_that_does_not_train_is_named_on_secret_inputs(loss, message):
    assert message in _graded(ex02.check_training, loss, seed=5, threshold=0.93, hidden=True)


def test_hidden_inputs_are_described_by_their_shapes_only():
    host = fx.Host(A)

    def forward_plus_one(x, w, b):
        out, cache = S["affine_forward"](x, w, b)
        return out + 1, cache

    message = fx.graded(ex02.check_affine, forward_plus_one, S["affine_backward"], host=host, seed=1, hidden=True)
    assert "out has wrong values at 12 of 12 elements on a hidden test input (x (6, 4), w (4, 2), b (2,), " \
           "dtype float64)" in message
    values = np.concatenate([a.ravel() for c in host.served[0].given["cases"] for a in c["args"]])
    assert not any(f"{v:.2f}" in message for v in values)


# ---- forged, replayed and malformed data ----------------------------------------------------------------


def _solution_data(check: str, student: str, hidden: bool = True):
    """What the solution's probe hands back for `student`'s secret inputs (and what that student was served)."""
    host = fx.Host(A, student)
    fn, names, params = {
        "ex02.affine": (ex02.check_affine, ("affine_forward", "affine_backward"), {"seed": 1}),
        "ex02.relu_layer": (ex02.check_relu_layer, ("relu_forward", "relu_backward"), {"seed": 2}),
        "ex02.two_layer_loss": (ex02.check_two_layer_loss, ("two_layer_loss",), {"seed": 3}),
        "ex02.gradient_check": (ex02.check_gradient_check, ("gradient_check",), {"seed": 4}),
        "ex02.training": (ex02.check_training, ("two_layer_loss",), {"seed": 5, "threshold": 0.93}),
    }[check]
    assert fx.graded(fn, *(S[n] for n in names), host=host, hidden=hidden, **params) is None
    return host.data[0], host.served[0]


@pytest.mark.parametrize("check", ["ex02.affine", "ex02.relu_layer", "ex02.two_layer_loss", "ex02.gradient_check",
                                   "ex02.training"])
def test_data_computed_for_another_students_inputs_fails(check):
    alice, _ = _solution_data(check, "alice")
    _, bob = _solution_data(check, "bob")
    assert judges.verdict_on(bob, judges.roundtrip(alice))


def _zeros_like_probe(probe: Probe) -> Probe:
    return Probe({k: replace(o, value=np.zeros_like(o.value)) for k, o in probe.values.items()})


GARBAGE = [None, "all tests passed", 10**400, [10**400], {"probes": 10**400, "numerical": []}, [None] * 9,
           {"outcome": 10**400, "params": None}, float("nan"), [{"errors": {"W1": 10**400}}] * 4]


@pytest.mark.parametrize("check, params", [
    ("ex02.affine", {"seed": 1}), ("ex02.relu_layer", {"seed": 2}), ("ex02.two_layer_loss", {"seed": 3}),
    ("ex02.gradient_check", {"seed": 4}), ("ex02.training", {"seed": 5, "threshold": 0.93}),
])
@pytest.mark.parametrize("data", GARBAGE, ids=range(len(GARBAGE)))
def test_malformed_data_fails_with_a_message_and_never_raises(check, params, data):
    message = fx.forged(check, data, hidden=True, **params)
    assert isinstance(message, str) and message


@pytest.mark.parametrize("check", ["ex02.affine", "ex02.relu_layer"])
def test_forged_layer_outcomes_of_the_right_shapes_fail(check):
    data, served = _solution_data(check, "student")
    assert judges.verdict_on(served, [_zeros_like_probe(p) for p in data])
    assert judges.verdict_on(served, data[:-1])
    assert judges.verdict_on(served, [Probe({k: Outcome(None, error="raised") for k in p.values}) for p in data])
    assert judges.verdict_on(served, [Probe({}) for _ in data])


def test_forged_two_layer_data_fails():
    data, served = _solution_data("ex02.two_layer_loss", "student")
    zeros = {"probes": [_zeros_like_probe(p) for p in data["probes"]], "numerical": data["numerical"]}
    assert judges.verdict_on(served, zeros)
    fake_numerical = [None if g is None else {k: np.zeros_like(v) for k, v in g.items()} for g in data["numerical"]]
    assert judges.verdict_on(served, {**data, "numerical": fake_numerical})
    assert "the check returned" in judges.verdict_on(served, {**data, "numerical": data["numerical"][:-1]})


def test_forged_gradient_check_results_fail_unless_they_name_the_secret_wrong_parameters():
    data, served = _solution_data("ex02.gradient_check", "student")
    assert judges.verdict_on(served, [{"errors": dict.fromkeys(judge.PARAMS, 0.0)}] * len(data))
    assert judges.verdict_on(served, [{"errors": dict.fromkeys(judge.PARAMS, 1.0)}] * len(data))
    assert "the check returned" in judges.verdict_on(served, [{"errors": {}, "problem": "x"}] * len(data))


def test_forged_training_outcomes_fail():
    (data, served) = _solution_data("ex02.training", "student")
    outcome, params = data["outcome"], data["params"]
    labels_len = len(outcome.predictions)
    assert judges.verdict_on(served, {"outcome": TrainingOutcome(test_accuracy=1.0), "params": params})
    assert judges.verdict_on(served, {"outcome": replace(outcome, predictions=np.zeros(labels_len, np.int64)),
                                      "params": params}).startswith("spirals: test accuracy 0.3")
    assert "one class per held-out example" in judges.verdict_on(
        served, {"outcome": replace(outcome, predictions=outcome.predictions[:-1]), "params": params})
    assert "no trained params" in judges.verdict_on(served, {"outcome": outcome, "params": None})
    untrained = {k: np.zeros_like(v) for k, v in params.items()}
    assert "the trained params do not" in judges.verdict_on(served, {"outcome": outcome, "params": untrained})
    assert "the check returned" in judges.verdict_on(served, {"outcome": outcome, "params": {"W1": params["W1"]}})
    assert judges.verdict_on(served, {"outcome": outcome, "params": params}) is None


# ---- what the sandbox holds -----------------------------------------------------------------------------


def test_the_training_check_sends_inputs_and_no_label_nor_the_datas_seed():
    params = judges.secret_params("ex02.training", {"seed": 5, "threshold": 0.93}, b"s", A, "student")
    prepared = judges.serve("ex02.training", params).prepared
    given, labels = prepared.given, prepared.private
    assert set(given) == {"x_train", "y_train", "x_test", "n_classes", "hidden_units", "epochs", "lr", "batch_size",
                          "seed"}
    assert given["x_test"].shape == (600, 2) and labels.shape == (600,)
    assert not any(isinstance(v, np.ndarray) and v.shape == labels.shape for v in given.values())
    for seed in (given["seed"] % 2**31, 5):  # the seed it is sent, and the notebook's, lead to other spirals
        other = spirals(n_per_class=1000, noise=0.2, seed=seed).numpy()
        points = {tuple(p) for p in np.concatenate([other.x_train, other.x_val, other.x_test])}
        assert {tuple(p) for p in given["x_test"]} & points <= {(0.0, 0.0)}  # r = 0: the centre, in every draw


@pytest.mark.slow  # builds a sandbox library and imports the checks (torch) from it: ~15 s
def test_the_sandbox_library_has_no_reference_layer_and_the_checks_still_import(tmp_path):
    written = judges.written(A)
    assert {"affine_forward", "affine_backward", "relu_forward", "relu_backward", "relu", "relu_grad"} <= set(
        written["course_lib.activations"])
    built = library.build(written, tmp_path / "libraries")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "course_lib").symlink_to(built)
    assert "def affine_forward" not in (built / "activations.py").read_text()
    assert not (built / "grading" / "judges").exists()
    code = ("import importlib, importlib.util\nfrom course_lib.grading.checks import ex02\n"
            "m = importlib.import_module('course_lib.activ' + 'ations')\n"
            "for name in ('affine_forward', 'relu_backward', 'relu_grad'):\n"
            "    try:\n        getattr(m, name)\n    except ImportError as err:\n        print(err)\n"
            "print(importlib.util.find_spec('course_lib.grading.judges'), m.__file__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split(" is ")[0] for line in lines[:3]] == [
        "course_lib.activations.affine_forward", "course_lib.activations.relu_backward",
        "course_lib.activations.relu_grad"]
    assert all("is the course's own answer to this exercise" in line for line in lines[:3])
    assert lines[3] == f"None {tmp_path / 'site' / 'course_lib' / 'activations.py'}"


# ---- `course grade` end to end --------------------------------------------------------------------------

HONEST = ("affine", "relu_layer")  # the sections a partial submission solves: 4 + 4 points
STUB_NET = '''
def softmax_loss(scores, y):
    return 0.0, np.zeros_like(scores)


def two_layer_loss(params, x, y=None):
    """A stub: no scores, no gradients."""
    if y is None:
        return np.zeros((len(x), params["W2"].shape[1]))
    return 0.0, {k: np.zeros_like(v) for k, v in params.items()}
'''
STUB_CHECK = '''
def gradient_check(loss_fn, params, x, y):
    return dict.fromkeys(params, 0.0)
'''
FORGE_PROBES = STUB_NET + '''
from course_lib.grading.checks import ex02 as _ex02
from course_lib.grading.kernel import layers as _layers
from course_lib.grading.kernel.probes import Outcome as _Outcome
from course_lib.grading.kernel.training import TrainingOutcome as _TrainingOutcome


def _perfect(loss_fn, params, x, y):
    grads = {k: _Outcome(np.zeros(v.shape), "float64", "ndarray") for k, v in params.items()}
    return _layers.Probe({"loss": _Outcome(np.array(0.5), "float64", "float"), **grads})


_ex02.probe_loss = _perfect
_ex02.numerical_loss_grads = lambda loss_fn, params, x, y: {k: np.zeros(v.shape) for k, v in params.items()}
_ex02._errors = lambda gradient_check, problem: {"errors": dict.fromkeys(problem["params"], 0.0)}
_ex02.train_numpy_classifier = lambda loss_fn, params, x_train, y_train, x_test, *rest: (
    _TrainingOutcome(test_accuracy=1.0, train_seconds=0.1, predictions=np.zeros(len(x_test), np.int64)), params)
'''
SKIP_CHECKS = STUB_NET + '''
from course_lib.grading.kernel import channel as _channel

_real_check = _channel.check


def _only_the_ones_i_pass(name, probe, **params):
    if name in ("ex02.affine", "ex02.relu_layer"):
        return _real_check(name, probe, **params)
    print(f"skipped {name}")


_channel.check = _only_the_ones_i_pass
'''
FORGE_LINK = STUB_NET + '''
from course_lib.grading.kernel import channel as _channel

_link = _channel._link
_send = _link.send


def _forged(message):
    if message.get("op") == "data" and message["check"] not in ("ex02.affine", "ex02.relu_layer"):
        message = {**message, "data": 10**400}
    _send(message)


_link.send = _forged
'''
LABEL_SEARCH = STUB_NET.replace('''    if y is None:
        return np.zeros((len(x), params["W2"].shape[1]))''', '''    if y is None:
        found = _label_candidates(len(x))
        print(f"label candidates: {len(found)}")
        scores = np.zeros((len(x), params["W2"].shape[1]))
        if found:
            scores[np.arange(len(x)), found[0]] = 1.0
        return scores''') + '''
import gc
import sys


def _is_labels(value, n):
    return isinstance(value, np.ndarray) and value.shape == (n,) and value.dtype.kind in "iub" or (
        isinstance(value, list) and len(value) == n and all(isinstance(v, int) for v in value))


def _label_candidates(n):
    """Every integer array (or list) of n entries that this process can reach: frames, then the gc's objects."""
    found, frame = [], sys._getframe()
    while frame is not None:
        found += [v for v in list(frame.f_locals.values()) if _is_labels(v, n)]
        frame = frame.f_back
    for obj in gc.get_objects():
        items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list | tuple) else ()
        found += [v for v in list(items) if _is_labels(v, n)]
    return found
'''
NOTEBOOK_SEED_LABELS = STUB_NET.replace('''    if y is None:
        return np.zeros((len(x), params["W2"].shape[1]))''', '''    if y is None:
        from course_lib.data import spirals
        seed = int(np.random.default_rng(5).integers(0, 2**31, size=1)[0])  # the grader's draw for seed=5
        data = spirals(n_per_class=1000, n_classes=3, noise=0.2, seed=seed).numpy()
        known = {tuple(p): c for p, c in zip(data.x_test, data.y_test)}
        classes = [known.get(tuple(p), 0) for p in x.astype(np.float32)]
        print(f"knows the test points: {sum(tuple(p) in known for p in x.astype(np.float32)) > 10}")
        return np.eye(3)[classes]''')
NEAREST_NEIGHBOUR = STUB_NET.replace('''    if y is None:
        return np.zeros((len(x), params["W2"].shape[1]))''', '''    if y is None:
        from course_lib.data import spirals
        data = spirals(n_per_class=300, seed=123).numpy()
        nearest = ((x[:, None, :] - data.x_train[None]) ** 2).sum(-1).argmin(1)
        return np.eye(3)[data.y_train[nearest]]''').replace(  # gradients that nudge every weight
    "return 0.0, {k: np.zeros_like(v)", "return 1.0, {k: np.full_like(v, 1e-3)")
BORROW_IMPORT = "from course_lib.activations import affine_forward, affine_backward\n"
BORROW_IMPORTLIB = '''import importlib

_m = importlib.import_module("course_lib." + "activ" + "ations")
print("source has relu_forward:", "def relu_forward" in open(_m.__file__).read())
try:
    relu_forward, relu_backward = (getattr(_m, "relu" + suffix) for suffix in ("_forward", "_backward"))
except ImportError as err:
    print(err)

    def relu_forward(x):  # a stub, used when the reference cannot be had
        return x, x

    def relu_backward(dout, cache):
        return dout
'''


def test_the_label_search_would_find_labels_held_by_any_frame_or_container():
    namespace: dict = {"np": np}
    exec(LABEL_SEARCH, namespace)
    labels = np.arange(600) % 3
    assert any(found is labels for found in namespace["_label_candidates"](600))
    kept = {"y_test": list(range(7))}
    assert any(found is kept["y_test"] for found in namespace["_label_candidates"](7))


def _partial(root, net=STUB_NET, check=STUB_CHECK):
    """The solution's affine and ReLU layers, with `net` and `check` as the two-layer and gradient-check cells."""
    nb = fx.solved(root, A)
    fx.cell(nb, "two_layer").source, fx.cell(nb, "gradient_check").source = net, check
    return nb


def _borrowing(root, gid, source):
    nb = fx.solved(root, A)
    fx.cell(nb, gid).source = source
    return nb


FLAG = "uses the course's reference"
ATTACKS = {  # student -> (notebook, expected score out of 25, expected status, a flag it must have, output it shows)
    "partial": (_partial, 8, "graded", None, None),
    "forge_probes": (lambda r: _partial(r, FORGE_PROBES), 8, "graded", None, None),
    "skip_checks": (lambda r: _partial(r, SKIP_CHECKS), 8, "graded", None, "skipped ex02.training"),
    "forge_link": (lambda r: _partial(r, FORGE_LINK), 8, "graded", None, None),
    "label_search": (lambda r: _partial(r, LABEL_SEARCH), 8, "graded", None, "label candidates: 0"),
    "notebook_seed_labels": (lambda r: _partial(r, NOTEBOOK_SEED_LABELS), 8, "graded", None,
                             "knows the test points: False"),
    "nearest_neighbour": (lambda r: _partial(r, NEAREST_NEIGHBOUR), 8, "graded", None, None),
    "borrow_import": (lambda r: _borrowing(r, "affine", BORROW_IMPORT), 8, "flagged",
                      f"{FLAG} (course_lib.activations.affine_forward)", None),
    "borrow_importlib": (lambda r: _borrowing(r, "relu_layer", BORROW_IMPORTLIB), 8, "flagged",
                         f"{FLAG} (course_lib.activations.relu_forward)", "source has relu_forward: False"),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """One `course grade` run (bubblewrap, secret inputs) of the solution, the blank release, every mutant and
    every attack: student -> (Graded, the autograded notebook)."""
    notebooks = {"solution": fx.solved(ROOT, A), "blank": fx.released(ROOT, A), **fx.mutated(ROOT, A),
                 **{student: build(ROOT) for student, (build, *_) in ATTACKS.items()}}
    course = tmp_path_factory.mktemp("course")
    with pytest.MonkeyPatch.context() as mp:
        results = fx.grade_class(ROOT, course, A, notebooks, mp, limits=Limits(wall_s=300, cell_timeout_s=60))
    return {s: (g, nbformat.read(course / "autograded" / s / A / f"{A}.ipynb", as_version=4) if g.status != "error"
                else None) for s, g in results.items()}


def _output(nb) -> str:
    return "".join(o.get("text", "") + o.get("evalue", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs)


@pytest.mark.sandbox
@pytest.mark.slow
def test_course_grade_gives_the_solution_full_marks_the_blank_none_and_every_mutant_less(graded):
    assert (graded["solution"][0].status, graded["solution"][0].score) == ("graded", 25)
    assert (graded["blank"][0].status, graded["blank"][0].score) == ("graded", 0)
    mutants = {s: g for s, (g, _) in graded.items() if s.startswith("mutant-")}
    assert len(mutants) == len(named(A))
    assert all(g.status == "graded" and g.score < 25 for g in mutants.values()), {
        s: (g.status, g.score) for s, g in mutants.items()}


@pytest.mark.sandbox
@pytest.mark.slow
@pytest.mark.parametrize("student", sorted(ATTACKS))
def test_an_attack_earns_what_the_honest_part_of_the_work_earns(graded, student):
    _, score, status, flag, shown = ATTACKS[student]
    result, nb = graded[student]
    assert (result.status, result.score) == (status, score), (result.flags, result.messages)
    assert result.cell_scores["test_training"] == result.cell_scores["test_training_hidden"] == 0
    if flag:
        assert flag in result.flags
    else:
        assert not any(f.startswith(FLAG) for f in result.flags)
    if shown:
        assert shown in _output(nb)


@pytest.mark.sandbox
@pytest.mark.slow
def test_scores_that_do_not_come_from_the_trained_params_are_named(graded):
    assert "the trained params do not" in graded["nearest_neighbour"][0].messages["test_training"]
    assert "two_layer_loss: the check returned" in graded["forge_link"][0].messages["test_two_layer"]
    assert "made 0 of its 1 checks" in graded["skip_checks"][0].messages["test_gradient_check"]
