"""Tests for course_lib.diagnostics: dead units on hand-built nets, layer statistics, born-dead probability."""

import math

import pytest
import torch
from torch import nn

from course_lib.diagnostics import (
    RELU_FAMILY,
    DeadUnitMonitor,
    activation_stats,
    born_dead_probability,
    born_dead_probability_bounds,
    born_dead_probability_exact,
    dead_fraction,
    gradient_stats,
    update_to_data_ratios,
)
from course_lib.nn import GroupMax, Maxout, make_activation, mlp

torch.set_num_threads(1)

# x0 is positive on 6 of 10 examples; x1 is never positive (0 counts as inactive: active means > 0).
X = torch.tensor([[-2.0, -1.0], [1.0, 0.0], [2.0, -2.0], [-1.0, -0.5], [3.0, -1.0],
                  [0.5, 0.0], [-3.0, -3.0], [4.0, -0.1], [1.5, -2.0], [-0.5, -1.0]])


def _hand_built_net(activation: str) -> nn.Sequential:
    """Layer "1": unit 0 sees x0, unit 1 is dead (bias -100), unit 2 always on (bias +100), unit 3 sees x1.
    Layer "3": unit 0 dead, unit 1 always on, unit 2 sees layer-1 unit 0 (positive iff x0 > 0)."""
    net = nn.Sequential(nn.Linear(2, 4), make_activation(activation), nn.Linear(4, 3), make_activation(activation))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 1.0]]))
        net[0].bias.copy_(torch.tensor([0.0, -100.0, 100.0, 0.0]))
        net[2].weight.zero_()
        net[2].weight[2, 0] = 1.0
        net[2].bias.copy_(torch.tensor([-100.0, 100.0, 0.0]))
    return net


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "prelu"])
def test_dead_unit_monitor_counts_units_silent_on_every_input(activation):
    net = _hand_built_net(activation)
    with DeadUnitMonitor(net) as monitor:
        monitor.observe(X)
    rates = monitor.firing_rates()
    assert set(rates) == {"1", "3"}
    assert rates["1"].tolist() == [0.6, 0.0, 1.0, 0.0]
    assert rates["3"].tolist() == [0.0, 1.0, 0.6]
    assert monitor.dead_units()["1"].nonzero().flatten().tolist() == [1, 3]
    assert monitor.dead_units()["3"].nonzero().flatten().tolist() == [0]
    assert monitor.dead_fraction() == pytest.approx(3 / 7)
    assert monitor.dead_fraction_by_layer() == pytest.approx({"1": 0.5, "3": 1 / 3})


def test_observing_in_batches_or_from_an_iterable_gives_the_same_counts():
    net = _hand_built_net("relu")
    whole = DeadUnitMonitor(net).observe(X).firing_rates()
    batched = DeadUnitMonitor(net).observe(X, batch_size=3).firing_rates()
    loader = [(X[i:i + 4], torch.zeros(len(X[i:i + 4]))) for i in range(0, 10, 4)]
    from_loader = DeadUnitMonitor(net).observe(loader)
    assert from_loader.n_examples == {"1": 10, "3": 10}
    for name in whole:
        assert torch.equal(whole[name], batched[name])
        assert torch.equal(whole[name], from_loader.firing_rates()[name])


def test_forward_passes_inside_the_block_count_even_under_no_grad():
    net = _hand_built_net("relu")
    with DeadUnitMonitor(net) as monitor, torch.no_grad():
        net(X[:5])
        net(X[5:])
    assert monitor.firing_rates()["1"].tolist() == [0.6, 0.0, 1.0, 0.0]


def test_hooks_are_removed_on_exit():
    net = _hand_built_net("relu")
    with DeadUnitMonitor(net) as monitor:
        assert len(net[1]._forward_hooks) == 1
        monitor.observe(X)
    assert all(len(m._forward_hooks) == 0 for m in net.modules())
    net(X)
    assert monitor.n_examples == {"1": 10, "3": 10}
    monitor.observe(X)  # observe outside a `with` attaches for the call only
    assert monitor.n_examples == {"1": 20, "3": 20}
    assert all(len(m._forward_hooks) == 0 for m in net.modules())


