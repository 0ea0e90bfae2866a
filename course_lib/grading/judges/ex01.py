"""Judges for ex01_activations: ReLU and its subgradient, Leaky ReLU, sigmoid and tanh in numpy."""

import numpy as np

from course_lib import activations as reference
from course_lib.grading.judges.elementwise import Part, judge
from course_lib.grading.judges.verdict import Misconception

WRITTEN = {"course_lib.activations": ["relu", "relu_grad", "leaky_relu", "leaky_relu_grad", "sigmoid",
                                      "sigmoid_grad", "tanh", "tanh_grad"]}

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


def _slopes(name: str, reference_fn) -> list[Part]:
    """`name` with slopes 0.2 and 0.5 passed explicitly, on the inputs of the next seed."""
    return [Part(f"{name}(x, slope={s})", name, reference_fn, (s,), seed_offset=1) for s in (0.2, 0.5)]


JUDGES = {
    "relu": judge(Part("relu", "relu", reference.relu, misconceptions=[RELU_IS_ABS])),
    "relu_grad": judge(Part("relu_grad", "relu_grad", reference.relu_grad,
                            misconceptions=[KINK_IS_ONE, KINK_IS_HALF])),
    "leaky_relu": judge(Part("leaky_relu", "leaky_relu", reference.leaky_relu, misconceptions=[LEAKY_DEFAULT_SLOPE]),
                        Part("leaky_relu_grad", "leaky_relu_grad", reference.leaky_relu_grad,
                             misconceptions=[LEAKY_KINK_IS_ONE]),
                        *_slopes("leaky_relu", reference.leaky_relu),
                        *_slopes("leaky_relu_grad", reference.leaky_relu_grad)),
    "sigmoid": judge(Part("sigmoid", "sigmoid", reference.sigmoid, warn_free=True),
                     Part("sigmoid_grad", "sigmoid_grad", reference.sigmoid_grad,
                          misconceptions=[SIGMOID_GRAD_PLUS], warn_free=True)),
    "tanh": judge(Part("tanh", "tanh", reference.tanh, warn_free=True),
                  Part("tanh_grad", "tanh_grad", reference.tanh_grad, misconceptions=[TANH_GRAD_UNSQUARED],
                       warn_free=True)),
}
