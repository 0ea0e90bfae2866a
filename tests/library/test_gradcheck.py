"""course_lib.gradcheck against closed-form derivatives, and its kink reports on ReLU and a tiny ReLU net."""

import dataclasses

import numpy as np
import pytest

from course_lib.gradcheck import (
    check_gradient,
    numerical_gradient,
    numerical_gradient_array,
    relative_error,
)

H = 1e-5


def relu(x):
    return np.maximum(x, 0.0)


# ---- numerical gradients -----------------------------------------------------------------------------


def test_numerical_gradient_of_sum_of_cubes_is_three_x_squared():
    x = np.random.default_rng(0).uniform(-2, 2, size=(3, 4))
    np.testing.assert_allclose(numerical_gradient(lambda v: np.sum(v**3), x), 3 * x**2, rtol=1e-8, atol=1e-9)


def test_numerical_gradient_of_a_quadratic_form_is_a_plus_a_transpose_times_x():
    rng = np.random.default_rng(1)
    a, x = rng.standard_normal((5, 5)), rng.standard_normal(5)
    np.testing.assert_allclose(numerical_gradient(lambda v: v @ a @ v, x), (a + a.T) @ x, rtol=1e-7, atol=1e-9)


def test_numerical_gradient_perturbs_x_in_place_and_restores_it():
    w = np.random.default_rng(2).standard_normal((2, 3))
    original = w.copy()
    grad = numerical_gradient(lambda _: np.sum(w**2), w)  # CS231n style: f reads w itself, not its argument
    np.testing.assert_allclose(grad, 2 * original, rtol=1e-8)
    np.testing.assert_array_equal(w, original)


def test_numerical_gradient_restores_x_even_when_f_raises():
    x = np.array([1.0, 2.0])

    def f(v):
        if v[0] != 1.0:
            raise RuntimeError("boom")
        return 0.0

    with pytest.raises(RuntimeError):
        numerical_gradient(f, x)
    np.testing.assert_array_equal(x, [1.0, 2.0])


def test_numerical_gradient_array_is_the_jacobian_transpose_times_dout():
    rng = np.random.default_rng(3)
    a, x, dout = rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal(4)
    np.testing.assert_allclose(numerical_gradient_array(lambda v: a @ v, x, dout), a.T @ dout, rtol=1e-7)
    np.testing.assert_allclose(numerical_gradient_array(np.tanh, x, dout[:3]), (1 - np.tanh(x) ** 2) * dout[:3])


def test_numerical_gradient_array_refuses_dout_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"f\(x\) has shape \(3,\) but dout has shape \(4,\)"):
        numerical_gradient_array(np.tanh, np.zeros(3), np.ones(4))


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int64])
def test_numerical_gradient_refuses_anything_but_float64(dtype):
    with pytest.raises(ValueError, match=rf"dtype {np.dtype(dtype)}.*float64"):
        numerical_gradient(np.sum, np.ones(3, dtype=dtype))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_numerical_gradient_and_check_gradient_refuse_non_finite_x(bad):
    x = np.array([1.0, bad, 2.0])
    with pytest.raises(ValueError, match="1 non-finite"):
        numerical_gradient(np.sum, x)
    with pytest.raises(ValueError, match="non-finite"):
        check_gradient(np.sum, np.ones(3), x)


# ---- relative error ----------------------------------------------------------------------------------


def test_relative_error_is_the_largest_difference_over_the_sum_of_magnitudes():
    assert relative_error(np.array([1.0, 3.0, 0.0]), np.array([1.1, 3.0, 0.0])) == pytest.approx(0.1 / 2.1)
    assert relative_error(np.zeros(2), np.full(2, 1e-13)) == pytest.approx(0.1)  # the 1e-12 floor


def test_relative_error_refuses_different_shapes_and_names_them():
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(3, 2\)"):
        relative_error(np.zeros((2, 3)), np.zeros((3, 2)))


# ---- check_gradient ----------------------------------------------------------------------------------


