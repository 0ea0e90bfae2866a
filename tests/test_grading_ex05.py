"""ex05's judges decide from plain data alone: the solution's data passes, in the kernel and outside (after the
JSON round trip of the probe log), and wrong, forged or garbled data fails with the message students see."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from course_lib import activations as reference
from course_lib.gradcheck import numerical_gradient_array, relative_error
from course_lib.grading import probes
from course_lib.grading.exercises import ex05
from course_lib.grading.modules import function_outcome, probe_module
from course_lib.grading.probes import Outcome
from course_lib.grading.training import TrainingOutcome
from tests.grading_fixtures import message_of, outside
from tests.grading_fixtures import trained_on_mnist1d as trained

torch.set_num_threads(1)


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


# ---- numpy forward and backward ---------------------------------------------------------------------


def _forward_data(forward, seed, hidden=False) -> dict:
    out = ex05._forward_out(forward)
    return {"borrowed": ex05._borrowed(forward),
            "outcomes": [probes.elementwise(out, ex05._maxout_inputs(seed, k, hidden), k) for k in ex05._ks(hidden)],
            "indivisible": [probes.call(out, z, k) for z, k in ex05._indivisible(seed, hidden)]}


def test_the_solutions_forward_passes_inside_and_outside():
    assert message_of(ex05.check_maxout_forward, maxout_forward, seed=1) is None
    data = _forward_data(maxout_forward, 7501, hidden=True)
    assert ex05.judge_maxout_forward(data, seed=7501, hidden=True) is None
    assert outside(ex05.judge_maxout_forward, data, seed=7501, hidden=True)
    assert not outside(ex05.judge_maxout_forward, {**data, "outcomes": data["outcomes"][:-1]}, seed=7501, hidden=True)
    assert not outside(ex05.judge_maxout_forward, {**data, "indivisible": []}, seed=7501, hidden=True)
    assert not outside(ex05.judge_maxout_forward, data, seed=7502, hidden=True)   # other inputs than probed


def _strided(z, k):
    return z.reshape(*z.shape[:-1], k, z.shape[-1] // k).max(axis=-2), (z, k)


def _drops_the_rest(z, k):
    units = z.shape[-1] // k
    return z[..., : units * k].reshape(*z.shape[:-1], units, k).max(axis=-1), (z, k)


@pytest.mark.parametrize("forward, message", [
    (_strided, "maxout_forward(z, k=2): the pieces were grouped with stride"),
    (_drops_the_rest, "maxout_forward(z, k=2) on z of width 7 returned without an error: 7 is not divisible"),
    (reference.maxout_forward, "maxout_forward is course_lib.activations.maxout_forward: write your own; "
                               "course_lib's is the reference you are compared with"),
])
def test_a_wrong_forward_fails_with_its_message_inside_and_outside(forward, message):
    assert message_of(ex05.check_maxout_forward, forward, seed=1).startswith(message)
    assert not outside(ex05.judge_maxout_forward, _forward_data(forward, 1), seed=1)


def test_the_forward_judge_decides_from_data_alone():
    """Outcomes written by hand from the reference's values pass; one wrong element fails."""
    outcomes = [[Outcome(reference.maxout(z, k).astype(np.float64), str(z.dtype), "ndarray")
                 for z in ex05._maxout_inputs(3, k, False)] for k in ex05._ks(False)]
    data = {"borrowed": None, "outcomes": outcomes, "indivisible": [Outcome(None, error="ValueError: no")]}
    assert ex05.judge_maxout_forward(data, seed=3) is None
    outcomes[1][0].value.reshape(-1)[0] += 1.0
    assert ex05.judge_maxout_forward(data, seed=3).startswith("maxout_forward(z, k=3): wrong values at 1 of ")


def _backward_data(forward, backward, seed, hidden=False) -> dict:
    def run(z, k):
        return backward(ex05._upstream(z, k), forward(z, k)[1])

    return {"borrowed": ex05._borrowed(backward),
            "outcomes": [probes.elementwise(run, ex05._maxout_inputs(seed, k, hidden), k) for k in ex05._ks(hidden)]}


