"""Correct answers pass every check whatever their precision or formula: for each `check_*` of ex01-ex06, an
answer computed another way than the solution (torch instead of numpy, float64 inside and cast back, float32
numbers, another order of sums, an equivalent formula) passes both locally (the notebook's seed) and graded
(a secret seed, judged on the host). Near-miss pairs (just inside the tolerance passes, just outside fails)
pin every numeric comparison, so loosening a tolerance 10,000x fails a fast test.

Each answer here is written independently of course_lib's references (which the checks compare with).
"""

from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.grading.exercises import ex01, ex02, ex03, ex04, ex05, ex06
from tests import grading_fixtures as fx
from tests.conftest import ROOT

torch.set_num_threads(1)


def _passes(check: Callable, *answers, seed: int, hidden_seed: int | None = None, **params) -> None:
    """The check passes `answers` locally (notebook seed) and graded (a secret seed, hidden when it has one)."""
    assert fx.message_of(check, *answers, seed=seed, **params) is None, fx.message_of(check, *answers, seed=seed,
                                                                                        **params)
    hidden = {} if hidden_seed is None else {"hidden": True}
    message = fx.graded(check, *answers, seed=hidden_seed or seed, **hidden, **params)
    assert message is None, message


def _t(x) -> torch.Tensor:
    """A numpy array (any shape, 0-d too) as a tensor of its dtype."""
    return torch.from_numpy(np.array(x))


def _in64(fn):
    """fn computed in float64 and cast back to the input's dtype: a float64 answer for float32 inputs."""
    return lambda x, *a: np.asarray(fn(np.asarray(x, dtype=np.float64), *a)).astype(np.asarray(x).dtype)


# ---- ex01: element-wise functions ---------------------------------------------------------------------------

def _torch_ex01() -> dict:
    """ex01's functions by torch in the input's dtype (float32 arithmetic for float32 inputs)."""
    def sigmoid_grad(x):
        s = torch.sigmoid(_t(x))
        return (s * (1 - s)).numpy()

    def leaky_relu_grad(x, slope=0.01):
        t = _t(x)
        return torch.where(t > 0, torch.ones_like(t), torch.full_like(t, slope)).numpy()

    return {"relu": lambda x: torch.relu(_t(x)).numpy(), "relu_grad": lambda x: (_t(x) > 0).to(_t(x).dtype).numpy(),
            "leaky_relu": lambda x, slope=0.01: F.leaky_relu(_t(x), slope).numpy(), "leaky_relu_grad": leaky_relu_grad,
            "sigmoid": lambda x: torch.sigmoid(_t(x)).numpy(), "sigmoid_grad": sigmoid_grad,
            "tanh": lambda x: torch.tanh(_t(x)).numpy(), "tanh_grad": lambda x: (1 - torch.tanh(_t(x)) ** 2).numpy()}


def _formulas_ex01() -> dict:
    """ex01's functions by other correct formulas than the solution's (no overflow for |x| = 1000)."""
    def e2(x):  # exp(-2|x|): tanh and sech^2 from it, stable for any x
        return np.exp(-2 * np.abs(x))

    def leaky_relu_grad(x, slope=0.01):
        return (slope + (1 - slope) * (x > 0)).astype(x.dtype)

    return {"relu": lambda x: x * (x > 0), "relu_grad": lambda x: np.heaviside(x, 0).astype(x.dtype),
            "leaky_relu": lambda x, slope=0.01: np.maximum(x, slope * x), "leaky_relu_grad": leaky_relu_grad,
            "sigmoid": lambda x: 0.5 * (1 + np.tanh(x / 2)),
            "sigmoid_grad": lambda x: (np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))) ** 2).astype(x.dtype),
            "tanh": lambda x: (np.sign(x) * (1 - e2(x)) / (1 + e2(x))).astype(x.dtype),
            "tanh_grad": lambda x: (4 * e2(x) / (1 + e2(x)) ** 2).astype(x.dtype)}


def _float64_ex01() -> dict:
    """ex01's functions computed in float64 whatever the input, cast back to the input's dtype."""
    return {name: _in64(fn) for name, fn in _formulas_ex01().items()}


