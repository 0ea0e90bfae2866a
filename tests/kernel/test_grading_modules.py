"""The torch-module probe (kernel side) builds the student's class, loads the grader's parameters and keeps
plain data; the host's judge compares it with a reference run on the host, names misconceptions, never
reveals hidden inputs, and reads forged or malformed outcomes as a failure, never a crash."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import nn as course_nn
from course_lib.grading import judges
from course_lib.grading.judges.modules import (
    MALFORMED,
    ModuleMisconception,
    compare_module,
    function_outcome,
    module_verdict,
    outcomes_of,
    readable,
)
from course_lib.grading.kernel.modules import (
    ModuleCase,
    ModuleOutcome,
    loaded_output,
    probe_module,
    record_forward,
)
from course_lib.grading.kernel.sequential import LayerSpec, describe, run_with_weights, seeded_parameters

torch.set_num_threads(1)


class PReLU(nn.Module):
    """A correct per-channel PReLU on axis 1, written with torch operations."""

    def __init__(self, channels, init=0.25):
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), float(init)))

    def forward(self, x):
        return torch.where(x > 0, x, self.weight.view(-1, *[1] * (x.dim() - 2)) * x)


class KinkIsOne(PReLU):
    def forward(self, x):
        return torch.where(x >= 0, x, self.weight.view(-1, *[1] * (x.dim() - 2)) * x)


def reference(x, p, channels):
    return F.prelu(x, p["weight"])


def case(shape=(4, 3, 5), dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape)
    x.reshape(-1)[::4] = 0.0  # the kink
    slopes = rng.uniform(0.1, 0.9, size=shape[1])
    return ModuleCase((shape[1],), x.astype(dtype), {"weight": slopes.astype(dtype)},
                      rng.normal(size=shape).astype(dtype))


def _verdict(cls, cases, misconceptions=()):
    """compare_module on what the probe kept, after the encoding both ways a check's data makes."""
    return compare_module("PReLU", cases, judges.roundtrip([probe_module(cls, c) for c in cases]), reference,
                          misconceptions)


def test_a_correct_module_matches_the_reference_with_the_graders_parameters():
    c = case()
    outcome = probe_module(PReLU, c)
    expected = function_outcome(reference, c)
    slopes = c.params["weight"].reshape(1, -1, 1)
    assert np.allclose(outcome.output, np.where(c.x > 0, c.x, slopes * c.x), atol=1e-6)  # not the 0.25 of init
    for got, want in ((outcome.output, expected.output), (outcome.input_grad, expected.input_grad),
                      (outcome.param_grads["weight"], expected.param_grads["weight"])):
        assert type(got) is np.ndarray and got.dtype == np.float64 and np.allclose(got, want, atol=1e-5)
    assert outcome.param_shapes == {"weight": (3,)} and np.all(outcome.initial_params["weight"] == 0.25)
    assert outcome.output_dtype == "float32" and outcome.error is None and readable(outcome)
    assert _verdict(PReLU, [case(), case((6, 2))]) is None


def test_a_module_case_and_outcome_are_plain_data_that_survive_the_round_trip():
    outcome = probe_module(PReLU, case())
    back = judges.roundtrip(outcome)
    assert type(back) is ModuleOutcome and back.param_shapes == {"weight": (3,)} and readable(back)
    assert np.array_equal(back.param_grads["weight"], outcome.param_grads["weight"])
    assert np.array_equal(back.output, outcome.output) and back.output_dtype == "float32"
    c = judges.roundtrip(ModuleCase((3,), case().x, {}, case().dout, {"dim": -1}))
    assert c.args == (3,) and c.kwargs == {"dim": -1}


def test_keyword_arguments_reach_the_constructor():
    class Axis(PReLU):
        def __init__(self, channels, init=0.25, dim=1):
            super().__init__(channels, init)
            self.dim = dim

    c = case()
    outcome = probe_module(Axis, ModuleCase(c.args, c.x, c.params, c.dout, {"dim": 1}))
    assert outcome.error is None
    assert probe_module(PReLU, ModuleCase(c.args, c.x, c.params, c.dout, {"dim": 1})).error.startswith(
        "constructing it failed: TypeError")


def test_a_float64_case_runs_the_module_in_float64():
    outcome = probe_module(PReLU, case(dtype=np.float64))
    assert outcome.output_dtype == "float64" and outcome.error is None


