"""Checks for ex02_backprop (what its test cells call): affine and ReLU layers with backward passes, a two-layer
ReLU net's softmax cross-entropy loss and gradients, a gradient check, and training that net on the spirals.

Kernel side: each check runs the student's code on the inputs the grader gives it (course_lib.grading.kernel)
and hands back plain data; the references, the spirals' test labels and every verdict are host side
(course_lib.grading.judges.ex02). Also the notebook's own small problems (`small_problem`, `kink_problem`).
"""

import numpy as np

from course_lib.grading.kernel import channel
from course_lib.grading.kernel.layers import (
    Probe,
    he_init,
    numerical_loss_grads,
    probe_layer,
    probe_loss,
    train_numpy_classifier,
)
from course_lib.grading.kernel.probes import student_error

PARAMS = ("W1", "b1", "W2", "b2")
AFFINE_GRADS = ("dx", "dw", "db")


# ---- random nets (the notebook's problems; the host draws its checks' nets with the same code) -------------


def random_net(rng: np.random.Generator, n: int, d: int, h: int, c: int, kind: str = "smooth") -> dict:
    """{"params": W1 (d, h), b1 (h,), W2 (h, c), b2 (c,); "x" (n, d); "y" (n,) int64}, float64, drawn from
    `rng` with every hidden pre-activation at least 1e-3 from 0 ("smooth"), with example 0 at the kink of
    half the hidden units ("kink"), or with scores near 800, where a naive exp overflows ("large")."""
    while True:
        params = {"W1": rng.normal(size=(d, h)), "b1": rng.normal(size=h),
                  "W2": rng.normal(size=(h, c)), "b2": rng.normal(size=c)}
        x, y = rng.normal(size=(n, d)), rng.integers(0, c, size=n)
        if kind == "kink":
            x[0] = 0.0
            params["b1"][: h // 2] = 0.0
        z = x @ params["W1"] + params["b1"]
        if np.all(np.abs(z[1:] if kind == "kink" else z) > 1e-3):
            break
    if kind == "large":
        params["b2"] = params["b2"] + 800.0
    return {"params": params, "x": x, "y": y}


def small_problem(seed: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """(params, x, y): a small net (3 inputs, 5 hidden units, 3 classes) and a batch of 6, every hidden
    pre-activation far from the kink, so central differences of its loss agree with the true gradient."""
    net = random_net(np.random.default_rng(seed), 6, 3, 5, 3)
    return net["params"], net["x"], net["y"]


def kink_problem(seed: int, offset: float = 3e-6) -> tuple[dict, np.ndarray, np.ndarray]:
    """Like small_problem, but example 0's pre-activation of hidden unit 0 is `offset` (< the step h = 1e-5)
    above 0, so central differences of b1[0] and W1[:, 0] straddle the kink."""
    params, x, y = small_problem(seed)
    params["b1"][0] = offset - x[0] @ params["W1"][:, 0]
    return params, x, y


# ---- layers ------------------------------------------------------------------------------------------------


def _layer_probe(forward, backward, grad_names):
    """given = {"cases": [{"args": [x, ...], "dout": array}, ...]} -> one Probe per case."""

    def probe(given) -> list[Probe]:
        return [probe_layer(forward, backward, c["args"], c["dout"], grad_names) for c in given["cases"]]

    return probe


def check_affine(affine_forward, affine_backward, seed: int, hidden: bool = False) -> None:
    """out = x.reshape(N, D) @ w + b and its gradients dx, dw, db on the grader's inputs."""
    channel.check("ex02.affine", _layer_probe(affine_forward, affine_backward, AFFINE_GRADS), seed=seed,
                  hidden=hidden)


def check_relu_layer(relu_forward, relu_backward, seed: int, hidden: bool = False) -> None:
    """relu_forward -> (max(0, x), cache) and relu_backward -> dout * (x > 0), dtype kept, 0 at the kink."""
    channel.check("ex02.relu_layer", _layer_probe(relu_forward, relu_backward, ("dx",)), seed=seed, hidden=hidden)


# ---- the two-layer net -------------------------------------------------------------------------------------


def _loss_probe(two_layer_loss):
    """given = {"cases": [{"params", "x", "y", "numerical": bool}, ...]} -> {"probes": a Probe per case,
    "numerical": per case, central differences of the student's own loss (or None; also where not asked)}."""

    def probe(given) -> dict:
        cases = given["cases"]
        return {"probes": [probe_loss(two_layer_loss, c["params"], c["x"], c["y"]) for c in cases],
                "numerical": [numerical_loss_grads(two_layer_loss, c["params"], c["x"], c["y"])
                              if c["numerical"] else None for c in cases]}

    return probe


def check_two_layer_loss(two_layer_loss, seed: int, hidden: bool = False) -> None:
    """Loss and gradients on the grader's nets, and finite differences of the student's own loss on them."""
    channel.check("ex02.two_layer_loss", _loss_probe(two_layer_loss), seed=seed, hidden=hidden)


# ---- the gradient check ------------------------------------------------------------------------------------


def tanh_squared_error(params: dict, x: np.ndarray, y: np.ndarray) -> float:
    """The loss of the grader's own net for checking a gradient check (not the exercise's net): scores =
    tanh(x W1 + b1) W2 + b2 (N, C), loss = mean over the N examples of half the squared distance between
    the scores and the one-hot labels. Smooth everywhere, so central differences agree with its gradient."""
    scores = np.tanh(x @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]
    onehot = np.eye(scores.shape[1])[y]
    return float(0.5 * np.sum((scores - onehot) ** 2) / len(y))


def _grader_loss(gradients: dict):
    """loss_fn(params, x, y) -> (loss, grads): the grader's net's loss at `params`, and the gradients the
    grader computed at the problem's parameters (right or not: the student's check must tell)."""

    def loss_fn(params, x, y):
        return tanh_squared_error(params, x, y), {k: np.array(v) for k, v in gradients.items()}

    return loss_fn


def _errors(gradient_check, problem: dict) -> dict:
    """{"errors": {name: float}} as the student's gradient_check reported them, or {"problem": what went
    wrong}: the judge decides whether they are right."""
    params = {k: np.array(v) for k, v in problem["params"].items()}
    try:
        result = gradient_check(_grader_loss(problem["grads"]), params, problem["x"].copy(), problem["y"].copy())
    except Exception as err:  # noqa: BLE001 - a student's bug is data here, not a crash of the grader
        return {"problem": f"raised {student_error(err)}"}
    if not isinstance(result, dict):
        return {"problem": f"returned a {type(result).__name__}, not a dict {{parameter name: relative error}}"}
    try:
        return {"errors": {str(k): float(v) for k, v in result.items()}}
    except Exception:  # noqa: BLE001
        return {"problem": "the relative errors must be numbers (e.g. report.max_error)"}


def check_gradient_check(gradient_check, seed: int, hidden: bool = False) -> None:
    """The student's gradient check on the grader's losses: some with every gradient right, some with one
    parameter's gradient wrong; which ones, only the host knows."""
    channel.check("ex02.gradient_check", lambda given: [_errors(gradient_check, p) for p in given["problems"]],
                  seed=seed, hidden=hidden)


# ---- training on the spirals -------------------------------------------------------------------------------


def _training_probe(two_layer_loss):
    """given = {"x_train" (N, 2), "y_train" (N,), "x_test" (M, 2), "n_classes", "hidden_units", "epochs", "lr",
    "batch_size", "seed"} -> {"outcome": a TrainingOutcome with the trained net's class for each held-out
    input, "params": the trained params (None if training failed)}."""

    def probe(given) -> dict:
        params = he_init(given["seed"], given["x_train"].shape[1], given["hidden_units"], given["n_classes"])
        outcome, trained = train_numpy_classifier(two_layer_loss, params, given["x_train"], given["y_train"],
                                                  given["x_test"], given["n_classes"], given["epochs"], given["lr"],
                                                  given["seed"], given["batch_size"])
        if outcome.error is None:
            print(f"trained in {outcome.train_seconds:.2f} s")
        return {"outcome": outcome, "params": trained}

    return probe


def check_training(two_layer_loss, seed: int, threshold: float, hidden: bool = False) -> None:
    """Train the student's loss with the grader's SGD loop on the grader's spirals; the host counts the
    accuracy of its predictions on held-out points whose labels never come here, and of the trained params."""
    channel.check("ex02.training", _training_probe(two_layer_loss), seed=seed, threshold=threshold, hidden=hidden)
