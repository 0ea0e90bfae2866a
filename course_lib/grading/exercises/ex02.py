"""Checks for ex02_backprop: affine and ReLU layers with backward passes, a two-layer ReLU net's softmax
cross-entropy loss and gradients, a gradient check, and training that net on the spirals.

The reference is course_lib.activations (affine_*/relu_*); the two-layer loss below is built from it.
"""

import math

import numpy as np

from course_lib import activations as reference
from course_lib.data import spirals
from course_lib.gradcheck import check_gradient
from course_lib.grading import judged
from course_lib.grading.inputs import elementwise_inputs
from course_lib.grading.layers import (
    NUMERICAL_TOLERANCE,
    Case,
    GradientMisconception,
    expected_layer,
    expected_loss,
    matches,
    numerical_loss_grads,
    probe_layer,
    probe_loss,
    probe_verdict,
    train_numpy_classifier,
)
from course_lib.grading.training import Hint, TrainingOutcome, accuracy_verdict

PARAMS = ("W1", "b1", "W2", "b2")
AFFINE_GRADS = ("dx", "dw", "db")


# ---- affine layer -----------------------------------------------------------------------------------

_AFFINE_SHAPES = {  # (x shape, M): N, D = prod(d1..dk) and M all different, so a wrong axis shows
    False: [((4, 5), 3, np.float64), ((3, 2, 3), 4, np.float64), ((2, 3, 2, 2), 5, np.float32)],
    True: [((6, 4), 2, np.float64), ((5, 3, 2), 7, np.float64), ((3, 2, 2, 2), 4, np.float64),
           ((7, 3, 3), 2, np.float32), ((1, 5), 3, np.float64)],
}


def affine_cases(seed: int, hidden: bool = False) -> list[Case]:
    rng = np.random.default_rng(seed)
    cases = []
    for shape, m, dtype in _AFFINE_SHAPES[hidden]:
        d = math.prod(shape[1:])
        x, w, b = rng.normal(size=shape), rng.normal(size=(d, m)), rng.normal(size=m)
        dout = rng.normal(size=(shape[0], m))
        cases.append(Case({"x": x.astype(dtype), "w": w.astype(dtype), "b": b.astype(dtype)}, dout.astype(dtype)))
    return cases


def _shape_of(name):
    return lambda p: None if p.value(name) is None else p.value(name).shape


DB_WRONG_AXIS = GradientMisconception(
    lambda p, e, c: _shape_of("db")(p) == (c.inputs["x"].shape[0],) and matches(p, "db", c.dout.sum(axis=1)),
    "db summed over the wrong axis: it must have shape (M,), one entry per output, summed over the N examples "
    "(axis 0)")
DB_SUMMED_ALL = GradientMisconception(
    lambda p, e, c: _shape_of("db")(p) == (), "db summed over every axis: it must have shape (M,), summed over "
    "the N examples only (axis 0)")
DX_NOT_RESHAPED = GradientMisconception(
    lambda p, e, c: (c.inputs["x"].ndim > 2 and _shape_of("dx")(p) == (c.inputs["x"].shape[0], e["dw"].shape[0])
                     and matches(p, "dx", e["dx"].reshape(_shape_of("dx")(p)), 1e-4, 1e-5)),
    "dx not reshaped back to x's shape: dout @ w.T is (N, D), but the gradient must have x's shape (N, d1, ..., dk)")
DW_TRANSPOSED = GradientMisconception(
    lambda p, e, c: matches(p, "dw", e["dw"].T, 1e-4, 1e-5) and e["dw"].shape[0] != e["dw"].shape[1],
    "dw is transposed (dout.T @ x): it must have w's shape (D, M), dw = x.T @ dout with x reshaped to (N, D)")


