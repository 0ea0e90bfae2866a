"""Checks for ex01_activations (what its test cells call): ReLU and its subgradient, Leaky ReLU, sigmoid and
tanh in numpy. Each runs the student's functions on the grader's inputs (course_lib.grading.kernel); the
verdict comes from course_lib.grading.judges.ex01."""

from course_lib.grading.kernel import channel, probes


def check_relu(relu, seed: int, hidden: bool = False) -> None:
    channel.check("ex01.relu", probes.elementwise(relu=relu), seed=seed, hidden=hidden)


def check_relu_grad(relu_grad, seed: int, hidden: bool = False) -> None:
    channel.check("ex01.relu_grad", probes.elementwise(relu_grad=relu_grad), seed=seed, hidden=hidden)


def check_leaky_relu(leaky_relu, leaky_relu_grad, seed: int, hidden: bool = False) -> None:
    """Default slope, then slopes 0.2 and 0.5 passed explicitly."""
    channel.check("ex01.leaky_relu", probes.elementwise(leaky_relu=leaky_relu, leaky_relu_grad=leaky_relu_grad),
                  seed=seed, hidden=hidden)


def check_sigmoid(sigmoid, sigmoid_grad, seed: int, hidden: bool = False) -> None:
    """Values, dtypes and stability: no overflow warning at |x| = 1000."""
    channel.check("ex01.sigmoid", probes.elementwise(sigmoid=sigmoid, sigmoid_grad=sigmoid_grad), seed=seed,
                  hidden=hidden)


def check_tanh(tanh, tanh_grad, seed: int, hidden: bool = False) -> None:
    channel.check("ex01.tanh", probes.elementwise(tanh=tanh, tanh_grad=tanh_grad), seed=seed, hidden=hidden)
