"""Judges for ex02_backprop: affine and ReLU layers with backward passes, a two-layer ReLU net's softmax
cross-entropy loss and gradients, a gradient check, and training that net on the spirals.

Host side. Every check's inputs are drawn here from its (secret) seed; the references (course_lib.activations'
affine_*/relu_*, the two-layer loss below, the gradients of the gradient check's losses) and the spirals' test
labels never enter the sandbox.
"""

import math

import numpy as np

from course_lib import activations as reference
from course_lib.data import spirals
from course_lib.gradcheck import check_gradient
from course_lib.grading.checks.ex02 import AFFINE_GRADS, PARAMS, random_net, tanh_squared_error
from course_lib.grading.judges import Judge, Prepared
from course_lib.grading.judges.layers import (
    NUMERICAL_TOLERANCE,
    Case,
    GradientMisconception,
    expected_layer,
    expected_loss,
    gradients,
    matches,
    probe_verdict,
    probes,
)
from course_lib.grading.judges.training import Hint, accuracy_verdict
from course_lib.grading.kernel.inputs import elementwise_inputs
from course_lib.grading.kernel.layers import he_init
from course_lib.grading.kernel.training import TrainingOutcome

# What ex02 asks students to write, and what is the same function under another name (the ReLU and its
# derivative the layers wrap, and the other CS231n-style layers: leaky_relu_forward(x, 0.0) is relu_forward).
WRITTEN = {"course_lib.activations": ["affine_forward", "affine_backward", "relu_forward", "relu_backward", "relu",
                                      "relu_grad", "leaky_relu_forward", "leaky_relu_backward", "maxout_forward",
                                      "maxout_backward"]}


def _draws(seed: int, n: int, below: int = 2**62) -> list[int]:
    """`n` seeds in [0, below) drawn from `seed`: knowing one tells nothing about the others (nor about `seed`)."""
    return [int(s) for s in np.random.default_rng(seed).integers(0, below, size=n)]


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


def _layer_judge(name: str, make_cases, forward, backward, grad_names, misconceptions) -> Judge:
    """A Judge for a CS231n layer: the student's (out, grads) on each case against the reference's."""

    def prepare(params: dict) -> Prepared:
        cases = make_cases(params["seed"], bool(params.get("hidden")))
        return Prepared({"cases": [c.layer_given() for c in cases]}, cases)

    def decide(data, prepared: Prepared, params: dict) -> str | None:
        cases = prepared.private
        try:
            found = probes(data, len(cases))
        except ValueError as err:
            return f"{name}: the check returned {err}"
        expected = [expected_layer(forward, backward, c, grad_names) for c in cases]
        return probe_verdict(name, found, cases, expected, misconceptions, bool(params.get("hidden")))

    return Judge(prepare, decide)


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


def _net_case(rng, n: int, d: int, h: int, c: int, kind: str = "smooth") -> Case:
    net = random_net(rng, n, d, h, c, kind)
    return Case({"x": net["x"], "y": net["y"], **net["params"]})


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
NET_MISCONCEPTIONS = [NET_DB_WRONG_AXIS, NET_DW_TRANSPOSED, NO_RELU, NOT_DIVIDED_BY_N, LOSS_SUMMED, NET_KINK]


def _is_smooth(case: Case) -> bool:
    """No example at the kink: finite differences of the loss are its gradient there."""
    return bool((case.inputs["x"][0] != 0).any())


def _is_large(case: Case) -> bool:
    return bool(case.inputs["b2"].min() > 100)


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


def _prepare_two_layer(params: dict) -> Prepared:
    cases = net_cases(params["seed"], bool(params.get("hidden")))
    given = [{"params": {k: c.inputs[k] for k in PARAMS}, "x": c.inputs["x"], "y": c.inputs["y"],
              "numerical": _is_smooth(c)} for c in cases]
    return Prepared({"cases": given}, cases)


def _loss_data(data, cases: list[Case]) -> tuple[list, list]:
    """(probes, numerical) from the check's data, checked; ValueError when it is not what the probe writes."""
    if not (isinstance(data, dict) and set(data) == {"probes", "numerical"} and isinstance(data["numerical"], list)
            and len(data["numerical"]) == len(cases)):
        raise ValueError("not a probe and finite differences per test input")
    numerical = [gradients(g, {k: c.inputs[k].shape for k in PARAMS}) for g, c in zip(data["numerical"], cases,
                                                                                          strict=True)]
    return probes(data["probes"], len(cases)), numerical


