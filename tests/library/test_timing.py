"""Tests for course_lib.timing: the mechanics of best-of-N timing and of the activation-cost measurements.

No test asserts a speed: timings depend on the machine. A scripted clock checks the arithmetic, call counters
check what is called and in which order, and torch autograd and numpy closed forms check the gradients a timed
step computes.
"""

import numpy as np
import pytest
import torch
from torch import nn

from course_lib.activations import prelu_grad
from course_lib.timing import (
    activation_costs,
    best_of,
    best_of_each,
    format_costs,
    forward_backward,
    forward_only,
    linear_vs_activation,
)

torch.set_num_threads(1)


def _scripted_clock(times):
    """A clock that returns the given times, one per call."""
    it = iter(times)
    return lambda: next(it)


def test_best_of_returns_the_fastest_round_as_seconds_per_call():
    # three rounds of 2 calls taking 4, 3 and 6 seconds: per call 2, 1.5 and 3
    clock = _scripted_clock([0, 4, 10, 13, 20, 26])
    assert best_of(lambda: None, repeats=3, number=2, warmup=0, clock=clock) == 1.5


def test_best_of_calls_fn_warmup_plus_repeats_times_number_times():
    calls = []
    best_of(lambda: calls.append(1), repeats=4, number=3, warmup=2)
    assert len(calls) == 2 + 4 * 3


def test_best_of_each_interleaves_the_callables_round_by_round():
    order = []
    fns = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    best_of_each(fns, repeats=2, number=2, warmup=1)
    assert order == ["a", "b"] + ["a", "a", "b", "b"] * 2


def test_best_of_each_keeps_each_callables_own_minimum():
    # rounds: a takes 5 then 1, b takes 2 then 7 (one call each)
    clock = _scripted_clock([0, 5, 5, 7, 7, 8, 8, 15])
    assert best_of_each({"a": lambda: None, "b": lambda: None}, repeats=2, warmup=0, clock=clock) == {"a": 1, "b": 2}


@pytest.mark.parametrize("counts", [dict(repeats=0), dict(number=0), dict(warmup=-1)])
def test_best_of_refuses_counts_that_time_nothing(counts):
    with pytest.raises(ValueError, match="repeats >= 1"):
        best_of(lambda: None, **counts)


def test_forward_backward_step_gives_the_prelu_gradients_of_x_and_of_the_slope():
    x = torch.tensor([[-2.0, -0.5, 0.0, 1.5], [3.0, -1.0, 2.0, -4.0]])
    dout = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 1.0, 2.0]])
    prelu = nn.PReLU(init=0.25)
    dx, da = forward_backward(prelu, x, dout)()
    dx_ref, da_ref = prelu_grad(x.numpy().astype(np.float64), np.array([0.25]), dout.numpy().astype(np.float64))
    np.testing.assert_allclose(dx.numpy(), dx_ref, rtol=1e-6)
    np.testing.assert_allclose(da.numpy(), da_ref, rtol=1e-6)


def test_forward_backward_default_dout_is_fixed_and_leaves_no_grad_behind():
    x = torch.linspace(-2, 2, 9)
    step = forward_backward(torch.tanh, x)
    first, second = step()[0], step()[0]
    assert torch.equal(first, second)  # the same dout every call
    dout = first / (1 - torch.tanh(x) ** 2)  # recover dout from dx = dout * tanh'(x)
    assert dout.std() > 0.1  # a random tensor, not ones or zeros
    prelu = nn.PReLU()
    forward_backward(prelu, x)()
    assert prelu.weight.grad is None and x.grad is None


def test_forward_backward_leaves_the_global_random_state_alone():
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    forward_backward(torch.sigmoid, torch.ones(5))
    assert torch.equal(torch.rand(3), expected)


def test_forward_only_computes_f_without_an_autograd_graph():
    x = torch.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    out = forward_only(nn.ELU(), x)()
    assert not out.requires_grad
    torch.testing.assert_close(out, torch.tensor([float(np.expm1(-1.0)), 0.0, 2.0]))


class _CountingScale(nn.Module):
    """x * w, counting how often the gradient w.r.t. w is computed (once per backward pass)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(2.0))
        self.backward_passes = 0
        self.w.register_hook(self._count)

    def _count(self, grad):
        self.backward_passes += 1
        return grad

    def forward(self, x):
        return x * self.w


def test_activation_costs_runs_one_backward_per_timed_forward_backward_call():
    counting = _CountingScale()
    activation_costs({"relu": nn.ReLU(), "scale": counting}, n_elements=64, repeats=3, number=2)
    assert counting.backward_passes == 1 + 3 * 2  # one warm-up, then repeats * number; forward-only runs none


def test_activation_costs_reports_every_activation_in_order_relative_to_the_baseline():
    acts = {"tanh": nn.Tanh(), "relu": nn.ReLU(), "gelu": nn.GELU()}
    rows = activation_costs(acts, n_elements=256, baseline="relu", repeats=2, number=1)
    assert [r["name"] for r in rows] == ["tanh", "relu", "gelu"]
    by_name = {r["name"]: r for r in rows}
    assert by_name["relu"]["relative"] == 1.0
    for r in rows:
        assert r["forward_ns_per_element"] > 0 and r["total_ns_per_element"] > 0
        assert r["relative"] == pytest.approx(r["total_ns_per_element"] / by_name["relu"]["total_ns_per_element"])


def test_activation_costs_accepts_plain_torch_functions():
    rows = activation_costs({"relu": torch.relu, "sigmoid": torch.sigmoid}, n_elements=32, repeats=1, number=1)
    assert len(rows) == 2


def test_activation_costs_refuses_a_missing_baseline():
    with pytest.raises(ValueError, match="baseline 'relu'"):
        activation_costs({"tanh": nn.Tanh()}, n_elements=8)


def test_linear_vs_activation_share_is_the_activation_part_of_the_layer_time():
    r = linear_vs_activation(16, nn.ReLU(), batch=8, repeats=2, number=1)
    assert (r["width"], r["batch"]) == (16, 8)
    assert r["linear_s"] > 0 and r["activation_s"] > 0
    assert r["activation_share"] == pytest.approx(r["activation_s"] / (r["linear_s"] + r["activation_s"]))


def test_format_costs_has_a_header_and_one_line_per_activation():
    rows = [{"name": "relu", "forward_ns_per_element": 0.2, "total_ns_per_element": 0.8, "relative": 1.0},
            {"name": "gelu", "forward_ns_per_element": 0.4, "total_ns_per_element": 1.6, "relative": 2.0}]
    lines = format_costs(rows).splitlines()
    assert len(lines) == 3 and "activation" in lines[0]
    assert lines[1].split() == ["relu", "0.20", "0.80", "1.00x"]
    assert lines[2].split() == ["gelu", "0.40", "1.60", "2.00x"]
