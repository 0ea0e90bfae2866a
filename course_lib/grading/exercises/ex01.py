"""Checks for ex01_activations: ReLU and its subgradient, Leaky ReLU, sigmoid and tanh in numpy."""

import numpy as np

from course_lib import activations as reference
from course_lib.grading import checks
from course_lib.grading.verdict import Misconception

KINK_IS_ONE = Misconception(
    lambda x: (x >= 0).astype(np.float64),
    "relu_grad(0) returned 1: any value in [0, 1] is a subgradient, but this exercise follows PyTorch's 0")
KINK_IS_HALF = Misconception(
    lambda x: np.where(x > 0, 1.0, np.where(x < 0, 0.0, 0.5)),
    "relu_grad(0) returned 0.5: a valid subgradient, but this exercise follows PyTorch's 0")
RELU_IS_ABS = Misconception(np.abs, "relu returned |x|: negative inputs must become 0, not flip sign")
LEAKY_DEFAULT_SLOPE = Misconception(
    lambda x: np.where(x > 0, x, 0.1 * x),
    "leaky_relu used slope 0.1 by default: the exercise (and torch) use negative_slope=0.01")
LEAKY_KINK_IS_ONE = Misconception(
    lambda x: np.where(x >= 0, 1.0, 0.01),
    "leaky_relu_grad(0) returned 1: torch returns the negative-side slope at exactly 0")
SIGMOID_GRAD_PLUS = Misconception(
    lambda x: reference.sigmoid(x) * (1 + reference.sigmoid(x)),
    "sigmoid_grad used s(1 + s): the derivative is s(1 - s), at most 0.25")
TANH_GRAD_UNSQUARED = Misconception(
    lambda x: 1 - np.tanh(x), "tanh_grad returned 1 - tanh(x): the derivative is 1 - tanh(x)**2")


def check_relu(relu, seed: int, hidden: bool = False) -> None:
    checks.elementwise("relu", relu, reference.relu, seed, misconceptions=[RELU_IS_ABS], hidden=hidden)


def check_relu_grad(relu_grad, seed: int, hidden: bool = False) -> None:
    checks.elementwise("relu_grad", relu_grad, reference.relu_grad, seed,
                       misconceptions=[KINK_IS_ONE, KINK_IS_HALF], hidden=hidden)


def check_leaky_relu(leaky_relu, leaky_relu_grad, seed: int, hidden: bool = False) -> None:
    checks.elementwise("leaky_relu", leaky_relu, reference.leaky_relu, seed,
                       misconceptions=[LEAKY_DEFAULT_SLOPE], hidden=hidden)
    checks.elementwise("leaky_relu_grad", leaky_relu_grad, reference.leaky_relu_grad, seed,
                       misconceptions=[LEAKY_KINK_IS_ONE], hidden=hidden)
    for slope in (0.2, 0.5):
        checks.elementwise(f"leaky_relu(x, slope={slope})", leaky_relu, reference.leaky_relu, seed + 1,
                           extra=(slope,), hidden=hidden)
        checks.elementwise(f"leaky_relu_grad(x, slope={slope})", leaky_relu_grad, reference.leaky_relu_grad,
                           seed + 1, extra=(slope,), hidden=hidden)


def check_sigmoid(sigmoid, sigmoid_grad, seed: int, hidden: bool = False) -> None:
    """Values, dtypes and stability: no overflow warning at |x| = 1000."""
    checks.elementwise("sigmoid", sigmoid, reference.sigmoid, seed, hidden=hidden, warn_free=True)
    checks.elementwise("sigmoid_grad", sigmoid_grad, reference.sigmoid_grad, seed,
                       misconceptions=[SIGMOID_GRAD_PLUS], hidden=hidden, warn_free=True)


def check_tanh(tanh, tanh_grad, seed: int, hidden: bool = False) -> None:
    checks.elementwise("tanh", tanh, reference.tanh, seed, hidden=hidden, warn_free=True)
    checks.elementwise("tanh_grad", tanh_grad, reference.tanh_grad, seed,
                       misconceptions=[TANH_GRAD_UNSQUARED], hidden=hidden, warn_free=True)