def judge_affine(data: dict, seed: int, hidden: bool = False) -> str | None:
    """data: {"borrowed": names, "probes": one Probe per affine_cases(seed, hidden)}."""
    cases = affine_cases(seed, hidden)
    expected = [expected_layer(reference.affine_forward, reference.affine_backward, c, AFFINE_GRADS) for c in cases]
    return judged.borrowed_message(data["borrowed"]) or probe_verdict(
        "affine_forward/affine_backward", data["probes"], cases, expected,
        [DB_WRONG_AXIS, DB_SUMMED_ALL, DX_NOT_RESHAPED, DW_TRANSPOSED], hidden)


def check_affine(affine_forward, affine_backward, seed: int, hidden: bool = False) -> None:
    """out = x.reshape(N, D) @ w + b and its gradients dx, dw, db, against course_lib.activations."""
    probes = [probe_layer(affine_forward, affine_backward, c, AFFINE_GRADS) for c in affine_cases(seed, hidden)]
    data = {"borrowed": judged.borrowed(affine_forward, affine_backward), "probes": probes}
    judged.check(judge_affine, data, seed=seed, hidden=hidden)


# ---- ReLU layer -------------------------------------------------------------------------------------


def relu_cases(seed: int, hidden: bool = False) -> list[Case]:
    """Arrays of several shapes in float64 and float32 holding exact zeros (+0 and -0) and +-1e-12."""
    rng = np.random.default_rng(seed + 1)
    inputs = elementwise_inputs(seed, extremes=False)
    if not hidden:
        inputs = [x for x in inputs if x.ndim >= 1][:4]
    return [Case({"x": x}, rng.normal(size=x.shape).astype(x.dtype)) for x in inputs]


def _relu_dx(p, c, target):
    return matches(p, "dx", np.asarray(c.dout, np.float64) * target)


RELU_KINK = GradientMisconception(
    lambda p, e, c: _relu_dx(p, c, c.inputs["x"] >= 0),
    "relu_backward passes gradient at x == 0: there ReLU has no derivative, and this course (like torch) uses "
    "the subgradient 0, so the mask is x > 0, not x >= 0")
RELU_TIMES_OUTPUT = GradientMisconception(
    lambda p, e, c: _relu_dx(p, c, np.maximum(c.inputs["x"].astype(np.float64), 0)),
    "relu_backward multiplied dout by the layer's output relu(x): the local gradient is the 0/1 mask "
    "(1 where x > 0), not the activation's value")
RELU_PASSES_ALL = GradientMisconception(
    lambda p, e, c: _relu_dx(p, c, 1.0),
    "relu_backward let dout through everywhere: it must be blocked (0) wherever the input was not positive "
    "(if you cached the output, note that out >= 0 holds everywhere; out > 0 is the mask)")


def judge_relu_layer(data: dict, seed: int, hidden: bool = False) -> str | None:
    """data: {"borrowed": names, "probes": one Probe per relu_cases(seed, hidden)}."""
    cases = relu_cases(seed, hidden)
    expected = [expected_layer(reference.relu_forward, reference.relu_backward, c, ("dx",)) for c in cases]
    return judged.borrowed_message(data["borrowed"]) or probe_verdict(
        "relu_forward/relu_backward", data["probes"], cases, expected,
        [RELU_KINK, RELU_TIMES_OUTPUT, RELU_PASSES_ALL], hidden)


def check_relu_layer(relu_forward, relu_backward, seed: int, hidden: bool = False) -> None:
    """relu_forward -> (max(0, x), cache) and relu_backward -> dout * (x > 0), dtype kept, 0 at the kink."""
    probes = [probe_layer(relu_forward, relu_backward, c, ("dx",)) for c in relu_cases(seed, hidden)]
    data = {"borrowed": judged.borrowed(relu_forward, relu_backward), "probes": probes}
    judged.check(judge_relu_layer, data, seed=seed, hidden=hidden)


# ---- the two-layer net ------------------------------------------------------------------------------


