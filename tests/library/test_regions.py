"""Tests for course_lib.regions on hand-built ReLU nets whose linear regions are known by hand."""

import numpy as np
import pytest
import torch
from torch import nn

from course_lib.regions import (
    count_regions,
    grid,
    input_gradients,
    max_regions_one_hidden_layer,
    region_ids,
    region_map,
    relu_patterns,
    spread_within_regions,
)

torch.set_num_threads(1)


def _net(weight, bias, out_weight) -> nn.Sequential:
    """x (N, 2) -> relu(x W^T + b) . out_weight: one hidden ReLU layer with given weights, float64."""
    w = torch.tensor(weight, dtype=torch.float64)
    net = nn.Sequential(nn.Linear(2, len(w)), nn.ReLU(), nn.Linear(len(w), 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(w)
        net[0].bias.copy_(torch.tensor(bias, dtype=torch.float64))
        net[2].weight.copy_(torch.tensor([out_weight], dtype=torch.float64))
        net[2].bias.zero_()
    return net


def _quadrants() -> nn.Sequential:
    """relu(x1) + 2 relu(x2): the two axes cut the plane into 4 quadrants."""
    return _net([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0], [1.0, 2.0])


def _three_lines() -> nn.Sequential:
    """Kinks on x1 = 0, x2 = 0 and x1 + x2 = 0.5: three lines in general position, all crossings inside
    [-1, 1]^2, so 1 + 3 + 3 = 7 regions."""
    return _net([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [0.0, 0.0, -0.5], [1.0, 1.0, 1.0])


def test_patterns_are_on_where_the_pre_activation_is_positive_and_off_at_exactly_zero():
    x = np.array([[1.0, 2.0], [-1.0, 3.0], [0.0, -2.0], [0.0, 0.0]])
    assert relu_patterns(_quadrants(), x).tolist() == [[True, True], [False, True], [False, False],
                                                        [False, False]]


def test_patterns_of_every_relu_layer_are_concatenated_in_model_order():
    net = nn.Sequential(nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 1), nn.ReLU()).double()
    with torch.no_grad():  # layer 2 fires iff relu(x) > 0.5, i.e. x > 0.5
        net[0].weight.fill_(1.0), net[0].bias.zero_(), net[2].weight.fill_(1.0), net[2].bias.fill_(-0.5)
    x = np.array([[-1.0], [0.25], [1.0]])
    assert relu_patterns(net, x).tolist() == [[False, False], [True, False], [True, True]]


def test_a_deep_net_bends_regions_a_depth_one_count_would_miss():
    """relu(relu(x1) - 0.5): kinks at x1 = 0 and x1 = 0.5, so 3 vertical strips."""
    net = nn.Sequential(nn.Linear(2, 1), nn.ReLU(), nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0]])), net[0].bias.zero_()
        net[2].weight.fill_(1.0), net[2].bias.fill_(-0.5)
    assert count_regions(net, -1, 1, 101) == 3


def test_region_ids_number_equal_patterns_equally():
    ids = region_ids(np.array([[1, 0], [0, 0], [1, 0], [1, 1], [0, 0]], dtype=bool))
    assert ids[0] == ids[2] and ids[1] == ids[4]
    assert len({ids[0], ids[1], ids[3]}) == 3 and sorted(set(ids.tolist())) == [0, 1, 2]


def test_region_ids_handle_more_than_eight_units():
    patterns = np.zeros((3, 20), dtype=bool)
    patterns[1, 19] = True  # differs only in the last of 20 units (a second packed byte)
    patterns[2, 19] = True
    ids = region_ids(patterns)
    assert ids[0] != ids[1] and ids[1] == ids[2]


@pytest.mark.parametrize(("net", "expected"), [(_quadrants, 4), (_three_lines, 7)])
def test_count_regions_matches_the_regions_counted_by_hand(net, expected):
    assert count_regions(net(), -1, 1, 100) == expected