def _decide_two_layer(data, prepared: Prepared, params: dict) -> str | None:
    """Judged against the reference, then against finite differences of the student's own loss."""
    cases, hidden = prepared.private, bool(params.get("hidden"))
    try:
        found, numerical = _loss_data(data, cases)
    except ValueError as err:
        return f"two_layer_loss: the check returned {err}"
    smooth = [i for i, c in enumerate(cases) if _is_smooth(c)]
    expected = [expected_loss(two_layer_loss, c, PARAMS) for c in cases]
    message = probe_verdict("two_layer_loss", found, cases, expected, NET_MISCONCEPTIONS, hidden, warn_free=True)
    if message:
        if any(OVERFLOW.applies(found[i], expected[i], cases[i]) for i, c in enumerate(cases) if _is_large(c)):
            return f"two_layer_loss: {OVERFLOW.message}"
        if not any(m.message in message for m in NET_MISCONCEPTIONS):
            small = [i for i in smooth if not _is_large(cases[i])]
            message += _finite_difference_note([found[i] for i in small], [numerical[i] for i in small],
                                               [cases[i] for i in small])
        return message
    if any(numerical[i] is None for i in smooth):
        return "two_layer_loss: finite differences of your loss could not be computed"
    message = probe_verdict("two_layer_loss", [found[i] for i in smooth], [cases[i] for i in smooth],
                            [numerical[i] for i in smooth], hidden=hidden, tolerance=NUMERICAL_TOLERANCE)
    return f"{message}: the gradients disagree with finite differences of your own loss" if message else None


# ---- the gradient check -----------------------------------------------------------------------------

WRONG_FACTOR = 1.5
RIGHT_BELOW, WRONG_ABOVE = 1e-5, 1e-3  # what a gradient check must report for right and wrong gradients

# The misconceptions a gradient check's results reveal: each the end of a message that also holds the numbers.
CHECK_FAILS_RIGHT = ("does f(p) evaluate the loss at the perturbed parameter p, and is the analytic gradient the one "
                     "for that same parameter?")
CHECK_PASSES_WRONG = ("a check must compare the analytic gradient with finite differences of the loss, never with "
                      "itself")
CHECK_BLAMES_RIGHT = "only one parameter's gradient was wrong"
CHECK_EVERY = "check every parameter"