EX01 = [(ex01.check_relu, ("relu",), 1, 7301), (ex01.check_relu_grad, ("relu_grad",), 1, 7302),
        (ex01.check_leaky_relu, ("leaky_relu", "leaky_relu_grad"), 3, 7303),
        (ex01.check_sigmoid, ("sigmoid", "sigmoid_grad"), 4, 7304), (ex01.check_tanh, ("tanh", "tanh_grad"), 5, 7305)]


@pytest.mark.parametrize("answers", [_torch_ex01, _formulas_ex01, _float64_ex01], ids=["torch", "formulas", "in64"])
@pytest.mark.parametrize(("check", "names", "seed", "hidden_seed"), EX01, ids=[c[0].__name__ for c in EX01])
def test_ex01_accepts_float32_float64_and_other_formulas(check, names, seed, hidden_seed, answers):
    functions = answers()
    with np.errstate(over="raise", invalid="raise"):  # the formulas above never overflow, so no warning either
        _passes(check, *(functions[n] for n in names), seed=seed, hidden_seed=hidden_seed)


# ---- ex02: layers, loss, gradient check, training -------------------------------------------------------------

def affine_by_autograd():
    """affine_forward/backward by torch in the inputs' dtype, the gradients by autograd."""
    def forward(x, w, b):
        return (_t(x).reshape(len(x), -1) @ _t(w) + _t(b)).numpy(), (x, w, b)

    def backward(dout, cache):
        x, w, b = (_t(a).requires_grad_() for a in cache)
        (x.reshape(len(x), -1) @ w + b).backward(_t(dout))
        return x.grad.numpy(), w.grad.numpy(), b.grad.numpy()

    return forward, backward


def affine_by_einsum():
    """affine_forward/backward with einsum and a ones-vector product for db: other orders of the sums."""
    def forward(x, w, b):
        return np.einsum("nd,dm->nm", x.reshape(len(x), -1), w) + b, (x, w, b)

    def backward(dout, cache):
        x, w, _ = cache
        flat = x.reshape(len(x), -1)
        return (np.einsum("nm,dm->nd", dout, w).reshape(x.shape), np.einsum("nd,nm->dm", flat, dout),
                np.ones(len(dout), dout.dtype) @ dout)

    return forward, backward


def relu_layer_by_torch():
    return (lambda x: (torch.relu(_t(x)).numpy(), x),
            lambda dout, x: torch.where(_t(x) > 0, _t(dout), torch.zeros_like(_t(dout))).numpy())


def relu_layer_by_where():
    return (lambda x: (np.where(x > 0, x, np.zeros_like(x)), x),
            lambda dout, x: np.where(x > 0, dout, 0).astype(dout.dtype))


def two_layer_by_logsumexp(params, x, y=None):
    """The two-layer net with the loss as mean(logsumexp - correct score), gradients by hand in another order."""
    h = x @ params["W1"] + params["b1"]
    a = np.maximum(h, 0)
    scores = a @ params["W2"] + params["b2"]
    if y is None:
        return scores
    top = scores.max(axis=1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(scores - top).sum(axis=1))
    loss = np.mean(lse - scores[np.arange(len(y)), y])
    dscores = (np.exp(scores - lse[:, None]) - np.eye(scores.shape[1])[y]) / len(y)
    dh = (dscores @ params["W2"].T) * (h > 0)
    return loss, {"W1": np.einsum("nd,nh->dh", x, dh), "b1": dh.sum(0), "W2": np.einsum("nh,nc->hc", a, dscores),
                  "b2": dscores.sum(0)}