@pytest.mark.parametrize("cls, message", [
    (lambda channels: 1 / 0, "constructing it failed: ZeroDivisionError"),
    (lambda channels: "prelu", "it built a str, not a torch nn.Module"),
    (lambda channels: nn.Identity(), "it has no nn.Parameter named 'weight' (its parameters: none)"),
    (lambda channels: PReLU(1), "its parameter 'weight' has shape (1,), expected (3,)"),
])
def test_construction_problems_become_error_outcomes(cls, message):
    assert probe_module(cls, case()).error.startswith(message)


def test_a_detached_output_is_explained():
    class Detached(PReLU):
        def forward(self, x):
            return super().forward(x).detach()

    assert "no gradient reached the input" in _verdict(Detached, [case()])


def test_a_wrong_gradient_at_the_kink_is_named_by_its_misconception():
    kink = ModuleMisconception(lambda x, p, c: torch.where(x >= 0, x, p["weight"].view(1, -1, 1) * x),
                               "the gradient at x == 0 was 1")
    assert _verdict(KinkIsOne, [case(), case(seed=1)], [kink]) == "PReLU: the gradient at x == 0 was 1"


def test_an_unnamed_failure_names_the_case_and_a_hidden_one_reveals_no_values():
    c = case()
    outcomes, expected = [probe_module(KinkIsOne, c)], [function_outcome(reference, c)]
    visible = module_verdict("PReLU", [c], outcomes, expected)
    hidden = module_verdict("PReLU", [c], outcomes, expected, hidden=True)
    assert visible.startswith("PReLU: wrong gradient with respect to the input at ")
    assert "PReLU(3) on an input of shape (4, 3, 5), dtype float32" in visible
    assert "a hidden test case, PReLU(3) on an input of shape (4, 3, 5)" in hidden
    assert f"{c.x.reshape(-1)[1]:.3f}" not in hidden


def test_a_misconception_that_errs_where_the_student_errs_still_matches():
    last_axis = ModuleMisconception(lambda x, p, c: torch.where(x > 0, x, p["weight"] * x), "last axis")

    class LastAxis(PReLU):
        def forward(self, x):
            return torch.where(x > 0, x, self.weight * x)

    cases = [case((4, 3, 5)), case((4, 3, 3))]  # the first errs (3 slopes vs 5 on the last axis), the second not
    assert _verdict(LastAxis, cases, [last_axis]) == "PReLU: last axis"


def test_outcomes_computed_for_other_inputs_fail():
    """The reference's own outcomes, but for the inputs of another seed: what a forger without the grader's
    inputs could hand back."""
    cases, others = [case(seed=1), case(seed=2)], [case(seed=3), case(seed=4)]
    forged = [function_outcome(reference, c) for c in others]
    assert compare_module("PReLU", cases, judges.roundtrip(forged), reference) is not None
    assert compare_module("PReLU", cases, [function_outcome(reference, c) for c in cases], reference) is None


@pytest.mark.parametrize("forged", [
    None, "pass", 10**400, [], [10**400, 10**400], {"output": 10**400},
    [ModuleOutcome(output=10**400), ModuleOutcome()],                          # an int where an array goes
    [ModuleOutcome(output=np.zeros((4, 3, 5), np.float32)), ModuleOutcome()],  # float32: no probe writes it
    [ModuleOutcome(param_shapes={"weight": ("3",)}), ModuleOutcome()],
    [ModuleOutcome(param_grads={"weight": "all right"}), ModuleOutcome()],
    [ModuleOutcome(error=10**400), ModuleOutcome()],
])
def test_malformed_or_forged_outcomes_fail_without_raising(forged):
    cases = [case(seed=1), case(seed=2)]
    message = compare_module("PReLU", cases, forged, reference)
    assert isinstance(message, str) and message.startswith("PReLU: ")
    assert all(o.error == MALFORMED or o.error is None for o in outcomes_of(forged, 2))
    assert not readable(forged)