def test_maxout_pieces_that_never_win_are_dead():
    layer = Maxout(2, 2, k=3)
    with torch.no_grad():
        # unit 0: pieces x0, -100, -x0 (piece 1 never wins); unit 1: pieces +100, x1, x0 (only piece 0 wins)
        layer.linear.weight.copy_(torch.tensor([[1.0, 0], [0, 0], [-1, 0], [0, 0], [0, 1], [1, 0]]))
        layer.linear.bias.copy_(torch.tensor([0.0, -100, 0, 100, 0, 0]))
    net = nn.Sequential(layer, nn.Linear(2, 1))
    with DeadUnitMonitor(net) as monitor:
        monitor.observe(X)
    assert list(monitor.layers) == ["0.group_max"]
    assert monitor.firing_rates()["0.group_max"].tolist() == [0.6, 0.0, 0.4, 1.0, 0.0, 0.0]
    assert monitor.dead_units()["0.group_max"].nonzero().flatten().tolist() == [1, 4, 5]
    assert monitor.dead_fraction() == pytest.approx(3 / 6)


def test_monitor_finds_the_maxout_layers_of_an_mlp():
    net = mlp([2, 4, 3, 1], activation="maxout", k=2)
    monitor = DeadUnitMonitor(net).observe(torch.randn(50, 2))
    assert {name: r.shape[0] for name, r in monitor.firing_rates().items()} == {"0.group_max": 8, "1.group_max": 6}


def test_conv_activations_count_a_channel_as_active_if_positive_anywhere():
    conv = nn.Conv1d(1, 3, kernel_size=1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0, 0.0]).reshape(3, 1, 1))
        conv.bias.copy_(torch.tensor([0.0, -100.0, 1.0]))
    x = torch.tensor([[-1.0, -2, -3], [1, -1, -1], [-1, -1, 2], [-5, -5, -5]]).unsqueeze(1)  # (N=4, C=1, L=3)
    with DeadUnitMonitor(nn.Sequential(conv, nn.ReLU())) as monitor:
        monitor.observe(x)
    assert monitor.firing_rates()["1"].tolist() == [0.5, 0.0, 1.0]
    assert monitor.dead_units()["1"].tolist() == [False, True, False]


def test_conv_group_max_over_channels_gives_each_piece_a_win_rate():
    conv = nn.Conv1d(1, 4, kernel_size=1)  # channel pairs (0, 1) and (2, 3) are the pieces of 2 maxout channels
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0, 0.0, 0.0]).reshape(4, 1, 1))
        conv.bias.copy_(torch.tensor([0.0, 0.0, -100.0, 5.0]))
    x = torch.tensor([[-1.0, -2, -3], [1, 2, 3], [-1, 1, 2], [3, -5, 1]]).unsqueeze(1)
    monitor = DeadUnitMonitor(nn.Sequential(conv, GroupMax(2, dim=1))).observe(x)
    assert monitor.firing_rates()["1"].tolist() == [0.75, 0.75, 0.0, 1.0]


def test_shared_activation_instance_is_refused():
    relu = nn.ReLU()
    with pytest.raises(ValueError, match="shared"):
        DeadUnitMonitor(nn.Sequential(nn.Linear(2, 3), relu, nn.Linear(3, 3), relu))


def test_monitor_needs_something_to_monitor_and_data():
    with pytest.raises(ValueError, match="no ReLU"):
        DeadUnitMonitor(nn.Sequential(nn.Linear(2, 3), nn.Tanh()))
    with pytest.raises(RuntimeError, match="observe"):
        DeadUnitMonitor(_hand_built_net("relu")).firing_rates()


def test_bias_minus_one_kills_more_units_than_bias_zero():
    torch.manual_seed(0)
    x = torch.randn(2000, 10)
    rates = {b: DeadUnitMonitor(mlp([10, 64, 64, 64, 1], bias=b)).observe(x).dead_fraction() for b in (0.0, -1.0)}
    assert rates[-1.0] > rates[0.0]


# --- per-layer statistics ---------------------------------------------------------------------------


def test_activation_stats_match_a_direct_computation():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 4), nn.Sigmoid())
    with torch.no_grad():
        net[2].weight.mul_(6)  # push tanh and sigmoid into their tails
        net[4].weight.mul_(12)
    x = torch.randn(200, 3)
    stats = activation_stats(net, x)
    with torch.no_grad():
        z1 = x @ net[0].weight.T + net[0].bias
        h1 = torch.clamp(z1, min=0)
        h2 = torch.tanh(h1 @ net[2].weight.T + net[2].bias)
        h3 = torch.sigmoid(h2 @ net[4].weight.T + net[4].bias)
    assert [(s.name, s.kind) for s in stats] == [("1", "ReLU"), ("3", "Tanh"), ("5", "Sigmoid")]
    assert stats[0].zero_fraction == pytest.approx((z1 <= 0).double().mean().item())
    assert stats[0].mean == pytest.approx(h1.mean().item(), rel=1e-5)
    assert stats[0].std == pytest.approx(h1.std().item(), rel=1e-5)
    assert stats[0].saturated is None
    tanh_tails = (h2.abs() > 0.97).double().mean().item()
    sigmoid_tails = ((h3 < 0.03) | (h3 > 0.97)).double().mean().item()
    assert 0 < tanh_tails < 1 and 0 < sigmoid_tails < 1
    assert stats[1].saturated == pytest.approx(tanh_tails)
    assert stats[2].saturated == pytest.approx(sigmoid_tails)


