"""Tests for course_lib.kinks.KinkCounter on a hand-built layer whose pre-activations are known exactly."""

import pytest
import torch
from torch import nn

from course_lib.kinks import KinkCounter
from course_lib.train import fit

torch.set_num_threads(1)

# Pre-activations x W^T: [[0, 1, 1], [-2, 0, 2]] -> 2 exact zeros out of 6; |z| < 1.5 holds 4 of them.
X = torch.tensor([[1.0, 1.0], [0.0, 2.0]])


def _net() -> nn.Sequential:
    net = nn.Sequential(nn.Linear(2, 3, bias=False), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -1.0], [1.0, 0.0], [0.0, 1.0]]))
    return net


def test_counts_exact_zero_pre_activations_out_of_all_of_them():
    net = _net()
    with KinkCounter(net, near=(1.5, 0.5)) as counter:
        net(X)
    assert (counter.zeros, counter.total) == (2, 6)
    assert counter.near == {1.5: 4, 0.5: 2}
    assert counter.by_layer() == {"1": (2, 6)}
    assert counter.passes == 1


def test_counts_add_up_over_forward_passes_and_layers():
    net = nn.Sequential(_net()[:2], nn.Linear(3, 2), nn.ReLU())
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([[1.0, -1.0, 1.0], [0.0, 0.0, 0.0]]))
        net[1].bias.zero_()
    # layer "0.1" sees z1 as above; layer "2" sees relu(z1) W2^T = [[0, 1, 1], [0, 0, 2]] W2^T = [[0, 0], [2, 0]]
    with KinkCounter(net) as counter:
        net(X)
        net(X)
    assert counter.by_layer() == {"0.1": (4, 12), "2": (6, 8)}
    assert (counter.zeros, counter.total, counter.passes) == (10, 20, 2)


def test_eval_mode_passes_are_left_out_unless_asked_for():
    net = _net().eval()
    with KinkCounter(net) as training_only, KinkCounter(net, only_training=False) as every_pass:
        net(X)
    assert training_only.total == 0
    assert (every_pass.zeros, every_pass.total) == (2, 6)


def test_hooks_are_removed_on_exit_and_reset_forgets():
    net = _net()
    with KinkCounter(net) as counter:
        net(X)
    net(X)
    assert counter.total == 6
    counter.reset()
    assert (counter.zeros, counter.total, counter.passes) == (0, 0, 0)


def test_counts_every_training_pass_of_fit_and_no_validation_pass():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
    x, y = torch.randn(10, 2), torch.tensor([0, 1] * 5)
    with KinkCounter(net) as counter:
        fit(net, (x, y, x, y), epochs=3, lr=0.1, batch_size=4, progress=False)
    assert counter.passes == 3 * 3  # 3 epochs of ceil(10 / 4) = 3 batches
    assert counter.total == 3 * 10 * 4  # every training example once per epoch, 4 units


def test_refuses_models_without_relu_and_non_positive_tolerances():
    with pytest.raises(ValueError, match="no nn.ReLU"):
        KinkCounter(nn.Sequential(nn.Linear(2, 2), nn.Tanh()))
    with pytest.raises(ValueError, match="> 0"):
        KinkCounter(_net(), near=(0.0,))