def smooth_inputs(shape=(4, 5), seed=4):
    """Values with |x| in [0.5, 2]: the relative error is meaningless where the gradient itself is ~0."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def test_check_gradient_passes_for_a_smooth_function_with_the_right_gradient():
    x = smooth_inputs()
    report = check_gradient(lambda v: np.sum(np.sin(v) * v**2), lambda v: np.cos(v) * v**2 + 2 * v * np.sin(v), x)
    assert report.passed and report.passed_away_from_kinks
    assert report.max_error < 1e-8 and report.near_kink == () and report.failing == ()
    assert str(report).startswith("passes at all 20 inputs")


def test_check_gradient_fails_with_a_clear_report_for_a_wrong_gradient():
    x = smooth_inputs()
    wrong = 3 * x**2
    wrong[1, 2] *= 1.01  # one entry off by 1%
    report = check_gradient(lambda v: np.sum(v**3), wrong, x)
    assert not report.passed and not report.passed_away_from_kinks
    assert report.worst_index == (1, 2) and report.failing == ((1, 2),)
    assert report.max_error == pytest.approx(0.01 / 2.01, rel=1e-4)
    assert "FAILS at 1 of 20 inputs away from any kink" in str(report)
    assert "analytic gradient is probably wrong" in str(report)


def test_check_gradient_refuses_an_analytic_gradient_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"shape \(3,\) but x has shape \(2, 3\)"):
        check_gradient(np.sum, np.ones(3), np.ones((2, 3)))


def relu_inputs_with_some_near_zero():
    """50 inputs, |x| >= 0.1 except three within h of the kink at 0: exactly 0, 0.4h and -0.7h."""
    x = smooth_inputs(shape=(50,), seed=5) * 0.5
    x[[7, 20, 33]] = [0.0, 0.4 * H, -0.7 * H]
    return x


@pytest.mark.parametrize("kinks", [(0.0,), None])
def test_check_gradient_reports_relu_inputs_within_h_of_the_kink(kinks):
    x = relu_inputs_with_some_near_zero()
    report = check_gradient(lambda v: np.sum(relu(v)), (x > 0).astype(float), x, h=H, kinks=kinks)
    assert report.near_kink == ((7,), (20,), (33,)) and report.failing == ((7,), (20,), (33,))
    assert not report.passed and report.passed_away_from_kinks
    assert report.max_error_away_from_kinks < 1e-9
    message = str(report)
    assert message.startswith("fails at 3 of 50 inputs, all within h=1e-05 of ")
    assert "averages the two one-sided slopes" in message
    assert ("the kink at 0" in message) == (kinks is not None)


def test_check_gradient_still_fails_a_wrong_relu_gradient_away_from_the_kink():
    x = relu_inputs_with_some_near_zero()
    wrong = np.where(x > 0, 1.0, 0.01)  # a leaky derivative for a plain relu
    report = check_gradient(lambda v: np.sum(relu(v)), wrong, x, kinks=(0.0,))
    assert not report.passed_away_from_kinks
    assert "away from any kink" in str(report) and "more fail within h=1e-05 of the kink at 0" in str(report)


def test_a_smooth_minimum_is_not_mistaken_for_a_kink():
    x = smooth_inputs(shape=(10,))
    x[3] = 1.0  # d/dx (x - 1)**2 = 0 here: both one-sided slopes ~ +-h, yet no kink
    report = check_gradient(lambda v: np.sum((v - 1.0) ** 2), 2 * (x - 1.0), x)
    assert report.near_kink == () and report.passed


def two_layer_relu_net():
    """loss(W1) = sum(w2 * relu(W1 @ x)), with hidden unit 0's pre-activation 0.5h above its kink.

    No weight is near 0, so a kink list cannot find this; perturbing W1[0, 0] by +-h (or W1[0, 1] by
    +-2h, since x[1] = 2) moves unit 0 across 0, so the one-sided differences of those two disagree.
    """
    x, w2 = np.array([1.0, 2.0]), np.array([0.7, -1.3, 0.4])
    w1 = np.array([[1.5 + 0.5 * H, -0.75], [0.8, 0.9], [-1.1, 0.6]])

    def loss(w):
        return np.sum(w2 * relu(w @ x))

    def grad(w):
        return np.outer(w2 * (w @ x > 0), x)

    return loss, grad, w1


def test_check_gradient_finds_a_kink_inside_a_two_layer_relu_net_from_one_sided_differences():
    loss, grad, w1 = two_layer_relu_net()
    assert np.all(np.abs(w1) > 100 * H)
    report = check_gradient(loss, grad, w1, kinks=(0.0,))
    assert report.near_kink == ((0, 0), (0, 1)) and report.failing == ((0, 0), (0, 1))
    assert not report.passed and report.passed_away_from_kinks
    assert "fails at 2 of 6 inputs, all within h=1e-05" in str(report)


def test_check_gradient_blames_a_wrong_net_gradient_even_with_a_kink_present():
    loss, grad, w1 = two_layer_relu_net()
    report = check_gradient(loss, lambda w: 1.1 * grad(w), w1)
    assert not report.passed_away_from_kinks and report.near_kink == ((0, 0), (0, 1))
    assert str(report).startswith("FAILS at 4 of 6 inputs away from any kink")
    assert str(report).endswith(
        "2 more fail within h=1e-05 of a kink (there the forward and backward one-sided differences disagree)"
    )


def test_grad_check_report_is_frozen():
    report = check_gradient(np.sum, np.ones(2), np.ones(2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.passed = False