def _net_after_backward(bias):
    torch.manual_seed(1)
    net = mlp([5, 7, 3], bias=bias)
    x, y = torch.randn(32, 5), torch.randint(0, 3, (32,))
    nn.functional.cross_entropy(net(x), y).backward()
    return net


def test_gradient_stats_match_direct_computation():
    net = _net_after_backward(bias=0.0)
    stats = gradient_stats(net)
    assert [(s.name, s.shape) for s in stats] == [("0.weight", (7, 5)), ("2.weight", (3, 7))]
    for s, layer in zip(stats, (net[0], net[2]), strict=True):
        g, w = layer.weight.grad, layer.weight
        assert s.grad_std == pytest.approx(g.std().item(), rel=1e-6)
        assert s.grad_mean == pytest.approx(g.mean().item(), rel=1e-5, abs=1e-9)
        assert s.grad_norm == pytest.approx(math.sqrt((g.double() ** 2).sum().item()), rel=1e-5)
        assert s.grad_to_data == pytest.approx(g.std().item() / w.std().item(), rel=1e-5)


def test_gradient_stats_need_a_backward_pass():
    with pytest.raises(RuntimeError, match="backward"):
        gradient_stats(mlp([3, 4, 2]))


def test_update_to_data_ratios_match_direct_computation():
    net = _net_after_backward(bias=None)
    ratios = update_to_data_ratios(net, lr=0.1)
    assert set(ratios) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    for name, p in net.named_parameters():
        if p.numel() > 1:
            expected = math.log10(0.1 * p.grad.std().item() / p.std().item())
            assert ratios[name] == pytest.approx(expected, rel=1e-5)


def test_update_to_data_ratio_of_a_constant_bias_is_infinite():
    assert update_to_data_ratios(_net_after_backward(bias=0.0), lr=0.1)["0.bias"] == math.inf


# --- born dead ----------------------------------------------------------------------------------------

N_NETS = 20_000


def _within_4_sigma(estimate: float, p: float, n: int = N_NETS) -> bool:
    """A binomial proportion from n draws is within 4 standard errors of p (fails by chance ~1 in 16 000)."""
    return abs(estimate - p) <= 4 * math.sqrt(p * (1 - p) / n) + 1e-12


@pytest.mark.parametrize(("depth", "width"), [(1, 1), (2, 3), (4, 2), (6, 3), (10, 4), (9, 10)])
def test_monte_carlo_matches_exact_born_dead_probability_on_a_half_line(depth, width):
    estimate = born_dead_probability(depth, width, n_networks=N_NETS, n_inputs=8, domain=(0.0, 1.0), seed=depth)
    assert _within_4_sigma(estimate, born_dead_probability_exact(depth, width))


@pytest.mark.parametrize(("depth", "width"), [(1, 2), (3, 2), (5, 3), (9, 3), (9, 5)])
def test_monte_carlo_on_a_symmetric_interval_lies_within_the_bounds(depth, width):
    estimate = born_dead_probability(depth, width, n_networks=N_NETS, n_inputs=8, domain=(-1.0, 1.0), seed=width)
    lower, upper = born_dead_probability_bounds(depth, width)
    tolerance = 4 * math.sqrt(0.25 / N_NETS)
    assert lower - tolerance <= estimate <= upper + tolerance


@pytest.mark.parametrize("width", [1, 2, 3])
def test_monte_carlo_matches_the_exact_depth_two_value_on_a_symmetric_interval(width):
    exact = 4.0 ** -width * (3 - 2.0 ** (1 - width))
    estimate = born_dead_probability(2, width, n_networks=N_NETS, n_inputs=4, domain=(-1.0, 1.0), seed=7)
    assert _within_4_sigma(estimate, exact)