def _every_tie(dout, cache):
    z, k = cache
    pieces = z.reshape(*z.shape[:-1], z.shape[-1] // k, k)
    return ((pieces == pieces.max(axis=-1, keepdims=True)) * dout[..., None]).astype(z.dtype).reshape(z.shape)


def _upcast(dout, cache):
    return maxout_backward(dout, cache).astype(np.float64)


@pytest.mark.parametrize("backward, message", [
    (_every_tie, "maxout_backward (k=2): on ties every tied piece got the whole dout"),
    (_upcast, "maxout_backward (k=2): returned dtype float64 for a float32 input"),
    (reference.maxout_backward, "maxout_backward is course_lib.activations.maxout_backward: write your own"),
])
def test_a_wrong_backward_fails_with_its_message_inside_and_outside(backward, message):
    assert message_of(ex05.check_maxout_backward, maxout_forward, backward, seed=2).startswith(message)
    assert not outside(ex05.judge_maxout_backward, _backward_data(maxout_forward, backward, 2), seed=2)


def test_the_solutions_backward_passes_inside_and_outside():
    assert message_of(ex05.check_maxout_backward, maxout_forward, maxout_backward, seed=2) is None
    data = _backward_data(maxout_forward, maxout_backward, 7502, hidden=True)
    assert ex05.judge_maxout_backward(data, seed=7502, hidden=True) is None
    assert outside(ex05.judge_maxout_backward, data, seed=7502, hidden=True)
    assert not outside(ex05.judge_maxout_backward, {"outcomes": data["outcomes"]}, seed=7502, hidden=True)


# ---- the gradient check -----------------------------------------------------------------------------


def _grad_check_data(grad_error, seed, hidden=False) -> dict:
    backwards = [reference.maxout_backward, *ex05.WRONG_BACKWARDS.values()]
    return {"borrowed": ex05._borrowed(grad_error),
            "errors": [[probes.call(grad_error, reference.maxout_forward, b, z, k, dout) for b in backwards]
                       for z, k, dout, _ in ex05._grad_check_setups(seed, hidden)]}


def test_the_solutions_gradient_check_passes_inside_and_outside():
    assert message_of(ex05.check_gradient_check, maxout_grad_error, seed=3) is None
    data = _grad_check_data(maxout_grad_error, 7503, hidden=True)
    assert ex05.judge_gradient_check(data, seed=7503, hidden=True) is None
    assert outside(ex05.judge_gradient_check, data, seed=7503, hidden=True)
    assert not outside(ex05.judge_gradient_check, {**data, "errors": data["errors"][:1]}, seed=7503, hidden=True)


@pytest.mark.parametrize("grad_error, message", [
    (lambda f, b, z, k, d: 0.0, "maxout_grad_error returned 0.0e+00 for a WRONG maxout_backward that sends the "
                                "gradient to every piece on z of shape (4, 6), k=2"),
    (lambda f, b, z, k, d: np.ones(2), "maxout_grad_error returned array([1., 1.]) on z of shape (4, 6), k=2"),
    (lambda f, b, z, k, d: 1.0, "maxout_grad_error returned 1.0e+00 for a CORRECT maxout_backward"),
])
def test_a_wrong_gradient_check_fails_with_its_message_inside_and_outside(grad_error, message):
    assert message_of(ex05.check_gradient_check, grad_error, seed=3).startswith(message)
    assert not outside(ex05.judge_gradient_check, _grad_check_data(grad_error, 3), seed=3)


def test_the_gradient_check_judge_decides_from_reported_numbers_alone():
    setups = len(ex05._grad_check_setups(3, False))
    honest = [[Outcome(np.array(1e-9)), *[Outcome(np.array(0.5))] * 3] for _ in range(setups)]
    assert ex05.judge_gradient_check({"borrowed": None, "errors": honest}, seed=3) is None
    honest[1][2] = Outcome(None, error="ZeroDivisionError: division by zero")
    assert "returned ZeroDivisionError: division by zero for a WRONG maxout_backward that ignores dout" in (
        ex05.judge_gradient_check({"borrowed": None, "errors": honest}, seed=3))


# ---- the torch Maxout layer -------------------------------------------------------------------------


class Amax(Maxout):
    def forward(self, x):
        return self.linear(x).unflatten(-1, (self.out_features, self.k)).amax(dim=-1)


class Narrow(Maxout):
    def __init__(self, in_features, out_features, k=2):
        super().__init__(in_features, out_features, k)
        self.linear = nn.Linear(in_features, out_features)


class Borrowing(Maxout):
    def forward(self, x):
        from course_lib.nn import GroupMax

        self.group_max = GroupMax(self.k)
        return self.group_max(self.linear(x))


@pytest.mark.parametrize("cls, message", [
    (Amax, "Maxout: ties split the gradient between the tied pieces"),
    (Narrow, "Maxout(5, 3, 2): self.linear has 3 outputs: each of the 3 units needs k=2 pieces"),
    (Borrowing, "Maxout uses course_lib.nn.GroupMax: write the grouped max yourself"),
])
def test_a_wrong_layer_fails_with_its_message_inside_and_outside(cls, message):
    assert message_of(ex05.check_maxout_layer, cls, seed=4).startswith(message)
    data = [probe_module(cls, c, 4) for c in ex05._layer_cases(4, False)]
    assert not outside(ex05.judge_maxout_layer, data, seed=4)


def test_the_solutions_layer_passes_and_the_judge_needs_only_plain_outcomes():
    data = [probe_module(Maxout, c, 7504) for c in ex05._layer_cases(7504, True)]
    assert ex05.judge_maxout_layer(data, seed=7504, hidden=True) is None
    assert outside(ex05.judge_maxout_layer, data, seed=7504, hidden=True)
    assert not outside(ex05.judge_maxout_layer, data[:-1], seed=7504, hidden=True)
    made = [function_outcome(ex05._reference_layer, c) for c in ex05._layer_cases(4, False)]   # no student module
    assert ex05.judge_maxout_layer(made, seed=4) is None
    made[0] = replace(made[0], classes=("course_lib.nn.Maxout",))
    assert ex05.judge_maxout_layer(made, seed=4).startswith("Maxout uses course_lib.nn.Maxout")


# ---- the MLP ----------------------------------------------------------------------------------------


def _mlp(outcome=None, **change) -> dict:
    seen = {"maxouts": ["0", "1"], "wins": {"0": np.full((64, 2), 1600), "1": np.full((64, 2), 1600)},
            "calls": {"0": 1, "1": 1}, "others": []}
    return {"outcome": outcome or trained(), "seen": {**seen, **change}}


def test_a_trained_maxout_mlp_passes_inside_and_outside():
    assert ex05.judge_maxout_mlp(_mlp(), seed=5) is None and outside(ex05.judge_maxout_mlp, _mlp(), seed=5)


@pytest.mark.parametrize("data, message", [
    (_mlp(replace(trained(0.3), test_accuracy=0.99)),                  # the kernel's accuracy is never read
     "build_maxout_mlp: test accuracy 0.300, below the required 0.48: about what a linear model reaches"),
    (_mlp(replace(trained(), train_seconds=16.0)), "training took 16.0 s, over the 15 s budget"),
    (_mlp(TrainingOutcome(error="TypeError: boom")), "build_maxout_mlp: building or training the model failed"),
    (_mlp(maxouts=[]), "holds none of your Maxout layers"),
    (_mlp(others=["ReLU"]), "also holds ReLU: the only nonlinearity should be your Maxout"),
    (_mlp(calls={"0": 1, "1": 0}), "a Maxout layer of the model is never used in its forward pass"),
])
def test_a_wrong_or_forged_maxout_mlp_fails_with_its_message_and_outside(data, message):
    assert message in ex05.judge_maxout_mlp(data, seed=5)
    assert not outside(ex05.judge_maxout_mlp, data, seed=5)
    assert not outside(ex05.judge_maxout_mlp, {"outcome": trained()}, seed=5)        # "seen" missing


def test_the_inspection_counts_the_wins_of_every_piece():
    model = nn.Sequential(Maxout(2, 2, k=2), nn.Linear(2, 3))
    with torch.no_grad():   # unit 0: pieces x0 and -x0; unit 1: pieces 0 and x1 - 10 (never wins)
        model[0].linear.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]))
        model[0].linear.bias.copy_(torch.tensor([0.0, 0.0, 0.0, -10.0]))
    seen = ex05._inspect_maxouts(Maxout, torch.tensor([[1.0, 0.0], [2.0, 1.0], [-1.0, 3.0]]))(model)
    assert seen["maxouts"] == ["0"] and seen["calls"] == {"0": 1} and seen["others"] == []
    assert seen["wins"]["0"].tolist() == [[2, 1], [3, 0]]
