"""ex05's checks as `course grade` decides them (secret inputs, judged on the host) and as a student sees them
locally: the solution passes, each misconception fails with its message, forged or malformed data fails
without raising. The slow tests grade a class in the sandbox: solution, blank, every mutant, and the attacks
of issue 14 (stubs with a patched channel, label theft, the course's reference reached through importlib, a
wrapper def or object.__setattr__)."""

import numpy as np
import pytest
import torch
from torch import nn

from course_lib import activations as reference
from course_lib import nn as course_nn
from course_lib.gradcheck import numerical_gradient_array, relative_error
from course_lib.grading import judges
from course_lib.grading.authoring.mutants import named
from course_lib.grading.checks import ex05
from course_lib.grading.judges import ex05 as judge
from course_lib.grading.kernel.modules import ModuleOutcome
from course_lib.grading.kernel.probes import Outcome
from course_lib.grading.kernel.sequential import LayerSpec, run_with_weights
from course_lib.grading.kernel.training import TrainingOutcome
from course_lib.grading.sandbox.bubblewrap import Limits
from tests import grading_fixtures as fx
from tests.conftest import ROOT

torch.set_num_threads(1)
A = "ex05_maxout"


def maxout_forward(z, k):
    if z.shape[-1] % k:
        raise ValueError(f"the width {z.shape[-1]} is not divisible by k={k}")
    pieces = z.reshape(*z.shape[:-1], z.shape[-1] // k, k)
    return pieces.max(axis=-1), (z, k)


def maxout_backward(dout, cache):
    z, k = cache
    pieces = z.reshape(*z.shape[:-1], z.shape[-1] // k, k)
    dpieces = np.zeros_like(pieces)
    np.put_along_axis(dpieces, pieces.argmax(axis=-1)[..., None], dout[..., None], axis=-1)
    return dpieces.reshape(z.shape)


def maxout_grad_error(forward, backward, z, k, dout):
    _, cache = forward(z, k)
    return relative_error(backward(dout, cache), numerical_gradient_array(lambda v: forward(v, k)[0], z, dout))


class Maxout(nn.Module):
    def __init__(self, in_features, out_features, k=2):
        super().__init__()
        self.in_features, self.out_features, self.k = in_features, out_features, k
        self.linear = nn.Linear(in_features, out_features * k)

    def forward(self, x):
        return self.linear(x).unflatten(-1, (self.out_features, self.k)).max(dim=-1).values


def build_maxout_mlp():
    return nn.Sequential(Maxout(40, 64, k=2), Maxout(64, 64, k=2), nn.Linear(64, 10))


# ---- numpy forward and backward ---------------------------------------------------------------------


@pytest.mark.parametrize("check, args", [
    (ex05.check_maxout_forward, (maxout_forward,)), (ex05.check_maxout_backward, (maxout_forward, maxout_backward)),
    (ex05.check_gradient_check, (maxout_grad_error,)), (ex05.check_maxout_layer, (Maxout,)),
])
def test_the_solution_passes_graded_and_locally(check, args):
    for params in ({"seed": 1}, {"seed": 7501, "hidden": True}):
        assert fx.graded(check, *args, **params) is None
        assert fx.message_of(check, *args, **params) is None


def _strided(z, k):
    return z.reshape(*z.shape[:-1], k, z.shape[-1] // k).max(axis=-2), (z, k)


def _drops_the_rest(z, k):
    units = z.shape[-1] // k
    return z[..., : units * k].reshape(*z.shape[:-1], units, k).max(axis=-1), (z, k)


@pytest.mark.parametrize("forward, message", [
    (_strided, "maxout_forward(z, k=2): the pieces were grouped with stride"),
    (lambda z, k: (z.reshape(*z.shape[:-1], -1, k).max(axis=-2), (z, k)),
     "maxout_forward(z, k=2): the max was taken over the wrong axis"),
    (lambda z, k: (z.reshape(*z.shape[:-1], -1, k).min(axis=-1), (z, k)),
     "maxout_forward(z, k=2): took the min of the pieces"),
    (_drops_the_rest, "maxout_forward(z, k=2) on z of width 7 returned without an error: 7 is not divisible"),
    (lambda z, k: maxout_forward(z, k)[0], "maxout_forward(z, k=2): TypeError: maxout_forward returned a ndarray"),
])
def test_a_wrong_forward_fails_graded_and_locally_with_its_message(forward, message):
    assert fx.graded(ex05.check_maxout_forward, forward, seed=1).startswith(message)
    assert fx.message_of(ex05.check_maxout_forward, forward, seed=1).startswith(message)


def _pieces_of(cache):
    z, k = cache
    return z, k, z.reshape(*z.shape[:-1], z.shape[-1] // k, k)


def _every_tie(dout, cache):
    z, k, pieces = _pieces_of(cache)
    return ((pieces == pieces.max(axis=-1, keepdims=True)) * dout[..., None]).astype(z.dtype).reshape(z.shape)


def _split_ties(dout, cache):
    z, k, pieces = _pieces_of(cache)
    winners = pieces == pieces.max(axis=-1, keepdims=True)
    return (winners * dout[..., None] / winners.sum(axis=-1, keepdims=True)).astype(z.dtype).reshape(z.shape)


def _last_tie(dout, cache):
    z, k, pieces = _pieces_of(cache)
    grad = np.zeros_like(pieces)
    np.put_along_axis(grad, (k - 1 - pieces[..., ::-1].argmax(axis=-1))[..., None], dout[..., None], axis=-1)
    return grad.reshape(z.shape)


@pytest.mark.parametrize("backward, message", [
    (_every_tie, "maxout_backward (k=2): on ties every tied piece got the whole dout"),
    (_split_ties, "maxout_backward (k=2): ties split the gradient between the tied pieces"),
    (_last_tie, "maxout_backward (k=2): on ties the gradient went to the last maximum"),
    (lambda d, c: np.repeat(d, c[1], axis=-1).astype(c[0].dtype), "the gradient reached every maxout piece"),
    (lambda d, c: reference.maxout_grad(c[0], c[1]), "maxout_backward (k=2): the winner got 1 instead of dout"),
    (lambda d, c: maxout_backward(d, c).astype(np.float64), "returned dtype float64 for a float32 input"),
])
def test_a_wrong_backward_fails_graded_and_locally_with_its_message(backward, message):
    assert message in fx.graded(ex05.check_maxout_backward, maxout_forward, backward, seed=2)
    assert message in fx.message_of(ex05.check_maxout_backward, maxout_forward, backward, seed=2)


def test_a_hidden_failure_reveals_no_values():
    message = fx.graded(ex05.check_maxout_forward, lambda z, k: (z[..., ::k] * 1.5, (z, k)), seed=7501, hidden=True)
    assert "a hidden test input (shape" in message and "[" not in message.split("a hidden test input")[1]


@pytest.mark.parametrize("check", ["ex05.maxout_forward", "ex05.maxout_backward", "ex05.gradient_check"])
@pytest.mark.parametrize("data", [None, 10**400, "ok", [], {"outcomes": 10**400, "indivisible": []},
                                  [[Outcome(np.zeros(3))] * 2] * 2, [[Outcome(10**400)] * 6] * 3,
                                  [[Outcome(None, error=10**400)] * 6] * 3])
def test_forged_or_malformed_numpy_data_fails_without_raising(check, data):
    message = fx.forged(check, data, seed=1)
    assert isinstance(message, str) and "could not read" not in message


def test_forward_outcomes_for_other_inputs_fail():
    """The right forward on the notebook's inputs, handed back for the secret ones."""
    notebook = judges.serve("ex05.maxout_forward", {"seed": 1})
    data = {"outcomes": [[Outcome(reference.maxout(z, p["k"]).astype(np.float64), str(z.dtype), "ndarray")
                          for z in p["inputs"]] for p in notebook.given["parts"]],
            "indivisible": [Outcome(None, error="ValueError: no")]}
    assert judges.verdict_on(notebook, judges.roundtrip(data)) is None
    assert fx.forged("ex05.maxout_forward", data, seed=1).startswith("maxout_forward(z, k=2): wrong values")


# ---- the gradient check -----------------------------------------------------------------------------


def _compares_with_itself(forward, backward, z, k, dout):
    _, cache = forward(z, k)
    return relative_error(backward(dout, cache), backward(dout, cache))


def _assumes_maxout(forward, backward, z, k, dout):
    """Compares with its own analytic maxout gradient: right for maxout only."""
    _, cache = forward(z, k)
    return relative_error(backward(dout, cache), reference.maxout_grad(z, k, dout))


def _mean_error(forward, backward, z, k, dout):
    _, cache = forward(z, k)
    numerical = numerical_gradient_array(lambda v: forward(v, k)[0], z, dout)
    return float(np.mean(np.abs(backward(dout, cache) - numerical)))


@pytest.mark.parametrize("grad_error, message", [
    (lambda f, b, z, k, d: 0.0, "maxout_grad_error returned 0.0e+00 for a WRONG maxout_backward that sends the "
                                "gradient to every piece on z of shape (4, 6), k=2"),
    (lambda f, b, z, k, d: np.ones(2), "maxout_grad_error returned array([1., 1.]) on z of shape (4, 6), k=2"),
    (lambda f, b, z, k, d: 1.0, "maxout_grad_error returned 1.0e+00 for a CORRECT maxout_backward"),
    (_compares_with_itself, "for a WRONG maxout_backward that sends the gradient to every piece"),
    (_assumes_maxout, "for a CORRECT backward of the grader's tanh layer on z of shape (3, 9), k=3"),
    (_mean_error, "that is wrong in one element only (report the largest relative error, not an average)"),
])
def test_a_wrong_gradient_check_fails_graded_and_locally_with_its_message(grad_error, message):
    assert message in fx.graded(ex05.check_gradient_check, grad_error, seed=3)
    assert message in fx.message_of(ex05.check_gradient_check, grad_error, seed=3)


def test_the_right_backward_is_not_where_a_fixed_order_puts_it():
    """The old attack: report a tiny error for the first backward and a large one for the others. The order is
    drawn from the secret seed, so it fails (but for a 1 in 6**3 guess)."""
    positions = []
    for student in ("ann", "bob", "cat", "dan"):
        served = judges.serve("ex05.gradient_check", judges.secret_params(
            "ex05.gradient_check", {"seed": 3}, b"test secret", "ex05", student))
        positions.append(tuple(kinds.index("correct") for kinds in served.prepared.private))
        data = [[Outcome(np.array(1e-9 if i == 0 else 0.5)) for i in range(6)] for _ in served.given["setups"]]
        assert judges.verdict_on(served, judges.roundtrip(data)) is not None
    assert len(set(positions)) > 1


def test_the_backwards_handed_to_the_student_look_alike():
    served = judges.serve("ex05.gradient_check", {"seed": 3})
    backwards = [ex05._backward(c) for c in served.given["setups"][0]["candidates"]]
    assert len({b.__code__ for b in backwards}) == 1 and len({b.__qualname__ for b in backwards}) == 1


# ---- the torch Maxout layer -------------------------------------------------------------------------


class Amax(Maxout):
    def forward(self, x):
        return self.linear(x).unflatten(-1, (self.out_features, self.k)).amax(dim=-1)


class Strided(Maxout):
    def forward(self, x):
        return self.linear(x).unflatten(-1, (self.k, self.out_features)).max(dim=-2).values


class Narrow(Maxout):
    def __init__(self, in_features, out_features, k=2):
        super().__init__(in_features, out_features, k)
        self.linear = nn.Linear(in_features, out_features)


class WithGroupMax(Maxout):
    """course_lib's GroupMax is a building block the exercise allows."""

    def forward(self, x):
        return course_nn.GroupMax(self.k)(self.linear(x))


@pytest.mark.parametrize("cls, message", [
    (Amax, "Maxout: ties split the gradient between the tied pieces"),
    (Strided, "Maxout: the pieces were grouped with stride"),
    (Narrow, "Maxout(5, 3, 2): self.linear has 3 outputs: each of the 3 units needs k=2 pieces"),
])
def test_a_wrong_layer_fails_graded_and_locally_with_its_message(cls, message):
    assert fx.graded(ex05.check_maxout_layer, cls, seed=4).startswith(message)
    assert fx.message_of(ex05.check_maxout_layer, cls, seed=4).startswith(message)


def test_a_layer_built_on_groupmax_passes():
    assert fx.graded(ex05.check_maxout_layer, WithGroupMax, seed=7504, hidden=True) is None


@pytest.mark.parametrize("data", [None, 10**400, [ModuleOutcome(output=10**400)] * 2, [ModuleOutcome()] * 2])
def test_forged_or_malformed_layer_data_fails_without_raising(data):
    message = fx.forged("ex05.maxout_layer", data, seed=4)
    assert isinstance(message, str) and message.startswith("Maxout")


# ---- the MLP: the judge, on data written here -------------------------------------------------------


@pytest.fixture(scope="module")
def served():
    params = judges.secret_params("ex05.maxout_mlp", {"seed": 5, "hidden": False}, b"test secret", "ex00", "student")
    return judges.serve("ex05.maxout_mlp", params)


def _trained(labels, accuracy: float = 0.58, **change) -> TrainingOutcome:
    predictions = labels.copy()
    wrong = slice(int(accuracy * len(labels)), None)
    predictions[wrong] = (predictions[wrong] + 1) % 10
    return TrainingOutcome(train_seconds=2.0, n_parameters=14_218, predictions=predictions, **change)


def _mlp(served, build=build_maxout_mlp, **change) -> dict:
    layers, loaded = run_with_weights(build, Maxout, served.given["param_seed"], served.given["x"])
    data = {"outcome": _trained(served.prepared.private), "layers": layers, "loaded": loaded, "calls": [1, 1]}
    return {**data, **change}


def _verdict(served, data):
    return judges.verdict_on(served, judges.roundtrip(data))


def test_a_good_mlp_passes_and_the_labels_stay_on_the_host(served):
    assert _verdict(served, _mlp(served)) is None
    assert served.given["heldout"].shape == (judge.N_HELDOUT, 40) and served.prepared.private.shape == (1000,)
    assert not any(isinstance(v, np.ndarray) and v.dtype.kind == "i" for v in served.given.values())


@pytest.mark.parametrize("change, message", [
    (lambda s: {"outcome": _trained(s.prepared.private, 0.3, test_accuracy=0.99)},   # a claimed accuracy is unread
     "build_maxout_mlp: test accuracy 0.300, below the required 0.48: about what a linear model reaches"),
    (lambda s: {"outcome": TrainingOutcome(error="TypeError: boom")}, "building or training the model failed"),
    (lambda s: _mlp(s, lambda: nn.Sequential(nn.Linear(40, 64), nn.ReLU(), nn.Linear(64, 10))),
     "build_maxout_mlp() holds none of your Maxout layers"),
    (lambda s: _mlp(s, lambda: nn.Sequential(Maxout(40, 64), nn.ReLU(), nn.Linear(64, 10))),
     "build_maxout_mlp() also holds ReLU: the only nonlinearity should be your Maxout"),
    (lambda s: _mlp(s, lambda: nn.Sequential(Maxout(40, 64), Maxout(64, 10))), "must map 40 inputs to 10 logits"),
    (lambda s: _mlp(s, lambda: nn.Sequential(Maxout(40, 64), nn.Linear(32, 10))),
     "with the grader's weights loaded: RuntimeError: mat1 and mat2 shapes cannot be multiplied"),
    (lambda s: {"layers": [LayerSpec("Maxout", "Maxout", (40, 64, 2)), LayerSpec("Linear", "Linear", (32, 10))],
                "loaded": ModuleOutcome(output=np.zeros((16, 10)), output_dtype="float32")},
     "its layers do not fit together (Maxout(40, 64, 2), Linear(32, 10))"),
    (lambda s: _mlp(s, lambda: nn.Linear(40, 10)), "must return an nn.Sequential"),
    (lambda s: {"calls": [1, 0]}, "a Maxout layer of the model is never used in its forward pass"),
    (lambda s: _mlp(s, lambda: nn.Sequential(Amax(40, 64), Narrow(64, 64), nn.Linear(64, 10))),
     "build_maxout_mlp() with the grader's weights loaded: a layer has a parameter of shape (64, 64)"),
    (lambda s: {"loaded": ModuleOutcome(output=np.zeros((16, 10)), output_dtype="float32")},
     "build_maxout_mlp() with the grader's weights loaded: wrong output"),
    (lambda s: {"layers": [LayerSpec("Maxout", "Maxout", (40, 64, 2)), LayerSpec("Maxout", "Maxout", (64, 64, 2)),
                           LayerSpec("Linear", "Linear", (64, 10))],
                "loaded": run_with_weights(lambda: nn.Sequential(nn.Linear(40, 128), nn.ReLU(), nn.Linear(128, 10)),
                                           Maxout, s.given["param_seed"], s.given["x"])[1]},
     "build_maxout_mlp() with the grader's weights loaded: wrong output"),   # a description that lies
])
def test_a_wrong_or_forged_mlp_fails_with_its_message(served, change, message):
    assert message in _verdict(served, {**_mlp(served), **change(served)})


@pytest.mark.parametrize("data", [None, 10**400, {}, {"outcome": 10**400}, {"layers": 10**400},
                                  {"layers": [LayerSpec("Linear", "Linear", (10**400, 10))]},
                                  {"layers": [LayerSpec("Maxout", "M", (4096, 4096, 64))] * 30},
                                  {"calls": [10**400, "x"]}, {"loaded": "x"},
                                  {"outcome": TrainingOutcome(predictions=np.full(1000, 10**18))}])
def test_malformed_mlp_data_fails_without_raising(served, data):
    full = data if not isinstance(data, dict) or not data else {**_mlp(served), **data}
    message = _verdict(served, full)
    assert isinstance(message, str) and "could not read" not in message


def test_the_solution_mlp_passes_graded_and_prints_what_the_written_answers_need(capsys):
    assert fx.graded(ex05.check_maxout_mlp, build_maxout_mlp, Maxout, seed=5) is None
    printed = capsys.readouterr().out
    assert "14218 parameters" in printed and "pieces never won on the training set" in printed


@pytest.mark.slow
@pytest.mark.parametrize("build, message", [
    (lambda: nn.Sequential(nn.Linear(40, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)),
     "holds none of your Maxout layers"),
    (lambda: nn.Sequential(Maxout(40, 64, k=1), Maxout(64, 64, k=1), nn.Linear(64, 10)),
     "about what a linear model reaches"),
])
def test_a_wrong_build_maxout_mlp_fails_graded(build, message):
    assert message in fx.graded(ex05.check_maxout_mlp, build, Maxout, seed=5)


# ---- course grade in the sandbox: the class -----------------------------------------------------------

PATCH_CHANNEL = '''
from course_lib.grading.kernel import channel
from course_lib.grading.kernel.modules import ModuleOutcome
from course_lib.grading.kernel.probes import Outcome
from course_lib.grading.kernel.training import TrainingOutcome
_real_check = channel.check


def _zeros(z, k):
    return Outcome(np.zeros((*z.shape[:-1], z.shape[-1] // k)), str(z.dtype), "ndarray")


def _forge(name, given):
    """What a check would need to pass, made up without doing the exercise."""
    if name == "ex05.maxout_forward":
        return {"outcomes": [[_zeros(z, p["k"]) for z in p["inputs"]] for p in given["parts"]],
                "indivisible": [Outcome(None, error="ValueError: no") for _ in given["indivisible"]]}
    if name == "ex05.maxout_backward":
        return [[Outcome(np.zeros(z.shape), str(z.dtype), "ndarray") for z in p["inputs"]] for p in given["parts"]]
    if name == "ex05.gradient_check":   # the correct backward used to come first
        return [[Outcome(np.array(1e-9 if i == 0 else 0.5)) for i in range(len(s["candidates"]))]
                for s in given["setups"]]
    if name == "ex05.maxout_layer":
        return [ModuleOutcome(output=np.zeros((len(c.x), c.args[1])), output_dtype="float32",
                              input_grad=np.zeros(c.x.shape), param_grads={n: np.zeros(v.shape)
                                                                          for n, v in c.params.items()})
                for c in given["cases"]]
    from course_lib.grading.kernel.sequential import LayerSpec
    return {"outcome": TrainingOutcome(train_seconds=1.0, n_parameters=1,
                                       predictions=np.zeros(len(given["heldout"]), np.int64)),
            "layers": [LayerSpec("Maxout", "Maxout", (40, 64, 2)), LayerSpec("Linear", "Linear", (64, 10))],
            "loaded": ModuleOutcome(output=np.zeros((len(given["x"]), 10)), output_dtype="float32"),
            "calls": [1]}


def _forging_check(name, probe, **params):
    _real_check(name, lambda given: _forge(name, given), **params)


channel.check = _forging_check

def maxout_forward(z, k):
    return None, None
'''

THIEF = '''import gc
import sys

import numpy as np

from course_lib.data import mnist1d


def _stolen(x):
    """Labels for the held-out inputs x, from anywhere the process reaches: frames, the heap, the public data."""
    n = len(x)
    frame = sys._getframe()
    while frame is not None:
        for value in frame.f_locals.values():
            if isinstance(value, (np.ndarray, torch.Tensor)) and tuple(value.shape) == (n,) and \\
                    str(value.dtype) in ("int64", "torch.int64"):
                return torch.as_tensor(value)
        frame = frame.f_back
    for obj in gc.get_objects():
        if isinstance(obj, (np.ndarray, torch.Tensor)) and tuple(obj.shape) == (n,) and \\
                str(obj.dtype) in ("int64", "torch.int64"):
            return torch.as_tensor(obj)
    public = mnist1d(num_samples=4000)   # the held-out inputs are the public test split locally, not when graded
    match = (torch.as_tensor(public.x_test)[None] == x[:, None]).all(-1)
    return torch.as_tensor(public.y_test)[match.float().argmax(1)] if match.any(1).all() else None


class Thief(nn.Sequential):
    def forward(self, x):
        held_out = not self.training and len(x) > 100 and len(x) != 2880   # not the public training set
        labels = _stolen(x) if held_out else None
        if labels is not None:
            return 10.0 * nn.functional.one_hot(labels.long(), 10).float()
        return super().forward(x)


def build_maxout_mlp():
    return Thief(Maxout(40, 10, k=1), nn.Linear(10, 10))   # linear: 410 + 110 parameters
'''

STUBS = {
    "maxout_backward": "def maxout_backward(dout, cache):\n    return None",
    "maxout_grad_error": "def maxout_grad_error(forward, backward, z, k, dout):\n    return 0.0",
    "maxout_layer": ("class Maxout(nn.Module):\n    def __init__(self, i, o, k=2):\n        super().__init__()\n"
                     "        self.linear = nn.Linear(i, o * k)\n\n    def forward(self, x):\n        return x"),
    "build_maxout_mlp": "def build_maxout_mlp():\n    return nn.Sequential(nn.Linear(40, 10))",
}

BORROW_IMPORTLIB = '''import importlib


def maxout_backward(dout, cache):
    module = importlib.import_module("course_lib." + "activ" + "ations")
    return getattr(module, "maxout_" + "backward")(dout, cache)
'''

BORROW_WRAPPER = '''from course_lib import activations as _a


def maxout_forward(z, k):
    return _a.maxout_forward(z, k)
'''

BORROW_SETATTR = '''import course_lib.nn as _cnn


class Maxout(nn.Module):
    def __init__(self, in_features, out_features, k=2):
        super().__init__()
        self.in_features, self.out_features, self.k = in_features, out_features, k
        object.__setattr__(self, "impl", getattr(_cnn, "Max" + "out")(in_features, out_features, k))
        self.linear = self.impl.linear

    def forward(self, x):
        return self.impl(x)
'''

GROUPMAX = '''from course_lib.nn import GroupMax


class Maxout(nn.Module):
    def __init__(self, in_features, out_features, k=2):
        super().__init__()
        self.in_features, self.out_features, self.k = in_features, out_features, k
        self.linear = nn.Linear(in_features, out_features * k)
        self.group_max = GroupMax(k)

    def forward(self, x):
        return self.group_max(self.linear(x))
'''


def _with(**sources):
    nb = fx.solved(ROOT, A)
    for gid, text in sources.items():
        fx.cell(nb, gid).source = text
    return nb


REFERENCE = "uses the course's reference (course_lib."
# student -> (notebook, status, score out of 24, flag): each attack scores what the same honest work scores
# (the cells its borrowed or stolen answer feeds lose their points; nothing else changes).
CLASS = {
    "solution": (lambda: fx.solved(ROOT, A), "graded", 24.0, None),
    "blank": (lambda: fx.released(ROOT, A), "graded", 0.0, None),
    "groupmax_allowed": (lambda: _with(maxout_layer=GROUPMAX), "graded", 24.0, None),
    "stubs_patched_channel": (lambda: _with(maxout_forward=PATCH_CHANNEL, **STUBS), "graded", 0.0, None),
    "label_theft_linear": (lambda: _with(build_maxout_mlp=THIEF), "graded", 18.0, None),
    "borrow_importlib": (lambda: _with(maxout_backward=BORROW_IMPORTLIB), "flagged", 18.0,
                         REFERENCE + "activations.maxout_backward)"),
    "borrow_wrapper": (lambda: _with(maxout_forward=BORROW_WRAPPER), "flagged", 15.0,
                       REFERENCE + "activations.maxout_forward)"),
    "borrow_setattr": (lambda: _with(maxout_layer=BORROW_SETATTR), "flagged", 12.0, REFERENCE + "nn.Maxout)"),
}


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    notebooks = {student: build() for student, (build, _, _, _) in CLASS.items()}
    mutants = named(A)
    notebooks |= fx.mutated(ROOT, A)
    with pytest.MonkeyPatch.context() as mp:
        results = fx.grade_class(ROOT, tmp_path_factory.mktemp("ex05") / "course", A, notebooks, mp,
                                 limits=Limits(wall_s=400, cell_timeout_s=150))
    return results, mutants


@pytest.mark.sandbox
@pytest.mark.slow
@pytest.mark.parametrize("student", sorted(CLASS))
def test_course_grade_gives_each_attack_only_what_honest_work_earns(graded_class, student):
    results, _ = graded_class
    _, status, score, flag = CLASS[student]
    got = results[student]
    assert (got.status, got.score, got.max_score) == (status, score, 24.0), (got.flags, got.messages)
    references = [f for f in got.flags if "course's reference" in f]
    assert references == ([flag] if flag else [])


@pytest.mark.sandbox
@pytest.mark.slow
def test_course_grade_takes_points_from_every_mutant(graded_class):
    results, mutants = graded_class
    survivors = [m.name for student, m in mutants.items() if results[student].score >= 24.0]
    assert not survivors and all(results[s].status == "graded" for s in mutants)


@pytest.mark.sandbox
@pytest.mark.slow
def test_label_theft_finds_no_labels_and_is_told_its_accuracy(graded_class):
    results, _ = graded_class
    message = results["label_theft_linear"].messages["test_build_maxout_mlp"]
    assert "below the required 0.48" in message


# ---- the sandbox library without the assignment's answers --------------------------------------------

IMPORT_ALL = '''
import importlib, pkgutil, sys
import course_lib
from course_lib.grading.kernel import channel
channel_calls = []
channel.used_reference = channel_calls.append
from pathlib import Path
assert Path(course_lib.__file__).resolve().parent == Path(sys.argv[1]).resolve(), course_lib.__file__
for info in pkgutil.iter_modules(course_lib.__path__, "course_lib."):
    importlib.import_module(info.name)      # every teaching module still imports
import course_lib.grading.kernel as kernel
for info in pkgutil.iter_modules(kernel.__path__, "course_lib.grading.kernel."):
    importlib.import_module(info.name)      # every kernel module too, none looking up a cut name
assert channel_calls == [], channel_calls
from course_lib.grading.checks import ex04, ex05
from course_lib.nn import GroupMax, make_activation
assert isinstance(make_activation("maxout", k=2), GroupMax)
for module, name in (("activations", "maxout_forward"), ("activations", "maxout_grad"), ("nn", "Maxout")):
    try:
        getattr(importlib.import_module("course_lib." + module), name)
    except ImportError as err:
        assert "is the course's own answer" in str(err)
    else:
        raise AssertionError(name + " is still there")
print("ok")
'''


@pytest.mark.slow  # builds a sandbox library and imports every teaching module (torch) from it: ~20-40 s
def test_the_sandbox_library_has_no_answer_and_every_teaching_module_and_ex05s_checks_still_import(tmp_path):
    import subprocess
    import sys

    from course_lib.grading.sandbox import library

    built = library.build(judges.written(A), tmp_path / "libraries")
    (tmp_path / "path").mkdir()
    (tmp_path / "path" / "course_lib").symlink_to(built, target_is_directory=True)
    result = subprocess.run([sys.executable, "-c", IMPORT_ALL, str(built)], capture_output=True, text=True,
                            cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "path"), "MPLBACKEND": "Agg"}, timeout=300)
    assert result.stdout.strip() == "ok", result.stderr[-2000:]