def test_record_forward_counts_a_shared_module_once_per_call():
    shared = nn.ReLU()
    model = nn.Sequential(nn.Linear(2, 3), shared, nn.Linear(3, 3), shared)
    seen = record_forward(model, torch.ones(5, 2), {"act": shared}, "input")
    assert len(seen["act"]) == 2 and seen["act"][0].shape == (5, 3)
    out = record_forward(model, torch.ones(5, 2), {"first": model[0]}, "output")["first"][0]
    assert out.dtype == np.float64 and np.allclose(out, model[0](torch.ones(5, 2)).detach().numpy(), atol=1e-6)
    assert not any(m._forward_hooks for m in model.modules())  # the hooks are gone


def _net(activation=nn.ReLU):
    return nn.Sequential(nn.Linear(3, 4), activation(), nn.Linear(4, 2))


def test_loaded_output_runs_the_network_with_exactly_the_graders_weights():
    rng = np.random.default_rng(0)
    params = {"0.weight": rng.normal(size=(4, 3)), "0.bias": rng.normal(size=4), "2.weight": rng.normal(size=(2, 4)),
              "2.bias": rng.normal(size=2)}
    params = {k: v.astype(np.float32) for k, v in params.items()}
    x = rng.normal(size=(5, 3)).astype(np.float32)
    outcome = loaded_output(_net, params, x)
    h = np.maximum(x @ params["0.weight"].T + params["0.bias"], 0)
    assert np.allclose(outcome.output, h @ params["2.weight"].T + params["2.bias"], atol=1e-5)
    assert "parameters the network should not have: 1.weight" in loaded_output(
        lambda: _net(lambda: nn.PReLU()), params, x).error
    assert "no nn.Parameter named '2.weight'" in loaded_output(
        lambda: nn.Sequential(nn.Linear(3, 4), nn.ReLU()), params, x).error
    assert loaded_output(lambda: "net", params, x).error == "it built a str, not a torch nn.Module"


class Maxout(nn.Module):
    def __init__(self, in_features, out_features, k=2):
        super().__init__()
        self.in_features, self.out_features, self.k = in_features, out_features, k
        self.linear = nn.Linear(in_features, out_features * k)

    def forward(self, x):
        return self.linear(x).unflatten(-1, (self.out_features, self.k)).max(dim=-1).values


def test_a_sequential_is_described_and_run_with_seeded_weights_like_the_hosts_reference():
    x = np.random.default_rng(1).normal(size=(6, 5)).astype(np.float32)
    layers, outcome = run_with_weights(lambda: nn.Sequential(Maxout(5, 4, 3), nn.Linear(4, 2)), Maxout, 7, x)
    assert layers == [LayerSpec("Maxout", "Maxout", (5, 4, 3)), LayerSpec("Linear", "Linear", (4, 2))]
    reference_net = nn.Sequential(course_nn.Maxout(5, 4, 3), nn.Linear(4, 2))
    with torch.no_grad():
        for param, value in zip(reference_net.parameters(), seeded_parameters(7, layers), strict=True):
            param.copy_(torch.as_tensor(value))
        assert np.allclose(outcome.output, reference_net(torch.as_tensor(x)).numpy(), atol=1e-5)
    assert describe(nn.Sequential(nn.ReLU()), Maxout) == [LayerSpec("Other", "ReLU")]
    assert describe(nn.Linear(2, 2), Maxout) is None
    layers, narrow = run_with_weights(lambda: nn.Sequential(_Narrow(5, 4, 3)), Maxout, 7, x)
    assert "a layer has a parameter of shape (4, 5) where (12, 5) was expected" in narrow.error


class _Narrow(Maxout):
    def __init__(self, in_features, out_features, k=2):
        super().__init__(in_features, out_features, k)
        self.linear = nn.Linear(in_features, out_features)


@pytest.mark.parametrize("spec", [
    LayerSpec("Maxout", "Maxout", (10**400, 2, 2)), LayerSpec("Linear", "Linear", (10**6, 10**6)),
    LayerSpec("Maxout", "Maxout", (4, 2)), LayerSpec("Other", "ReLU", (3,)), LayerSpec("Linear", "L", (2, "3")),
    LayerSpec("Maxout", "Maxout", (4, 4, 10**5)), LayerSpec(10**400, "x"),
])
def test_a_forged_layer_description_is_refused_before_the_host_builds_anything(spec):
    assert not judges.roundtrip(spec).readable()


def test_seeded_parameters_refuse_a_network_too_large_to_build():
    with pytest.raises(ValueError, match="too large"):
        seeded_parameters(0, [LayerSpec("Linear", "Linear", (4096, 4096))] * 2)