def test_monte_carlo_in_higher_dimension_is_at_most_the_single_point_probability():
    estimate = born_dead_probability(6, 3, n_networks=N_NETS, n_inputs=16, input_dim=3, domain=(-1.0, 1.0))
    exact = born_dead_probability_exact(6, 3)
    assert estimate <= exact + 4 * math.sqrt(exact * (1 - exact) / N_NETS)


@pytest.mark.parametrize("max_elements", [1000, 5000])
def test_monte_carlo_in_many_small_chunks_still_matches_the_exact_value(max_elements):
    """Chunks of 41 and 208 networks: every chunk counts (counting one would be ~500x or ~100x too small)."""
    estimate = born_dead_probability(5, 3, n_networks=N_NETS, n_inputs=8, domain=(0.0, 1.0), seed=11,
                                     max_elements=max_elements)
    assert _within_4_sigma(estimate, born_dead_probability_exact(5, 3))


def test_random_biases_change_the_born_dead_probability():
    """Biases of std 1 revive nets that zero biases kill on [0, 1] (measured: 0.34 vs the exact 0.49 at depth 5,
    width 3, over 3 seeds): far more than 8 standard errors apart."""
    exact = born_dead_probability_exact(5, 3)
    biased = born_dead_probability(5, 3, n_networks=N_NETS, n_inputs=8, domain=(0.0, 1.0), seed=12, bias_std=1.0)
    assert exact - biased > 8 * math.sqrt(exact * (1 - exact) / N_NETS)


def test_monte_carlo_is_reproducible_and_runs_with_biases():
    a = born_dead_probability(5, 3, n_networks=2000, bias_std=0.5, seed=3)
    assert a == born_dead_probability(5, 3, n_networks=2000, bias_std=0.5, seed=3)
    assert 0.0 <= a <= 1.0
    chunked = born_dead_probability(5, 3, n_networks=2000, seed=3, max_elements=1000)
    assert 0.0 <= chunked <= 1.0


def test_exact_born_dead_probability_values_and_limits():
    assert born_dead_probability_exact(1, 3) == pytest.approx(1 / 8)
    assert born_dead_probability_exact(2, 1) == pytest.approx(3 / 4)
    depths = [born_dead_probability_exact(d, 4) for d in range(1, 40)]
    assert all(a < b for a, b in zip(depths, depths[1:], strict=False))
    widths = [born_dead_probability_exact(10, w) for w in range(1, 30)]
    assert all(a > b for a, b in zip(widths, widths[1:], strict=False))
    assert born_dead_probability_exact(5000, 8) > 1 - 1e-8  # depth -> infinity: born dead for sure
    assert born_dead_probability_exact(10, 60) < 1e-16  # width -> infinity: never
    assert born_dead_probability_exact(10, 60) > 0


def test_bounds_are_ordered_exact_at_the_edges_and_tend_to_one():
    for depth in range(1, 15):
        for width in range(1, 8):
            lower, upper = born_dead_probability_bounds(depth, width)
            assert 0 <= lower <= upper == pytest.approx(born_dead_probability_exact(depth, width))
    assert born_dead_probability_bounds(1, 5)[0] == pytest.approx(0.0)  # layer 1 cannot kill both rays
    assert born_dead_probability_bounds(6, 1)[0] == pytest.approx(1 - 2 ** -5)  # width 1: one ray, then halving
    assert born_dead_probability_bounds(400, 4)[0] > 0.99999


def test_born_dead_functions_refuse_empty_architectures():
    for fn in (born_dead_probability_exact, born_dead_probability_bounds, born_dead_probability):
        with pytest.raises(ValueError, match="depth=0"):
            fn(0, 3)


def test_dead_fraction_counts_only_the_kinds_asked_for_and_none_without_them():
    """One ReLU layer with 2 of its 4 units dead by construction, then a maxout layer with none dead."""
    relu_layer = nn.Linear(1, 4)
    with torch.no_grad():
        relu_layer.weight.copy_(torch.tensor([[1.0], [1.0], [0.0], [0.0]]))
        relu_layer.bias.copy_(torch.tensor([0.0, 0.0, -1.0, -1.0]))  # units 2 and 3 are never > 0
    model = nn.Sequential(relu_layer, nn.ReLU(), nn.Linear(4, 4), GroupMax(2))
    x = torch.linspace(0.1, 1.0, 10).reshape(-1, 1)
    with DeadUnitMonitor(model) as monitor:
        everything = monitor.observe(x).dead_fraction()
    assert dead_fraction(model, x) == everything
    assert dead_fraction(model, x, RELU_FAMILY) == 0.5
    assert dead_fraction(nn.Sequential(nn.Linear(1, 3), nn.Tanh()), x) is None
