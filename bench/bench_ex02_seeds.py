"""ex02's solution under secret seeds: the pass rate of every check (aim: 1.0), and the spiral accuracies.

Each check of ex02_backprop runs the solution notebook's own answers against the host's end of the channel
(tests/grading_fixtures.Host: secret seeds as `course grade` derives them, one per student, judged on the
host side), for many students. Also the spiral test accuracies behind the training check's threshold (0.93)
and its hint (a linear net: the solution's loss without the ReLU, below 0.65).
"""

import contextlib
import io
import sys

import numpy as np

from course_lib.benches import Measurement
from course_lib.grading import judges
from course_lib.grading.authoring.sources import is_answer, read_source
from course_lib.grading.checks import ex02
from course_lib.grading.judges import ex02 as judge
from course_lib.grading.judges.training import scored
from course_lib.grading.kernel.layers import he_init, train_numpy_classifier
from course_lib.paths import course_root

sys.path.insert(0, str(course_root()))
from tests import grading_fixtures as fx  # noqa: E402  (the host's end of the channel lives with the tests)

A = "ex02_backprop"
SECRET = b"bench secret"
CHECKS = {  # test cell -> (check function, the solution's names it takes, params as in the notebook)
    "affine": (ex02.check_affine, ("affine_forward", "affine_backward"), {"seed": 1}),
    "relu_layer": (ex02.check_relu_layer, ("relu_forward", "relu_backward"), {"seed": 2}),
    "two_layer_loss": (ex02.check_two_layer_loss, ("two_layer_loss",), {"seed": 3}),
    "gradient_check": (ex02.check_gradient_check, ("gradient_check",), {"seed": 4}),
    "training": (ex02.check_training, ("two_layer_loss",), {"seed": 5, "threshold": 0.93}),
}


def solution() -> dict:
    """The solution notebook's answer cells, run: name -> the functions it defines."""
    namespace: dict = {}
    exec("import numpy as np\nfrom course_lib.gradcheck import check_gradient", namespace)  # noqa: S102
    for cell in read_source(A).cells:
        if cell.cell_type == "code" and is_answer(cell):
            exec(cell.source, namespace)  # noqa: S102 - the course's own solution
    return namespace


def pass_rate(check: str, hidden: bool, n: int, answers: dict) -> tuple[float, list[str]]:
    """The fraction of `n` students whose secret inputs the solution passes, and the failures' messages."""
    fn, names, params = CHECKS[check]
    with contextlib.redirect_stdout(io.StringIO()):  # the training probe prints its seconds
        messages = [fx.graded(fn, *(answers[k] for k in names), host=fx.Host(A, f"student-{i}", SECRET),
                              hidden=hidden, **params) for i in range(n)]
    failed = [m for m in messages if m]
    return 1 - len(failed) / n, failed


def _linear(loss):
    def linear_loss(params, x, y=None):
        return loss(params, x, y, relu=False) if y is not None else loss(params, x, relu=False)
    return linear_loss


def spiral_accuracies(n: int, loss) -> list[float]:
    """Test accuracies of `loss` trained by the grader's loop on the spirals of `n` students' secret seeds."""
    accuracies = []
    for i in range(n):
        params = judges.secret_params("ex02.training", {"seed": 5, "threshold": 0.93}, SECRET, A, f"student-{i}")
        prepared = judges.serve("ex02.training", params).prepared
        g = prepared.given
        outcome, _ = train_numpy_classifier(loss, he_init(g["seed"], 2, g["hidden_units"], g["n_classes"]),
                                            g["x_train"], g["y_train"], g["x_test"], g["n_classes"], g["epochs"],
                                            g["lr"], g["seed"], g["batch_size"])
        accuracies.append(scored(outcome, prepared.private).test_accuracy)
    return accuracies


def run(quick: bool = False) -> list[Measurement]:
    n = 3 if quick else 60
    answers, rows = solution(), []
    for check in CHECKS:
        for hidden in (False, True):
            rate, failed = pass_rate(check, hidden, n, answers)
            label = f"{check}{' (hidden)' if hidden else ''}: solution passes, {n} secret seeds"
            rows.append(Measurement(label, rate, "", "aim 1.0" + (f"; first failure: {failed[0]}" if failed else "")))
    solved = spiral_accuracies(n, answers["two_layer_loss"])
    linear = spiral_accuracies(n, _linear(judge.two_layer_loss))
    rows += [Measurement(f"spirals: solution's lowest test accuracy, {n} seeds", min(solved), "", "aim >= 0.93"),
             Measurement(f"spirals: solution's median test accuracy, {n} seeds", float(np.median(solved)), ""),
             Measurement(f"spirals: linear net's highest test accuracy, {n} seeds", max(linear), "",
                         "aim < 0.65 (the hint's bound)")]
    return rows
