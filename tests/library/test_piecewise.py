"""course_lib.piecewise against independent references: torch's Maxout layer, closed forms, np.interp."""

import numpy as np
import pytest
import torch

from course_lib import piecewise as pw
from course_lib.nn import Maxout


def _square(x):
    return x * x


def _twice(x):
    return 2 * x


def test_maxout_1d_matches_torch_maxout_layer_with_the_same_weights():
    rng = np.random.default_rng(0)
    w, b, x = rng.normal(size=5), rng.normal(size=5), rng.normal(size=200)
    layer = Maxout(1, 1, k=5).double()
    with torch.no_grad():
        layer.linear.weight.copy_(torch.from_numpy(w[:, None]))
        layer.linear.bias.copy_(torch.from_numpy(b))
        expected = layer(torch.from_numpy(x[:, None]))[:, 0].numpy()
    np.testing.assert_allclose(pw.maxout_1d(x, w, b), expected, rtol=0, atol=1e-14)


def test_tangent_points_are_cell_centres():
    np.testing.assert_allclose(pw.tangent_points(-2.0, 2.0, 4), [-1.5, -0.5, 0.5, 1.5])


@pytest.mark.parametrize("k", [1, 2, 3, 8, 25])
def test_tangent_envelope_of_x_squared_misses_by_exactly_the_squared_half_cell(k):
    w, b = pw.tangent_pieces(_square, _twice, -2.0, 2.0, k)
    # closed form: between a tangent point and a cell edge at distance h, x^2 - tangent = h^2
    assert pw.max_error(_square, w, b, -2.0, 2.0) == pytest.approx((2.0 / k) ** 2, rel=1e-9)


def test_tangent_envelope_lies_below_a_convex_function_and_touches_it_at_the_tangent_points():
    w, b = pw.tangent_pieces(np.exp, np.exp, -2.0, 2.0, 6)
    x = np.linspace(-3, 3, 1001)
    assert np.all(pw.maxout_1d(x, w, b) <= np.exp(x) + 1e-12)
    t = pw.tangent_points(-2.0, 2.0, 6)
    np.testing.assert_allclose(pw.maxout_1d(t, w, b), np.exp(t), rtol=1e-12)


def test_difference_of_maxouts_reproduces_the_interpolant_of_a_non_convex_function():
    knots = np.linspace(-np.pi, np.pi, 9)
    (w1, b1), (w2, b2) = pw.difference_of_maxouts(knots, np.sin(knots))
    assert w1.shape == b1.shape == w2.shape == b2.shape == (8,)
    x = np.random.default_rng(1).uniform(-np.pi, np.pi, 500)
    got = pw.maxout_1d(x, w1, b1) - pw.maxout_1d(x, w2, b2)
    np.testing.assert_allclose(got, np.interp(x, knots, np.sin(knots)), atol=1e-12)


def test_difference_of_maxouts_of_convex_data_needs_no_second_unit():
    knots = np.linspace(-1, 2, 7)
    (w1, b1), (w2, b2) = pw.difference_of_maxouts(knots, knots**2)
    assert np.all(w2 == 0) and np.all(b2 == 0)
    np.testing.assert_allclose(pw.maxout_1d(knots, w1, b1), knots**2, atol=1e-12)


def test_invalid_pieces_and_knots_are_refused():
    with pytest.raises(ValueError, match="shape"):
        pw.maxout_1d(np.zeros(3), np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="k >= 1"):
        pw.tangent_points(0.0, 1.0, 0)
    with pytest.raises(ValueError, match="increasing"):
        pw.difference_of_maxouts(np.array([0.0, 0.0, 1.0]), np.zeros(3))
