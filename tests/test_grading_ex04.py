"""ex04's judges decide from plain data alone: the solution's data passes, in the kernel and outside (after the
JSON round trip of the probe log), and wrong, forged or garbled data fails with the message students see."""

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.grading.exercises import ex04
from course_lib.grading.modules import ModuleOutcome, function_outcome, probe_module
from course_lib.grading.training import TrainingOutcome
from tests.grading_fixtures import message_of, outside
from tests.grading_fixtures import trained_on_mnist1d as trained
from tests.test_grading_modules import KinkIsOne, PReLU  # the solution's PReLU, and one with 1 at the kink

torch.set_num_threads(1)


class Builtin(PReLU):
    def forward(self, x):
        return F.prelu(x, self.weight)


class Shared(PReLU):
    def __init__(self, num_channels, init=0.25):
        super().__init__(1, init)


class NoInit(PReLU):
    def __init__(self, num_channels, init=0.25):
        super().__init__(num_channels, 0.25)


# ---- construction and the module --------------------------------------------------------------------


def test_the_solutions_slopes_pass_inside_and_outside():
    data = [ex04._slopes_probe(PReLU, 1, args) for args in ex04._init_args(1)]
    assert ex04.judge_prelu_init(data, seed=1) is None and outside(ex04.judge_prelu_init, data, seed=1)
    assert message_of(ex04.check_prelu_init, PReLU, seed=1) is None


@pytest.mark.parametrize("cls, message", [
    (Shared, "the slopes have shape (1,): one slope shared across channels"),
    (NoInit, "every slope must start at init = "),
])
def test_wrong_slopes_fail_with_their_message_and_outside(cls, message):
    assert message in message_of(ex04.check_prelu_init, cls, seed=1)
    data = [ex04._slopes_probe(cls, 1, args) for args in ex04._init_args(1)]
    assert not outside(ex04.judge_prelu_init, data, seed=1)


def test_the_init_judge_reads_only_plain_data():
    """Hand-written outcomes, no module anywhere: slopes registered as asked pass, a missing one fails."""
    made = [ModuleOutcome(param_shapes={"weight": (args[0],)},
                          initial_params={"weight": np.full(args[0], args[1] if len(args) > 1 else 0.25)})
            for args in ex04._init_args(4)]
    assert ex04.judge_prelu_init(made, seed=4) is None
    assert "registered no nn.Parameter" in ex04.judge_prelu_init([ModuleOutcome(), made[1]], seed=4)
    assert not outside(ex04.judge_prelu_init, made[:1], seed=4)        # one probe short
    assert not outside(ex04.judge_prelu_init, made, seed=5)            # other constructor calls than probed


def test_the_solutions_prelu_passes_inside_and_outside():
    data = {"slopes": ex04._slopes_probe(PReLU, 2, ex04.SLOPES_ARGS),
            "probes": [probe_module(PReLU, c, 2) for c in ex04._prelu_cases(2, True)]}
    assert ex04.judge_prelu(data, seed=2, hidden=True) is None
    assert outside(ex04.judge_prelu, data, seed=2, hidden=True)
    assert not outside(ex04.judge_prelu, {**data, "probes": data["probes"][:-1]}, seed=2, hidden=True)
    assert not outside(ex04.judge_prelu, {"probes": data["probes"]}, seed=2, hidden=True)   # a key missing
    assert not outside(ex04.judge_prelu, data, seed=3, hidden=True)                           # others' cases


@pytest.mark.parametrize("cls, message", [
    (KinkIsOne, "PReLU: the gradient at x == 0 was 1 instead of the slope"),
    (Builtin, "PReLU: the output came from torch's own prelu"),
    (Shared, "PReLU(5): the slopes have shape (1,): one slope shared across channels"),
])
def test_a_wrong_prelu_fails_inside_and_outside(cls, message):
    assert message_of(ex04.check_prelu, cls, seed=2).startswith(message)
    data = {"slopes": ex04._slopes_probe(cls, 2, ex04.SLOPES_ARGS),
            "probes": [probe_module(cls, c, 2) for c in ex04._prelu_cases(2, False)]}
    assert not outside(ex04.judge_prelu, data, seed=2, hidden=False)


