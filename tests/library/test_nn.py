"""Tests for course_lib.nn: Maxout against independent references, the activation factory, mlp, init."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from course_lib.nn import ACTIVATIONS, GroupMax, Maxout, default_init, init_weights, make_activation, mlp

torch.set_num_threads(1)


def _maxout_reference_numpy(x: np.ndarray, w: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Independent numpy Maxout: affine map, then max over contiguous groups of k."""
    z = x @ w.T + b
    return z.reshape(z.shape[0], -1, k).max(-1)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_maxout_forward_matches_numpy_reference_and_manual_torch(k):
    torch.manual_seed(k)
    layer = Maxout(7, 4, k)
    x = torch.randn(10, 7, dtype=torch.float64)
    layer.double()
    out = layer(x)
    w, b = layer.linear.weight.detach(), layer.linear.bias.detach()
    z = x @ w.T + b
    manual = torch.stack([z[:, j * k:(j + 1) * k].max(dim=1).values for j in range(4)], dim=1)
    assert out.shape == (10, 4)
    torch.testing.assert_close(out, manual)
    reference = _maxout_reference_numpy(x.numpy(), w.numpy(), b.numpy(), k)
    np.testing.assert_allclose(out.detach().numpy(), reference)


def test_maxout_backward_matches_hand_derived_gradient():
    torch.manual_seed(0)
    k, units = 3, 4
    layer = Maxout(5, units, k).double()
    x = torch.randn(8, 5, dtype=torch.float64)
    upstream = torch.randn(8, units, dtype=torch.float64)
    layer(x).backward(upstream)
    z = (x @ layer.linear.weight.T + layer.linear.bias).detach()
    winners = z.reshape(8, units, k).argmax(-1)  # (8, units): which piece each unit picked
    dz = torch.zeros(8, units, k, dtype=torch.float64)
    dz.scatter_(2, winners.unsqueeze(-1), upstream.unsqueeze(-1))
    dz = dz.reshape(8, units * k)
    torch.testing.assert_close(layer.linear.weight.grad, dz.T @ x)
    torch.testing.assert_close(layer.linear.bias.grad, dz.sum(0))


def test_maxout_gradient_reaches_only_the_winning_piece():
    z = torch.tensor([[0.5, 2.0, -1.0, 3.0, 1.0, 0.0]], requires_grad=True)  # units: (0.5, 2, -1), (3, 1, 0)
    GroupMax(3)(z).sum().backward()
    assert z.grad.tolist() == [[0.0, 1.0, 0.0, 1.0, 0.0, 0.0]]


def test_group_max_groups_contiguous_blocks_and_supports_a_channel_dim():
    z = torch.arange(12.0).reshape(1, 12)
    assert GroupMax(4)(z).tolist() == [[3.0, 7.0, 11.0]]
    conv = torch.randn(2, 6, 5)  # (N, C*k, L), pieces of channel c are rows c*k .. c*k+k-1
    expected = conv.reshape(2, 3, 2, 5).amax(dim=2)
    torch.testing.assert_close(GroupMax(2, dim=1)(conv), expected)


def test_group_max_width_not_divisible_names_the_numbers():
    with pytest.raises(ValueError, match=r"width 7 is not divisible by k=3"):
        GroupMax(3)(torch.zeros(2, 7))


@pytest.mark.parametrize("k", [0, -2])
def test_maxout_refuses_k_below_one(k):
    with pytest.raises(ValueError, match=f"k={k}"):
        Maxout(3, 4, k)


def test_maxout_repr_shows_its_sizes():
    assert "in_features=3, out_features=4, k=2" in repr(Maxout(3, 4, 2))


def test_make_activation_returns_a_fresh_instance_every_call():
    a, b = make_activation("prelu"), make_activation("prelu")
    assert a is not b and a.weight is not b.weight
    with torch.no_grad():
        a.weight.fill_(0.9)
    assert b.weight.item() == pytest.approx(0.25)


def test_make_activation_passes_keyword_arguments():
    assert make_activation("leaky_relu").negative_slope == 0.01
    assert make_activation("leaky_relu", negative_slope=0.2).negative_slope == 0.2
    prelu = make_activation("prelu", num_parameters=5, init=0.1)
    assert prelu.weight.shape == (5,) and torch.allclose(prelu.weight, torch.full((5,), 0.1))
    assert make_activation("maxout", k=3).k == 3


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_every_activation_name_builds_and_runs(name):
    x = torch.randn(4, 6)
    out = make_activation(name)(x)
    assert out.shape == ((4, 3) if name == "maxout" else (4, 6))
    assert torch.isfinite(out).all()