def two_layer_by_autograd(params, x, y=None):
    """The two-layer net in torch float64, gradients by autograd; loss returned as a float32 number."""
    p = {k: _t(v).requires_grad_() for k, v in params.items()}
    scores = torch.relu(_t(x) @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
    if y is None:
        return scores.detach().numpy()
    loss = F.cross_entropy(scores, torch.from_numpy(np.asarray(y)).long())
    loss.backward()
    return loss.item(), {k: v.grad.numpy() for k, v in p.items()}


def gradient_check_by_hand(loss_fn, params, x, y, h=1e-6, number=float):
    """Central differences written out, the worst |a - n| / max(|a| + |n|, tiny) per parameter."""
    _, grads = loss_fn(params, x, y)
    errors = {}
    for name, value in params.items():
        numerical = np.zeros_like(value)
        for i in np.ndindex(value.shape):
            plus, minus = value.copy(), value.copy()
            plus[i] += h
            minus[i] -= h
            numerical[i] = (loss_fn({**params, name: plus}, x, y)[0] - loss_fn({**params, name: minus}, x, y)[0]) / (
                2 * h)
        scale = np.maximum(np.abs(grads[name]) + np.abs(numerical), 1e-12)
        errors[name] = number(np.max(np.abs(grads[name] - numerical) / scale))
    return errors


EX02_FAST = {
    "affine_autograd": (ex02.check_affine, affine_by_autograd, 1, 7401),
    "affine_einsum": (ex02.check_affine, affine_by_einsum, 1, 7401),
    "relu_layer_torch": (ex02.check_relu_layer, relu_layer_by_torch, 2, 7402),
    "relu_layer_where": (ex02.check_relu_layer, relu_layer_by_where, 2, 7402),
    "two_layer_logsumexp": (ex02.check_two_layer_loss, lambda: (two_layer_by_logsumexp,), 3, 7403),
    "two_layer_autograd": (ex02.check_two_layer_loss, lambda: (two_layer_by_autograd,), 3, 7403),
    "gradient_check_float": (ex02.check_gradient_check, lambda: (gradient_check_by_hand,), 4, 7405),
    "gradient_check_float32": (ex02.check_gradient_check,
                               lambda: (lambda *a: gradient_check_by_hand(*a, number=np.float32),), 4, 7405),
}


@pytest.mark.parametrize("case", EX02_FAST)
def test_ex02_accepts_other_orders_of_sums_and_float32_numbers(case):
    check, answers, seed, hidden_seed = EX02_FAST[case]
    _passes(check, *answers(), seed=seed, hidden_seed=hidden_seed)


@pytest.mark.parametrize("loss", [two_layer_by_logsumexp, two_layer_by_autograd], ids=["logsumexp", "autograd"])
def test_ex02_training_accepts_another_correct_loss(loss):
    _passes(ex02.check_training, loss, seed=5, hidden_seed=7406, threshold=0.93)


# ---- ex03: the monitor, the dead fraction, the two settings ---------------------------------------------------

def _rates(model, batches, counted: Callable) -> list[torch.Tensor]:
    """Per nn.ReLU module, what `counted(outputs per batch, batch sizes, total)` makes of its outputs."""
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    seen = {m: [] for m in relus}
    hooks = [m.register_forward_hook(lambda m, args, out: seen[m].append(out)) for m in relus]
    try:
        with torch.no_grad():
            sizes = [len(model(x)) for x in batches]
    finally:
        for hook in hooks:
            hook.remove()
    return [counted(seen[m], sizes, sum(sizes)) for m in relus]


def rates_float32(model, batches):
    """Counts of positive outputs over all examples, divided in float32."""
    return _rates(model, batches, lambda outs, sizes, n: torch.cat(outs).gt(0).sum(0).float() / n)


def rates_weighted_means(model, batches):
    """Each batch's float32 mean, weighted by its size: another order of the same sum."""
    return _rates(model, batches, lambda outs, sizes, n: sum(o.gt(0).float().mean(0) * len(o) for o in outs) / n)


DEAD_FRACTIONS = {
    "float32_mean": lambda rates: float((torch.cat(list(rates)) == 0).float().mean()),
    "reversed_sum": lambda rates: float(sum((r == 0).float().sum() for r in reversed(rates)) / sum(map(len, rates))),
    "numpy_float32": lambda rates: np.float32(np.mean(np.concatenate([r.numpy() for r in rates]) == 0)),
}


@pytest.mark.parametrize("rates", [rates_float32, rates_weighted_means])
def test_ex03_firing_rates_accepts_float32_and_batch_weighted_means(rates):
    _passes(ex03.check_firing_rates, rates, seed=1, hidden_seed=7501)


@pytest.mark.parametrize("fraction", DEAD_FRACTIONS)
def test_ex03_dead_fraction_accepts_float32_and_reordered_answers(fraction):
    _passes(ex03.check_dead_fraction, DEAD_FRACTIONS[fraction], seed=2, hidden_seed=7502)