def tanh_squared_error_grads(params: dict, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """The gradients of exercises.ex02.tanh_squared_error (the gradient check's loss) w.r.t. each parameter."""
    a = np.tanh(x @ params["W1"] + params["b1"])
    scores = a @ params["W2"] + params["b2"]
    dscores = (scores - np.eye(scores.shape[1])[y]) / len(y)
    dz = (dscores @ params["W2"].T) * (1 - a**2)
    return {"W1": x.T @ dz, "b1": dz.sum(axis=0), "W2": a.T @ dscores, "b2": dscores.sum(axis=0)}


def _errors_of(params: dict, x, y, grads: dict) -> dict[str, float]:
    """What course_lib.gradcheck reports for `grads` of the gradient check's loss: {name: max_error}."""
    return {k: check_gradient(lambda p, k=k: tanh_squared_error({**params, k: p}, x, y), grads[k],
                              params[k].copy()).max_error for k in PARAMS}


def gradcheck_problem(rng: np.random.Generator, wrong: str | None) -> dict:
    """A net for the gradient check's loss (3 inputs, 5 hidden units, 3 classes, 6 examples) and its gradients,
    with `wrong`'s (if any) WRONG_FACTOR times too large; drawn again until course_lib.gradcheck's errors
    are below 1e-8 for the right gradients and above 0.1 for the wrong one, far from both thresholds."""
    while True:
        net = random_net(rng, 6, 3, 5, 3)
        params, x, y = net["params"], net["x"], net["y"]
        grads = tanh_squared_error_grads(params, x, y)
        if wrong is not None:
            grads[wrong] = grads[wrong] * WRONG_FACTOR
        errors = _errors_of(params, x, y, grads)
        if all(e < 1e-8 for k, e in errors.items() if k != wrong) and (wrong is None or errors[wrong] > 0.1):
            return {"params": params, "x": x, "y": y, "grads": grads}


def _wrong_parameters(rng: np.random.Generator, n: int) -> list[str | None]:
    """For each of `n` problems, the parameter whose gradient is wrong, or None: at least one of each kind."""
    options = [None, *PARAMS]
    wrong = [None, PARAMS[rng.integers(len(PARAMS))]] + [options[rng.integers(len(options))] for _ in range(n - 2)]
    return [wrong[i] for i in rng.permutation(n)]


def _prepare_gradient_check(params: dict) -> Prepared:
    rng = np.random.default_rng(params["seed"])
    wrong = _wrong_parameters(rng, 4 if params.get("hidden") else 2)
    return Prepared({"problems": [gradcheck_problem(rng, w) for w in wrong]}, wrong)


def _reported(result, names) -> tuple[dict | None, str | None]:
    """({name: error}, None) from one problem's result, or (None, what is wrong with it)."""
    if not isinstance(result, dict) or len(result) != 1:
        raise ValueError("not a result per problem")
    if "problem" in result:
        return None, str(result["problem"])
    errors = result.get("errors")
    if not (isinstance(errors, dict) and all(isinstance(v, float | int) for v in errors.values())):
        raise ValueError("not a result per problem")
    if set(errors) != set(names):
        return None, f"returned errors for {sorted(errors)}, but the parameters are {sorted(names)}: {CHECK_EVERY}"
    errors = {k: float(v) for k, v in errors.items()}
    if not all(math.isfinite(v) and v >= 0 for v in errors.values()):
        return None, f"the relative errors must be finite and >= 0, got {errors}"
    return errors, None


def _right_problem(errors: dict) -> str | None:
    bad = {k: v for k, v in errors.items() if v > RIGHT_BELOW}
    if bad:
        return (f"gradient_check reported relative errors {bad} for a loss whose gradients are right (expected "
                f"below {RIGHT_BELOW:g}, the grader's bar): {CHECK_FAILS_RIGHT}")
    return None


def _wrong_problem(errors: dict, wrong: str, hidden: bool) -> str | None:
    if errors[wrong] < WRONG_ABOVE:
        where = "a hidden test's parameter" if hidden else f"'{wrong}'"
        return (f"gradient_check passed a loss whose gradient for {where} is {WRONG_FACTOR} times too large "
                f"(relative error {errors[wrong]:.1e}): {CHECK_PASSES_WRONG}")
    others = {k: v for k, v in errors.items() if k != wrong and v > RIGHT_BELOW}
    if others:
        return f"gradient_check blamed {sorted(others)}, whose gradients are right: {CHECK_BLAMES_RIGHT}"
    return None


def _decide_gradient_check(data, prepared: Prepared, params: dict) -> str | None:
    """Each problem's reported errors: tiny for right gradients; for a wrong one, large for it alone. Any
    problem with the results comes first, then the right problems, then the wrong ones."""
    wrong_of = prepared.private
    if not (isinstance(data, list) and len(data) == len(wrong_of)):
        return "gradient_check: the check returned not a result per problem"
    try:
        reported = [_reported(r, PARAMS) for r in data]
    except ValueError as err:
        return f"gradient_check: the check returned {err}"
    problem = next((p for _, p in reported if p), None)
    if problem:
        return f"gradient_check {problem}"
    verdicts = [_right_problem(e) for (e, _), w in zip(reported, wrong_of, strict=True) if w is None]
    verdicts += [_wrong_problem(e, w, bool(params.get("hidden")))
                 for (e, _), w in zip(reported, wrong_of, strict=True) if w is not None]
    return next((v for v in verdicts if v), None)


# ---- training on the spirals ------------------------------------------------------------------------

HIDDEN_UNITS, EPOCHS, LR, BATCH_SIZE = 64, 30, 1.0, 50
# A linear classifier (the same loop without the ReLU) reaches 0.50-0.57 on these spirals.
LINEAR_HINT = Hint(lambda o: o.test_accuracy < 0.65,
                   "is the ReLU applied between the layers? Without it the network is linear, and a linear "
                   "classifier gets about 0.55 on the spirals")
CHANCE_HINT = Hint(lambda o: o.test_accuracy < 0.45,
                   "near chance (1/3): did training move the weights? The grader steps params -= lr * grad, so "
                   "the gradients must have the right sign and be those of the mean loss")


def spiral_data(seed: int):
    """The grader's spirals for a check's seed: 3 classes of 1,000 points (1,800 train, 600 test), noise 0.2.
    Their own seed is below 2**31 (sklearn's split takes no more): trying every one against the training
    points takes hours, far past any cell's time limit."""
    return spirals(n_per_class=1000, n_classes=3, noise=0.2, seed=_draws(seed, 1, 2**31)[0])


def _prepare_training(params: dict) -> Prepared:
    """The training data and held-out inputs go to the sandbox with a seed for the net's initialisation and
    batch order (drawn from the check's seed like the data's, so it does not lead back to the data); the
    held-out labels stay here."""
    data = spiral_data(params["seed"]).numpy()
    given = {"x_train": data.x_train, "y_train": data.y_train, "x_test": data.x_test, "n_classes": data.n_classes,
             "hidden_units": HIDDEN_UNITS, "epochs": EPOCHS, "lr": LR, "batch_size": BATCH_SIZE,
             "seed": _draws(params["seed"] + 1, 1)[0]}
    return Prepared(given, data.y_test)


def _trained(data, shapes: dict) -> tuple[TrainingOutcome, dict | None]:
    """(outcome, trained params) from the check's data, checked; ValueError when it is not what the probe
    writes."""
    if not (isinstance(data, dict) and set(data) == {"outcome", "params"} and isinstance(data["outcome"],
                                                                                        TrainingOutcome)):
        raise ValueError("no training outcome")
    return data["outcome"], gradients(data["params"], shapes)


def _decide_training(data, prepared: Prepared, params: dict) -> str | None:
    """The trained net's predictions against the held-out labels; then the same for the classes the trained
    params give on the host (relu(x W1 + b1) W2 + b2): scores that do not come from them earn nothing. The
    time training takes is bounded by the cell's time limit, which the host measures."""
    given, labels, threshold = prepared.given, prepared.private, float(params["threshold"])
    d, c = given["x_train"].shape[1], given["n_classes"]
    shapes = {"W1": (d, HIDDEN_UNITS), "b1": (HIDDEN_UNITS,), "W2": (HIDDEN_UNITS, c), "b2": (c,)}
    try:
        outcome, trained = _trained(data, shapes)
    except ValueError as err:
        return f"spirals: the check returned {err}"
    start = he_init(given["seed"], d, HIDDEN_UNITS, c)
    if trained is not None and all(np.array_equal(trained[k], start[k]) for k in start):
        return ("spirals: training did not move the weights: every gradient two_layer_loss returned was zero. "
                "The grader steps params -= lr * grad with the gradients of the mean loss")
    message = accuracy_verdict("spirals", outcome, labels, threshold, [CHANCE_HINT, LINEAR_HINT])
    if message:
        return message
    if trained is None:
        return "spirals: the check returned no trained params"
    with np.errstate(all="ignore"):
        classes = two_layer_loss(trained, np.asarray(given["x_test"], np.float64)).argmax(axis=1)
    accuracy = float(np.mean(classes == labels))
    if accuracy < threshold:
        return (f"spirals: the predictions reach the threshold, but the trained params do not: relu(x W1 + b1) "
                f"W2 + b2 with them has test accuracy {accuracy:.3f}. Called without labels, two_layer_loss must "
                "return the scores of the net the params describe")
    return None


JUDGES = {
    "affine": _layer_judge("affine_forward/affine_backward", affine_cases, reference.affine_forward,
                           reference.affine_backward, AFFINE_GRADS,
                           [DB_WRONG_AXIS, DB_SUMMED_ALL, DX_NOT_RESHAPED, DW_TRANSPOSED]),
    "relu_layer": _layer_judge("relu_forward/relu_backward", relu_cases, reference.relu_forward,
                               reference.relu_backward, ("dx",), [RELU_KINK, RELU_TIMES_OUTPUT, RELU_PASSES_ALL]),
    "two_layer_loss": Judge(_prepare_two_layer, _decide_two_layer),
    "gradient_check": Judge(_prepare_gradient_check, _decide_gradient_check),
    "training": Judge(_prepare_training, _decide_training),
}