def test_unknown_activation_lists_the_valid_names():
    with pytest.raises(ValueError, match="unknown activation 'swish'.*relu, leaky_relu, prelu"):
        make_activation("swish")


def test_mlp_prelu_layers_each_own_per_unit_slopes():
    net = mlp([3, 4, 5, 2], activation="prelu")
    prelus = [m for m in net if isinstance(m, nn.PReLU)]
    assert [p.weight.shape[0] for p in prelus] == [4, 5]
    assert prelus[0].weight is not prelus[1].weight
    assert mlp([3, 4, 2], activation="prelu", num_parameters=1)[1].weight.shape == (1,)


@pytest.mark.parametrize("name", [a for a in ACTIVATIONS if a != "maxout"])
def test_mlp_layer_types_and_shapes(name):
    net = mlp([3, 8, 6, 2], activation=name)
    kinds = [type(m) for m in net]
    act = type(make_activation(name))
    assert kinds == [nn.Linear, act, nn.Linear, act, nn.Linear]
    assert net[1] is not net[3]
    assert net(torch.randn(5, 3)).shape == (5, 2)


def test_mlp_maxout_hidden_layers_are_maxout_layers():
    net = mlp([3, 8, 6, 2], activation="maxout", k=3)
    assert [type(m) for m in net] == [Maxout, Maxout, nn.Linear]
    assert (net[0].linear.out_features, net[0].k, net[1].linear.in_features) == (24, 3, 8)
    assert net(torch.randn(5, 3)).shape == (5, 2)
    assert mlp([3, 4, 2], activation="maxout")[0].k == 2


def test_mlp_output_activation_is_applied():
    net = mlp([3, 8, 2], output_activation="relu")
    assert isinstance(net[-1], nn.ReLU)
    assert (net(torch.randn(100, 3)) >= 0).all()
    assert isinstance(mlp([3, 8, 2])[-1], nn.Linear)


def test_mlp_needs_two_sizes():
    with pytest.raises(ValueError, match="sizes"):
        mlp([3])


@pytest.mark.parametrize("init", ["kaiming", "xavier", "torch"])
def test_mlp_bias_constant_is_applied(init):
    net = mlp([3, 8, 6, 2], init=init, bias=-1.0)
    for layer in net:
        if isinstance(layer, nn.Linear):
            assert torch.equal(layer.bias, torch.full_like(layer.bias, -1.0))


def test_init_torch_with_bias_none_leaves_torch_defaults():
    torch.manual_seed(3)
    net = mlp([4, 5, 2], init="torch", bias=None)
    torch.manual_seed(3)
    first, second = nn.Linear(4, 5), nn.Linear(5, 2)  # same construction order as mlp
    torch.testing.assert_close(net[0].weight, first.weight)
    torch.testing.assert_close(net[2].bias, second.bias)


def _assert_std_close(w: torch.Tensor, expected: float) -> None:
    """The sample std of n iid normals has relative standard error ~ 1/sqrt(2n); allow 5 of them."""
    tolerance = 5 / math.sqrt(2 * w.numel())
    assert abs(w.std().item() / expected - 1) < tolerance
    assert abs(w.mean().item()) < 5 * expected / math.sqrt(w.numel())


@pytest.mark.parametrize(("activation", "gain2"), [("relu", 2.0), ("tanh", (5 / 3) ** 2)])
def test_kaiming_init_std_is_gain_over_sqrt_fan_in(activation, gain2):
    torch.manual_seed(0)
    net = mlp([400, 500, 10], activation=activation, init="kaiming")
    _assert_std_close(net[0].weight, math.sqrt(gain2 / 400))
    _assert_std_close(net[2].weight, math.sqrt(gain2 / 500))


def test_kaiming_init_uses_the_leaky_slope():
    torch.manual_seed(1)
    net = mlp([400, 500, 10], activation="leaky_relu", negative_slope=0.3)
    _assert_std_close(net[0].weight, math.sqrt(2 / (1 + 0.3 ** 2) / 400))


def test_xavier_init_std_is_sqrt_two_over_fan_in_plus_fan_out():
    torch.manual_seed(2)
    net = mlp([400, 600, 10], activation="tanh", init="xavier")
    _assert_std_close(net[0].weight, math.sqrt(2 / (400 + 600)))


def test_kaiming_keeps_relu_activations_second_moment_through_depth():
    """He et al.'s point: with gain sqrt(2) the mean square of the activations stays put through depth."""
    torch.manual_seed(4)
    net = mlp([256] * 11, init="kaiming", bias=0.0)
    h = torch.randn(512, 256)
    first = None
    with torch.no_grad():
        for layer in net[:-1]:
            h = layer(h)
            if isinstance(layer, nn.ReLU):
                first = first or h.pow(2).mean().item()
    assert 0.5 < h.pow(2).mean().item() / first < 2.0


