"""The torch-module probe builds the student's class, loads the grader's parameters and keeps plain data
(which survives the JSON round trip to a judge); its verdict names misconceptions and never reveals hidden
inputs."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.data import moons
from course_lib.grading import plain
from course_lib.grading.modules import (
    ModuleCase,
    ModuleMisconception,
    ModuleOutcome,
    compare_module,
    function_outcome,
    module_verdict,
    probe_module,
    record_forward,
    train_and_inspect,
)

torch.set_num_threads(1)


class PReLU(nn.Module):
    """A correct per-channel PReLU, written with torch operations."""

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
    assert outcome.output_dtype == "float32" and outcome.error is None
    cases = [case(), case((6, 2))]
    assert compare_module("PReLU", cases, [probe_module(PReLU, c) for c in cases], reference) is None


def _verdict(cls, cases, misconceptions=()):
    """compare_module on what the probe kept, after the JSON round trip a judge's data makes."""
    outcomes = [probe_module(cls, c) for c in cases]
    back = plain.decode(json.loads(json.dumps(plain.encode(outcomes))))
    assert all(type(o) is ModuleOutcome for o in back)
    return compare_module("PReLU", cases, back, reference, misconceptions)


def test_a_module_outcome_is_plain_data_that_survives_the_round_trip():
    outcome = probe_module(PReLU, case())
    back = plain.decode(json.loads(json.dumps(plain.encode(outcome))))
    assert back.param_shapes == {"weight": (3,)} and back.operations == outcome.operations
    assert back.classes == outcome.classes and np.array_equal(back.param_grads["weight"], outcome.param_grads["weight"])
    assert np.array_equal(back.output, outcome.output) and back.output_dtype == "float32"
    c = case()
    assert plain.decode(plain.encode(c)).args == (3,)


def test_a_float64_case_runs_the_module_in_float64():
    outcome = probe_module(PReLU, case(dtype=np.float64))
    assert outcome.output_dtype == "float64" and outcome.error is None


def test_the_probe_records_submodules_and_autograd_operations_even_those_made_in_forward():
    class Borrowing(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.weight = nn.Parameter(torch.full((channels,), 0.25))

        def forward(self, x):
            self.inner = nn.PReLU(x.shape[1])
            return F.prelu(x, self.weight)

    outcome = probe_module(Borrowing, case())
    assert "PreluKernelBackward0" in outcome.operations
    assert "torch.nn.modules.activation.PReLU" in outcome.classes


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


def test_record_forward_counts_a_shared_module_once_per_call():
    shared = nn.ReLU()
    model = nn.Sequential(nn.Linear(2, 3), shared, nn.Linear(3, 3), shared)
    seen = record_forward(model, torch.ones(5, 2), {"act": shared}, "input")
    assert len(seen["act"]) == 2 and seen["act"][0].shape == (5, 3)
    out = record_forward(model, torch.ones(5, 2), {"first": model[0]}, "output")["first"][0]
    assert out.dtype == np.float64 and np.allclose(out, model[0](torch.ones(5, 2)).detach().numpy(), atol=1e-6)
    assert not any(m._forward_hooks for m in model.modules())  # the hooks are gone


def test_train_and_inspect_hands_plain_data_from_the_trained_model():
    data = moons(n=200, seed=0)

    def build():
        return nn.Sequential(nn.Linear(2, 8), PReLU(8), nn.Linear(8, 2))

    outcome, slopes = train_and_inspect(build, data, 3, 1e-2, seed=0,
                                        inspect=lambda m: m[1].weight.detach().numpy().copy())
    assert outcome.error is None and slopes.shape == (8,) and not np.allclose(slopes, 0.25)
    failed, nothing = train_and_inspect(lambda: 1 / 0, data, 1, 1e-2, seed=0, inspect=lambda m: 1)
    assert "ZeroDivisionError" in failed.error and nothing is None
    broken, nothing = train_and_inspect(build, data, 1, 1e-2, seed=0, inspect=lambda m: m.missing)
    assert broken.error.startswith("inspecting the trained model failed: AttributeError") and nothing is None