def test_the_prelu_judge_decides_from_data_alone():
    """The reference's own outcomes (no student module) pass; the same outcomes claiming torch's prelu kernel
    do not."""
    cases = ex04._prelu_cases(7, False)
    probes = [function_outcome(ex04._reference, c) for c in cases]
    slopes = ModuleOutcome(param_shapes={"weight": (5,)}, initial_params={"weight": np.full(5, 0.25)})
    clean = [replace(p, operations=("WhereBackward0",)) for p in probes]
    assert ex04.judge_prelu({"slopes": slopes, "probes": clean}, seed=7) is None
    assert "torch's own prelu" in ex04.judge_prelu({"slopes": slopes, "probes": probes}, seed=7)


# ---- the MLP ----------------------------------------------------------------------------------------


def _seen(**change) -> dict:
    rng = np.random.default_rng(0)
    seen = {"slopes": {"1": rng.uniform(-0.5, 0.6, 100), "3": rng.uniform(-0.3, 0.6, 100)},
            "calls": {"1": 1, "3": 1}, "positive": {"1": np.full(100, 3000), "3": np.full(100, 2000)}, "others": []}
    return {**seen, **change}


def _mlp(prelu=None, seen=None, relu=None) -> dict:
    return {"prelu": prelu or trained(), "seen": seen or _seen(), "relu": relu or trained(0.54)}


def test_a_trained_prelu_mlp_that_learned_its_slopes_passes_inside_and_outside():
    assert ex04.judge_prelu_mlp(_mlp(), seed=1) is None and outside(ex04.judge_prelu_mlp, _mlp(), seed=1)


@pytest.mark.parametrize("data, message", [
    (_mlp(prelu=replace(trained(0.2), test_accuracy=0.99)),            # the kernel's accuracy is never read
     "build_mlp(PReLU): test accuracy 0.200, below the required 0.45: about what a linear model reaches"),
    (_mlp(prelu=replace(trained(), train_seconds=20.0)), "training took 20.0 s, over the 15 s budget"),
    (_mlp(prelu=replace(trained(), predictions=trained().predictions[:10])), "one class per held-out example"),
    (_mlp(prelu=TrainingOutcome(error="TypeError: boom")), "building or training the model failed: TypeError"),
    (_mlp(seen=_seen(slopes={})), "holds none of your PReLU layers"),
    (_mlp(seen=_seen(others=["ReLU"])), "also holds torch's ReLU"),
    (_mlp(seen=_seen(calls={"1": 2})), "one PReLU instance is used by several layers"),
    (_mlp(seen=_seen(calls={"1": 1, "3": 0})), "never used in its forward pass"),
    (_mlp(seen=_seen(slopes={"1": np.full(100, 0.25)})), "the slopes never moved from 0.25"),
    (_mlp(seen=_seen(slopes={"1": np.full(1, 0.3)})), "has 1 slope(s) for 100 channels"),
    (_mlp(seen=_seen(slopes={"1": np.full(100, 0.3)})), "learned the same value 0.300"),
    (_mlp(relu=TrainingOutcome(error="TypeError: relu_layer")), "failed with a ReLU activation: TypeError"),
])
def test_a_wrong_or_forged_prelu_mlp_fails_with_its_message_and_outside(data, message):
    assert message in ex04.judge_prelu_mlp(data, seed=1)
    assert not outside(ex04.judge_prelu_mlp, data, seed=1)


def test_the_inspection_counts_per_channel_on_how_many_examples_each_unit_was_positive():
    model = nn.Sequential(nn.Linear(2, 3), PReLU(3), nn.Linear(3, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]))
        model[0].bias.zero_()
    x = torch.tensor([[1.0, -1.0], [2.0, 1.0], [-1.0, -2.0]])
    seen = ex04._inspect_prelus(PReLU, x)(model)
    assert seen["positive"]["1"].tolist() == [2, 0, 1] and seen["calls"] == {"1": 1} and seen["others"] == []
    assert np.array_equal(seen["slopes"]["1"], np.full(3, 0.25))


def test_a_prelu_never_called_in_forward_is_reported_not_an_inspection_error():
    class Idle(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear, self.act = nn.Linear(40, 10), PReLU(10)

        def forward(self, x):
            return self.linear(x)

    seen = ex04._inspect_prelus(PReLU, torch.zeros(4, 40))(Idle())
    assert seen["calls"] == {"act": 0} and seen["positive"]["act"].size == 0
    assert ex04.judge_prelu_mlp(_mlp(seen=seen), seed=1) == ("a PReLU layer of the model is never used in its "
                                                             "forward pass")