def test_one_hidden_layer_bound_is_the_hyperplane_arrangement_count():
    assert max_regions_one_hidden_layer(3, 2) == 7  # drawn by hand: three lines in general position
    assert max_regions_one_hidden_layer(2, 2) == 4
    assert max_regions_one_hidden_layer(5, 1) == 6  # 5 kinks on a line: 6 intervals
    assert max_regions_one_hidden_layer(0, 3) == 1
    assert count_regions(_three_lines(), -1, 1, 100) <= max_regions_one_hidden_layer(3, 2)


def test_region_map_grid_is_square_and_matches_the_points():
    ids, g0, g1 = region_map(_quadrants(), -1, 1, 10)
    assert ids.shape == g0.shape == g1.shape == (10, 10)
    assert ids[0, 0] != ids[-1, -1]  # (-1, -1) and (1, 1) lie in different quadrants
    assert ids[0, -1] == region_map(_quadrants(), -1, 1, 10)[0][0, -1]
    a, b = grid(-1, 1, 3)
    assert a[0].tolist() == [-1.0, 0.0, 1.0] and b[:, 0].tolist() == [-1.0, 0.0, 1.0]


def test_input_gradients_are_the_slopes_of_each_quadrant():
    x = np.array([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])
    assert input_gradients(_quadrants(), x).tolist() == [[1.0, 2.0], [0.0, 2.0], [0.0, 0.0], [1.0, 0.0]]


def test_input_gradients_agree_with_finite_differences_on_a_random_net():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 1)).double()
    x = np.random.default_rng(0).normal(size=(5, 2))
    h = 1e-6

    def f(points):
        with torch.no_grad():
            return net(torch.as_tensor(points)).numpy().ravel()

    fd = np.stack([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(2)], axis=1)
    np.testing.assert_allclose(input_gradients(net, x), fd, atol=1e-6)


def test_input_gradients_refuse_several_outputs():
    with pytest.raises(ValueError, match="one output"):
        input_gradients(nn.Sequential(nn.Linear(2, 3), nn.ReLU()), np.zeros((4, 2)))


def test_gradients_are_constant_inside_regions_but_not_for_a_smooth_net():
    ids, g0, g1 = region_map(_three_lines(), -1, 1, 40)
    points = np.stack([g0.ravel(), g1.ravel()], axis=1)
    assert spread_within_regions(input_gradients(_three_lines(), points), ids.ravel()) == 0.0
    smooth = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1), nn.ReLU(), nn.Linear(1, 1)).double()
    with torch.no_grad():
        smooth[2].bias.fill_(100.0)  # the one ReLU is always on: a single "region", yet tanh bends
    smooth_ids = region_ids(relu_patterns(smooth, points))
    assert smooth_ids.max() == 0
    assert spread_within_regions(input_gradients(smooth, points), smooth_ids) > 1e-3


def test_spread_within_regions_is_the_largest_range_inside_one_region():
    values = np.array([[0.0, 1.0], [0.5, 1.0], [10.0, -3.0], [10.0, -2.0]])
    assert spread_within_regions(values, np.array([0, 0, 1, 1])) == 1.0
    assert spread_within_regions(values[:, 0], np.array([1, 1, 0, 0])) == 0.5


def test_a_model_without_relu_has_no_pattern():
    with pytest.raises(ValueError, match="no nn.ReLU"):
        relu_patterns(nn.Sequential(nn.Linear(2, 2), nn.Tanh()), np.zeros((1, 2)))


def test_neighbouring_regions_never_share_a_colour_on_the_region_map():
    from course_lib.nn import mlp
    from course_lib.regions import region_colours

    torch.manual_seed(0)
    ids, _, _ = region_map(mlp([2, 8, 8, 1], bias=None).double(), lo=-3, hi=3, resolution=200)
    colour = region_colours(ids)[ids]
    differ = ids[:, 1:] != ids[:, :-1]
    assert differ.any() and np.all(colour[:, 1:][differ] != colour[:, :-1][differ])
    differ = ids[1:, :] != ids[:-1, :]
    assert np.all(colour[1:, :][differ] != colour[:-1, :][differ])
