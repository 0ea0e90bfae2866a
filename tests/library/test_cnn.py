"""Tests for course_lib.cnn: shapes and parameter counts by hand, conv lengths against torch, maxout by hand."""

import math

import pytest
import torch
from torch import nn

from course_lib.cnn import cnn1d, conv_out_length, n_params
from course_lib.diagnostics import DeadUnitMonitor
from course_lib.nn import ACTIVATIONS, GroupMax

torch.set_num_threads(1)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_cnn_maps_a_batch_of_signals_to_logits_for_every_activation(activation):
    torch.manual_seed(0)
    out = cnn1d(activation=activation)(torch.randn(7, 40))
    assert out.shape == (7, 10)
    assert torch.isfinite(out).all()


def test_default_cnn_has_the_reference_parameter_count_counted_by_hand():
    conv1 = 1 * 25 * 5 + 25
    conv2 = conv3 = 25 * 25 * 3 + 25
    lengths = 40, 19, 10, 5  # (40 + 2 - 5) // 2 + 1 = 19, (19 + 2 - 3) // 2 + 1 = 10, then 5
    readout = 25 * lengths[-1] * 10 + 10
    assert n_params(cnn1d()) == conv1 + conv2 + conv3 + readout == 5210


@pytest.mark.parametrize("length", [9, 10, 19, 40, 41])
@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_conv_out_length_matches_what_torch_produces(length, kernel, stride):
    conv = nn.Conv1d(1, 1, kernel, stride=stride, padding=1)
    assert conv_out_length(length, kernel, stride, 1) == conv(torch.zeros(1, 1, length)).shape[-1]


def test_conv_out_length_refuses_a_kernel_longer_than_the_padded_input():
    with pytest.raises(ValueError, match="does not fit"):
        conv_out_length(2, 5, 2, 1)


def test_maxout_cnn_takes_the_max_over_contiguous_groups_of_k_channel_maps():
    torch.manual_seed(1)
    k, channels = 3, 4
    model = cnn1d(activation="maxout", channels=channels, k=k)
    conv, group_max = model[1], model[2]
    assert conv.out_channels == channels * k
    assert isinstance(group_max, GroupMax) and group_max.dim == 1
    z = conv(torch.randn(5, 1, 40))
    manual = torch.stack([z[:, j * k:(j + 1) * k].max(dim=1).values for j in range(channels)], dim=1)
    torch.testing.assert_close(group_max(z), manual)


def test_maxout_cnn_has_k_times_the_convolution_weights():
    convs = {name: [m for m in cnn1d(activation=name).modules() if isinstance(m, nn.Conv1d)]
             for name in ("relu", "maxout")}
    for relu_conv, maxout_conv in zip(convs["relu"][1:], convs["maxout"][1:], strict=True):
        # layers after the first see `channels` inputs in both nets, so the ratio is exactly k = 2
        assert maxout_conv.weight.numel() == 2 * relu_conv.weight.numel()


def test_every_layer_gets_its_own_activation_and_prelu_one_slope_per_channel():
    model = cnn1d(activation="prelu", channels=6)
    prelus = [m for m in model.modules() if isinstance(m, nn.PReLU)]
    assert len(prelus) == 3 and len({id(m) for m in prelus}) == 3
    assert all(m.weight.numel() == 6 for m in prelus)


def test_dead_unit_monitor_counts_channels_of_the_cnn():
    torch.manual_seed(0)
    model = cnn1d(activation="relu", channels=8)
    with torch.no_grad():
        model[1].bias.fill_(-1e3)  # first conv: every channel negative everywhere -> dead
    monitor = DeadUnitMonitor(model).observe(torch.randn(32, 40))
    by_layer = monitor.dead_fraction_by_layer()
    assert list(by_layer) == ["2", "4", "6"]
    assert by_layer["2"] == 1.0


def test_kaiming_init_gives_he_variance_and_zero_biases():
    torch.manual_seed(0)
    model = cnn1d(activation="relu", channels=64)
    conv2 = model[3]
    fan_in = 64 * 3
    assert conv2.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.05)
    assert all((m.bias == 0).all() for m in model.modules() if isinstance(m, nn.Conv1d | nn.Linear))


def test_torch_init_keeps_torch_default_and_unknown_init_is_refused():
    torch.manual_seed(0)
    conv1 = cnn1d(init="torch")[1]
    bound = 1 / math.sqrt(1 * 5)  # torch's default: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert conv1.weight.abs().max().item() <= bound and (conv1.bias != 0).any()
    with pytest.raises(ValueError, match="unknown init"):
        cnn1d(init="orthogonal")


def test_cnn_trains_one_step_downhill():
    torch.manual_seed(0)
    model = cnn1d(channels=8)
    x, y = torch.randn(64, 40), torch.randint(0, 10, (64,))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    before = nn.functional.cross_entropy(model(x), y)
    before.backward()
    opt.step()
    assert nn.functional.cross_entropy(model(x), y).item() < before.item()