def softmax_cross_entropy(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of softmax(scores) (N, C) for labels y (N,), and its gradient w.r.t. scores;
    computed from scores minus each row's max, so it never overflows."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = len(y)
    loss = -log_probs[np.arange(n), y].mean()
    dscores = np.exp(log_probs)
    dscores[np.arange(n), y] -= 1
    return float(loss), dscores / n


def two_layer_loss(params: dict, x: np.ndarray, y: np.ndarray | None = None, relu: bool = True,
                   at_zero: float = 0.0):
    """The reference: scores = relu(x W1 + b1) W2 + b2; with y, (mean softmax cross-entropy, grads dict).

    `relu=False` and `at_zero` build the wrong variants the misconceptions recognise."""
    hidden, cache1 = reference.affine_forward(x, params["W1"], params["b1"])
    z = hidden
    if relu:
        hidden = reference.relu(z)
    scores, cache2 = reference.affine_forward(hidden, params["W2"], params["b2"])
    if y is None:
        return scores
    loss, dscores = softmax_cross_entropy(scores, y)
    dhidden, dw2, db2 = reference.affine_backward(dscores, cache2)
    dz = dhidden * reference.relu_grad(z, at_zero) if relu else dhidden
    _, dw1, db1 = reference.affine_backward(dz, cache1)
    return loss, {"W1": dw1, "b1": db1, "W2": dw2, "b2": db2}


def init_params(rng: np.random.Generator, d: int, h: int, c: int) -> dict:
    """He-normal weights, zero biases."""
    return {"W1": rng.normal(0, math.sqrt(2 / d), (d, h)), "b1": np.zeros(h),
            "W2": rng.normal(0, math.sqrt(2 / h), (h, c)), "b2": np.zeros(c)}


def _net_case(rng, n: int, d: int, h: int, c: int, kind: str = "smooth") -> Case:
    """Random net and data with every hidden pre-activation at least 1e-3 from 0 ("smooth"), one example at
    the kink of half the hidden units ("kink"), or scores near 800, where a naive exp overflows ("large")."""
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
    return Case({"x": x, "y": y, **params})


def net_cases(seed: int, hidden: bool = False) -> list[Case]:
    rng = np.random.default_rng(seed)
    if not hidden:
        return [_net_case(rng, 5, 4, 6, 3), _net_case(rng, 4, 3, 5, 2, "large")]
    return [_net_case(rng, 7, 3, 8, 4), _net_case(rng, 6, 5, 4, 3), _net_case(rng, 5, 4, 6, 3, "kink"),
            _net_case(rng, 6, 3, 5, 4, "large")]


def _variant(p, c, **kw) -> bool:
    params = {k: c.inputs[k] for k in PARAMS}
    loss, grads = two_layer_loss(params, c.inputs["x"], c.inputs["y"], **kw)
    return matches(p, "loss", loss) and all(matches(p, k, grads[k]) for k in PARAMS)


def _scaled(p, e, factor) -> bool:
    return all(matches(p, k, e[k] * factor) for k in PARAMS)


OVERFLOW = GradientMisconception(
    lambda p, e, c: bool(p.warnings) or (p.value("loss") is not None and not np.all(np.isfinite(p.value("loss")))),
    "softmax not stabilised (overflow): scores near 800 make np.exp overflow. Subtract each row's largest score "
    "before np.exp; softmax does not change when a row's scores all shift by the same amount")
NO_RELU = GradientMisconception(
    lambda p, e, c: _variant(p, c, relu=False),
    "no ReLU between the layers: scores must be relu(x W1 + b1) W2 + b2 (without it the net is linear)")
NET_KINK = GradientMisconception(
    lambda p, e, c: _variant(p, c, at_zero=1.0),
    "the ReLU passed gradient where its input was exactly 0: the mask is z > 0 (subgradient 0 at the kink)")
NOT_DIVIDED_BY_N = GradientMisconception(
    lambda p, e, c: matches(p, "loss", e["loss"]) and _scaled(p, e, len(c.inputs["y"])),
    "the gradients are N times too large: the loss is the mean over the N examples, so dscores must be "
    "divided by N")
NET_DB_WRONG_AXIS = GradientMisconception(
    lambda p, e, c: any(_shape_of(k)(p) == (len(c.inputs["y"]),) != e[k].shape for k in ("b1", "b2")),
    "a bias gradient has shape (N,): db summed over the wrong axis; sum dout over the N examples (axis 0)")
NET_DW_TRANSPOSED = GradientMisconception(
    lambda p, e, c: any(_shape_of(k)(p) == e[k].T.shape != e[k].shape for k in ("W1", "W2")),
    "a weight gradient is transposed: dW must have W's shape, dW = inputs.T @ dout")
LOSS_SUMMED = GradientMisconception(
    lambda p, e, c: matches(p, "loss", e["loss"] * len(c.inputs["y"])),
    "the loss is summed over the examples: it must be the mean cross-entropy over the N examples")


def _is_smooth(case: Case) -> bool:
    """No example at the kink: finite differences of the loss are its gradient there."""
    return bool((case.inputs["x"][0] != 0).any())


def _is_large(case: Case) -> bool:
    return bool(case.inputs["b2"].min() > 100)


def _numerical_or_none(two_layer_loss_fn, case: Case) -> dict | None:
    """Central differences of the student's own loss on `case`, or None if it cannot be evaluated."""
    try:
        with np.errstate(all="ignore"):
            return numerical_loss_grads(two_layer_loss_fn, case, PARAMS)
    except Exception:  # noqa: BLE001 - the loss probe reports the student's error
        return None


def _finite_difference_note(probes: list, numerical: list, cases: list[Case]) -> str:
    """Whether the student's gradients match finite differences of the student's own loss (smooth cases)."""
    for probe, grads, case in zip(probes, numerical, cases, strict=True):
        if probe.error or any(o.error for o in probe.values.values()) or grads is None:
            return ""
        if probe_verdict("", [probe], [case], [grads], tolerance=NUMERICAL_TOLERANCE):
            wrong = [k for k in PARAMS if not matches(probe, k, grads[k], *NUMERICAL_TOLERANCE)]
            return (f" Your gradients of {', '.join(wrong)} do not match finite differences of your own loss: "
                    "the backward pass does not differentiate your forward pass.")
    return (" Your gradients do match finite differences of your own loss, so the forward pass or the loss "
            "itself computes something else.")


def judge_two_layer_loss(data: dict, seed: int, hidden: bool = False) -> str | None:
    """data: {"probes": a Probe per net_cases(seed, hidden), "numerical": for each smooth case, the central
    differences of the student's own loss (or None)}. Judged against the reference, then against those."""
    cases = net_cases(seed, hidden)
    probes = data["probes"]
    smooth = [i for i, c in enumerate(cases) if _is_smooth(c)]
    numerical = dict(zip(smooth, data["numerical"], strict=True))
    expected = [expected_loss(two_layer_loss, c, PARAMS) for c in cases]
    misconceptions = [NET_DB_WRONG_AXIS, NET_DW_TRANSPOSED, NO_RELU, NOT_DIVIDED_BY_N, LOSS_SUMMED, NET_KINK]
    message = probe_verdict("two_layer_loss", probes, cases, expected, misconceptions, hidden, warn_free=True)
    if message:
        if any(OVERFLOW.applies(probes[i], expected[i], cases[i]) for i, c in enumerate(cases) if _is_large(c)):
            return f"two_layer_loss: {OVERFLOW.message}"
        if not any(m.message in message for m in misconceptions):
            small = [i for i in smooth if not _is_large(cases[i])]
            message += _finite_difference_note([probes[i] for i in small], [numerical[i] for i in small],
                                               [cases[i] for i in small])
        return message
    if any(numerical[i] is None for i in smooth):
        return "two_layer_loss: finite differences of your loss could not be computed"
    message = probe_verdict("two_layer_loss", [probes[i] for i in smooth], [cases[i] for i in smooth],
                            [numerical[i] for i in smooth], hidden=hidden, tolerance=NUMERICAL_TOLERANCE)
    return f"{message}: the gradients disagree with finite differences of your own loss" if message else None


def check_two_layer_loss(two_layer_loss_fn, seed: int, hidden: bool = False) -> None:
    """Loss and gradients against the reference, and against finite differences of the student's own loss."""
    cases = net_cases(seed, hidden)
    probes = [probe_loss(two_layer_loss_fn, c, PARAMS) for c in cases]
    numerical = [_numerical_or_none(two_layer_loss_fn, c) for c in cases if _is_smooth(c)]
    judged.check(judge_two_layer_loss, {"probes": probes, "numerical": numerical}, seed=seed, hidden=hidden)


# ---- the gradient check -----------------------------------------------------------------------------


def small_problem(seed: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """(params, x, y): a small net and batch, no hidden pre-activation near the kink, on which
    course_lib.gradcheck finds every relative error of the reference gradients below 1e-8."""
    rng = np.random.default_rng(seed)
    while True:
        case = _net_case(rng, 6, 3, 5, 3)
        params, x, y = {k: case.inputs[k] for k in PARAMS}, case.inputs["x"], case.inputs["y"]
        _, grads = two_layer_loss(params, x, y)
        if all(check_gradient(lambda p, k=k: two_layer_loss({**params, k: p}, x, y)[0], grads[k],
                              params[k].copy()).max_error < 1e-8 for k in PARAMS):
            return params, x, y


def kink_problem(seed: int, offset: float = 3e-6) -> tuple[dict, np.ndarray, np.ndarray]:
    """Like small_problem, but example 0's pre-activation of hidden unit 0 is `offset` (< the step h = 1e-5)
    above 0, so central differences of b1[0] and W1[:, 0] straddle the kink."""
    params, x, y = small_problem(seed)
    params["b1"][0] = offset - x[0] @ params["W1"][:, 0]
    return params, x, y


def _wrong_gradient(name: str, factor: float = 1.5):
    def loss(params, x, y=None):
        if y is None:
            return two_layer_loss(params, x)
        value, grads = two_layer_loss(params, x, y)
        return value, {**grads, name: grads[name] * factor}
    return loss


def _run_gradient_check(gradient_check, loss_fn, params, x, y) -> tuple[dict | None, str | None]:
    """The student's gradient_check on the grader's loss: ({name: error}, None) or (None, what went wrong)."""
    try:
        result = gradient_check(loss_fn, {k: v.copy() for k, v in params.items()}, x.copy(), y.copy())
    except Exception as err:  # noqa: BLE001
        return None, f"raised {type(err).__name__}: {err}"
    if not isinstance(result, dict):
        return None, f"returned a {type(result).__name__}, not a dict {{parameter name: relative error}}"
    if set(result) != set(params):
        return None, (f"returned errors for {sorted(result)}, but the parameters are {sorted(params)}: "
                      "check every parameter")
    try:
        errors = {k: float(v) for k, v in result.items()}
    except (TypeError, ValueError):
        return None, "the relative errors must be numbers (e.g. report.max_error)"
    if not all(math.isfinite(v) and v >= 0 for v in errors.values()):
        return None, f"the relative errors must be finite and >= 0, got {errors}"
    return errors, None


def _wrong_parameter(seed: int, hidden: bool) -> str:
    return PARAMS[seed % len(PARAMS)] if hidden else "W2"


def judge_gradient_check(data: dict, seed: int, hidden: bool = False) -> str | None:
    """data: {"right": (errors, problem), "wrong": (errors, problem)}: what the student's gradient_check
    reported for the correct loss and for one with a wrong gradient (see _run_gradient_check)."""
    errors, problem = data["right"]
    if problem:
        return f"gradient_check {problem}"
    bad = {k: v for k, v in errors.items() if v > 1e-5}
    if bad:
        return (f"gradient_check reported relative errors {bad} for a loss whose gradients are right (expected "
                "below 1e-7): does f(p) evaluate the loss at the perturbed parameter p, and is the analytic "
                "gradient the one for that same parameter?")
    wrong = _wrong_parameter(seed, hidden)
    errors, problem = data["wrong"]
    if problem:
        return f"gradient_check {problem}"
    if errors[wrong] < 1e-3:
        where = "a hidden test's parameter" if hidden else f"'{wrong}'"
        return (f"gradient_check passed a loss whose gradient for {where} is 1.5 times too large (relative error "
                f"{errors[wrong]:.1e}): a check must compare the analytic gradient with finite differences of the "
                "loss, never with itself")
    others = {k: v for k, v in errors.items() if k != wrong and v > 1e-5}
    if others:
        return (f"gradient_check blamed {sorted(others)}, whose gradients are right: only one parameter's "
                "gradient was wrong")
    return None


def check_gradient_check(gradient_check, seed: int, hidden: bool = False) -> None:
    """The student's gradient check passes a correct loss and catches a loss with one wrong gradient."""
    params, x, y = small_problem(seed)
    right = _run_gradient_check(gradient_check, two_layer_loss, params, x, y)
    wrong = _run_gradient_check(gradient_check, _wrong_gradient(_wrong_parameter(seed, hidden)), params, x, y)
    judged.check(judge_gradient_check, {"right": right, "wrong": wrong}, seed=seed, hidden=hidden)


# ---- training on the spirals ------------------------------------------------------------------------

HIDDEN_UNITS, EPOCHS, LR, BATCH_SIZE = 64, 30, 1.0, 50
# A linear classifier (the same loop without the ReLU) reaches 0.50-0.57 on these spirals (seeds 0-19).
LINEAR_HINT = Hint(lambda o: o.test_accuracy < 0.65,
                   "is the ReLU applied between the layers? Without it the network is linear, and a linear "
                   "classifier gets about 0.55 on the spirals")
CHANCE_HINT = Hint(lambda o: o.test_accuracy < 0.45,
                   "near chance (1/3): did training move the weights? The grader steps params -= lr * grad, so "
                   "the gradients must have the right sign and be those of the mean loss")


def spiral_data(seed: int):
    """The grader's spirals: 3 classes of 1,000 points (1,800 train, 600 test), noise 0.2."""
    return spirals(n_per_class=1000, n_classes=3, noise=0.2, seed=seed)


def train_two_layer(two_layer_loss_fn, seed: int):
    """Train the student's loss with the grader's SGD loop: 64 hidden units, 30 epochs, lr 1, batches of 50."""
    data = spiral_data(seed)
    params = init_params(np.random.default_rng(seed), data.n_features, HIDDEN_UNITS, data.n_classes)
    return train_numpy_classifier(two_layer_loss_fn, params, data, EPOCHS, LR, seed, BATCH_SIZE)


def judge_training(outcome: TrainingOutcome, seed: int, threshold: float, hidden: bool = False) -> str | None:
    """The trained net's predictions against the spirals' test labels, re-created here from the seed."""
    return accuracy_verdict("spirals", outcome, spiral_data(seed).y_test, threshold, [CHANCE_HINT, LINEAR_HINT],
                            max_seconds=10.0)


def check_training(two_layer_loss_fn, seed: int, threshold: float, hidden: bool = False) -> None:
    outcome = train_two_layer(two_layer_loss_fn, seed)
    if outcome.error is None:
        print(f"test accuracy {outcome.test_accuracy:.3f} after {outcome.train_seconds:.2f} s of training")
    judged.check(judge_training, outcome, seed=seed, threshold=threshold, hidden=hidden)