def test_kaiming_for_maxout_uses_gain_one_which_keeps_the_second_moment():
    """For a, b iid N(0, s^2), E[max(a, b)^2] = s^2: Maxout with k=2 needs no sqrt(2) gain."""
    torch.manual_seed(5)
    net = mlp([256] * 9, activation="maxout", k=2)
    _assert_std_close(net[0].linear.weight, math.sqrt(1 / 256))
    h = torch.randn(512, 256)
    with torch.no_grad():
        for layer in net[:-1]:
            h = layer(h)
    assert 0.5 < h.pow(2).mean().item() < 2.0


def test_init_weights_rejects_unknown_scheme():
    with pytest.raises(ValueError, match="kaiming, lecun, xavier, torch"):
        init_weights(nn.Linear(2, 2), scheme="orthogonal")


def test_identity_mlp_collapses_to_one_affine_map():
    torch.manual_seed(0)
    net = mlp([2, 8, 8, 3], activation="identity")
    x = torch.randn(50, 2)
    weights = [m.weight for m in net if isinstance(m, torch.nn.Linear)]
    biases = [m.bias for m in net if isinstance(m, torch.nn.Linear)]
    w = weights[2] @ weights[1] @ weights[0]
    b = weights[2] @ (weights[1] @ biases[0] + biases[1]) + biases[2]
    torch.testing.assert_close(net(x), x @ w.T + b)


def test_mlp_sets_the_prelu_starting_slope_with_slope():
    net = mlp([3, 4, 2], activation="prelu", slope=0.1)
    prelu = next(m for m in net if isinstance(m, torch.nn.PReLU))
    assert prelu.weight.shape == (4,) and torch.all(prelu.weight == 0.1)
    default = next(m for m in mlp([3, 4, 2], activation="prelu") if isinstance(m, torch.nn.PReLU))
    assert torch.all(default.weight == 0.25)


def test_selu_defaults_to_lecun_normal_and_everything_else_to_kaiming():
    assert default_init("selu") == "lecun"
    assert {default_init(a) for a in ACTIVATIONS if a != "selu"} == {"kaiming"}
    torch.manual_seed(6)
    net = mlp([400, 500, 10], activation="selu")
    assert isinstance(net[1], nn.SELU)
    _assert_std_close(net[0].weight, math.sqrt(1 / 400))
    _assert_std_close(net[2].weight, math.sqrt(1 / 500))
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net)  # SELU is used without BatchNorm


def test_lecun_init_is_one_over_fan_in_and_can_be_asked_for_any_activation():
    torch.manual_seed(7)
    net = mlp([300, 600, 10], activation="relu", init="lecun")
    _assert_std_close(net[0].weight, math.sqrt(1 / 300))
    _assert_std_close(mlp([300, 600, 10], activation="selu", init="kaiming")[0].weight, math.sqrt(1 / 300))


def _selu_moments(init: str, depth: int = 16, width: int = 256, seed: int = 0) -> list[tuple[float, float]]:
    """(mean, variance) of every SELU layer's output at initialisation, for N(0, 1) inputs: (512, width)."""
    torch.manual_seed(seed)
    net = mlp([width] * (depth + 1) + [10], activation="selu", init=init)
    h, moments = torch.randn(512, width), []
    with torch.no_grad():
        for layer in net[:-1]:
            h = layer(h)
            if isinstance(layer, nn.SELU):
                moments.append((h.mean().item(), h.var().item()))
    return moments


@pytest.mark.parametrize("seed", range(3))
def test_selu_with_lecun_init_keeps_mean_zero_and_variance_one_through_depth(seed):
    """Klambauer et al. (2017): with weights of variance 1/fan_in, (mean, var) = (0, 1) is a fixed point."""
    for mean, var in _selu_moments("lecun", seed=seed):
        assert abs(mean) < 0.1 and 0.8 < var < 1.2


def test_selu_with_kaimings_doubled_variance_drifts_away_from_the_fixed_point():
    """The same net with weight variance 2/fan_in (torch's relu gain) is no longer self-normalising."""
    torch.manual_seed(0)
    net = mlp([256] * 17 + [10], activation="selu", init="kaiming")
    init_weights(net, "kaiming", 0.0, "relu")  # variance 2 / fan_in
    h = torch.randn(512, 256)
    with torch.no_grad():
        for layer in net[:-1]:
            h = layer(h)
    assert h.var().item() > 10  # measured 27-45 over seeds 0-19; the LeCun net stays within 0.07 of 1
