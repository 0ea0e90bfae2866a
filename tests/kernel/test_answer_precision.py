"""Correct answers pass every check whatever their precision or formula: for each `check_*` of ex01-ex06, an
answer computed another way than the solution (torch instead of numpy, float64 inside and cast back, float32
numbers, another order of sums, an equivalent formula) passes both locally (the notebook's seed) and graded
(a secret seed, judged on the host). Near-miss pairs (just inside the tolerance passes, just outside fails)
pin the comparisons of ex02-ex06 checks with the per-dtype table, the rates, the dead fractions, PReLU's
initial slopes and both gradient-check thresholds (ex01's element-wise ones are pinned in test_grading_checks),
so loosening one of them even 10x fails a fast test. Not pinned here: ex02's comparison of gradients with
finite differences of the student's own loss (NUMERICAL_TOLERANCE, reached only after the tighter comparison
with the reference has passed) and ex06's check that design outputs are not probabilities.

Each answer here is written independently of course_lib's references (which the checks compare with).
"""

from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.grading.checks import ex01, ex02, ex03, ex04, ex05, ex06
from tests import grading_fixtures as fx

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
    """The two-layer net in torch float64, gradients by autograd (a loss rounded to float32 is rightly refused:
    finite differences of it, which the check compares the gradients with, are noise)."""
    p = {k: _t(v).requires_grad_() for k, v in params.items()}
    scores = torch.relu(_t(x) @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
    if y is None:
        return scores.detach().numpy()
    loss = F.cross_entropy(scores, torch.from_numpy(np.asarray(y)).long())
    loss.backward()
    return loss.item(), {k: v.grad.numpy() for k, v in p.items()}


def two_layer_in32(params, x, y=None):
    """The logsumexp net computed entirely in float32, its results cast back to float64 (for training only:
    on the loss check's float64 inputs this loses more than float64's tolerance allows)."""
    out = two_layer_by_logsumexp({k: v.astype(np.float32) for k, v in params.items()}, x.astype(np.float32), y)
    if y is None:
        return out.astype(np.float64)
    return float(out[0]), {k: g.astype(np.float64) for k, g in out[1].items()}


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


@pytest.mark.parametrize("loss", [two_layer_by_logsumexp, two_layer_by_autograd, two_layer_in32],
                         ids=["logsumexp", "autograd", "in32"])
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


def _hand_built(batchnorm: bool) -> Callable[[], nn.Module]:
    """2 -> 64 -> 64 -> 2 written out layer by layer (BatchNorm before each ReLU if asked), not by mlp()."""
    def hidden(n_in):
        return [nn.Linear(n_in, 64), *([nn.BatchNorm1d(64)] if batchnorm else []), nn.ReLU()]
    return lambda: nn.Sequential(*hidden(2), *hidden(64), nn.Linear(64, 2))


def test_ex03_settings_accept_numpy_float64_learning_rates_and_hand_built_models():
    _passes(ex03.check_provoke, lambda: (_hand_built(False), np.float64(0.3)), seed=6, hidden_seed=7407,
            threshold=0.30)
    _passes(ex03.check_prevent, lambda: (_hand_built(True), np.float64(1e-2)), seed=6, hidden_seed=7407,
            max_dead=0.01, threshold=0.92)


def test_ex03_settings_accept_a_float32_learning_rate():
    """np.float32(0.3) was refused as 'not a positive number' (int | float only): any real number is a rate."""
    assert fx.message_of(ex03.check_provoke, lambda: (_hand_built(False), np.float32(0.3)), seed=6,
                         threshold=0.30) is None


# ---- ex04: PReLU ----------------------------------------------------------------------------------------------

class PReLUWhere(nn.Module):
    """PReLU by torch.where with the slopes moved onto the last axis (movedim) instead of a view."""

    def __init__(self, num_channels, init=0.25, dim=1):
        super().__init__()
        self.dim = dim
        self.weight = nn.Parameter(init * torch.ones(num_channels))

    def forward(self, x):
        moved = x.movedim(self.dim, -1)
        return torch.where(moved > 0, moved, moved * self.weight).movedim(-1, self.dim)


class PReLUIn64(nn.Module):
    """PReLU computed in float64 and cast back to the input's dtype; slopes made by torch.tensor from a list."""

    def __init__(self, num_channels, init=0.25, dim=1):
        super().__init__()
        self.dim = dim
        self.weight = nn.Parameter(torch.tensor([float(init)] * num_channels))

    def forward(self, x):
        shape = [1] * x.dim()
        shape[self.dim] = -1
        x64, w64 = x.double(), self.weight.double().reshape(shape)
        return torch.where(x64 > 0, x64, x64 * w64).to(x.dtype)


@pytest.mark.parametrize("prelu", [PReLUWhere, PReLUIn64])
def test_ex04_prelu_accepts_another_formula_and_float64_inside(prelu):
    _passes(ex04.check_prelu_init, prelu, seed=1)
    _passes(ex04.check_prelu, prelu, seed=2, hidden_seed=7402)


def build_mlp_by_list(activation):
    """40 -> 100 -> 100 -> 10, the layers appended to a list one by one."""
    layers = []
    for n_in, n_out in ((40, 100), (100, 100)):
        layers += [nn.Linear(n_in, n_out), activation(n_out)]
    return nn.Sequential(*layers, nn.Linear(100, 10))


def test_ex04_prelu_mlp_accepts_another_prelu_and_build():
    _passes(ex04.check_prelu_mlp, build_mlp_by_list, PReLUWhere, seed=1, hidden_seed=7412)


# ---- ex05: Maxout ---------------------------------------------------------------------------------------------

def _split(z, k):
    if z.shape[-1] % k:
        raise ValueError(f"width {z.shape[-1]} not divisible by {k}")
    return z.reshape(*z.shape[:-1], z.shape[-1] // k, k)


def maxout_forward_torch(z, k):
    """The maximum by torch.amax in the input's dtype."""
    return torch.amax(_t(_split(z, k)), dim=-1).numpy(), (z, k)


def maxout_forward_reduce(z, k):
    """The maximum as np.maximum over the k pieces in turn."""
    pieces = _split(z, k)
    return np.maximum.reduce([pieces[..., i] for i in range(k)]), (z, k)


def maxout_backward_mask(dout, cache):
    """dout to the first winning piece through a mask (first True of pieces == max), computed in float64."""
    z, k = cache
    pieces = _split(np.asarray(z, dtype=np.float64), k)
    won = pieces == pieces.max(axis=-1, keepdims=True)
    first = won & (np.cumsum(won, axis=-1) == 1)
    return (first * np.asarray(dout, dtype=np.float64)[..., None]).reshape(np.shape(z)).astype(dout.dtype)


def maxout_backward_torch(dout, cache):
    """dout scattered to each unit's first winning piece (torch.argmax picks the first) in dout's dtype."""
    z, k = cache
    pieces = _t(_split(z, k))
    dz = torch.zeros(pieces.shape, dtype=_t(dout).dtype)
    dz.scatter_(-1, pieces.argmax(dim=-1, keepdim=True), _t(dout)[..., None])
    return dz.reshape(np.shape(z)).numpy()


def maxout_grad_error_by_hand(forward, backward, z, k, dout, h=1e-6, number=float):
    """Central differences of sum(forward(z) * dout) element by element, then the worst relative error."""
    _, cache = forward(z, k)
    analytic = np.asarray(backward(dout, cache), dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    numerical = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        plus, minus = z.copy(), z.copy()
        plus[i] += h
        minus[i] -= h
        numerical[i] = np.sum((forward(plus, k)[0] - forward(minus, k)[0]) * dout) / (2 * h)
    return number(np.max(np.abs(analytic - numerical) / np.maximum(np.abs(analytic) + np.abs(numerical), 1e-12)))


class MaxoutPool(nn.Module):
    """Maxout as max-pooling over windows of k along the features."""

    def __init__(self, in_features, out_features, k=2):
        super().__init__()
        self.in_features, self.out_features, self.k = in_features, out_features, k
        self.linear = nn.Linear(in_features, out_features * k)

    def forward(self, x):
        return F.max_pool1d(self.linear(x).unsqueeze(-2), self.k).squeeze(-2)


class MaxoutIn64(MaxoutPool):
    """Maxout computed in float64 (weights cast too) and cast back to the input's dtype."""

    def forward(self, x):
        z = x.double() @ self.linear.weight.double().T + self.linear.bias.double()
        return z.reshape(*z.shape[:-1], self.out_features, self.k).max(dim=-1).values.to(x.dtype)


EX05_FAST = {
    "forward_torch": (ex05.check_maxout_forward, (maxout_forward_torch,), 1, 7501),
    "forward_reduce": (ex05.check_maxout_forward, (maxout_forward_reduce,), 1, 7501),
    "backward_mask": (ex05.check_maxout_backward, (maxout_forward_reduce, maxout_backward_mask), 2, 7502),
    "backward_torch": (ex05.check_maxout_backward, (maxout_forward_torch, maxout_backward_torch), 2, 7502),
    "grad_error_float": (ex05.check_gradient_check, (maxout_grad_error_by_hand,), 3, 7503),
    "grad_error_float32": (ex05.check_gradient_check,
                           (lambda *a: maxout_grad_error_by_hand(*a, number=np.float32),), 3, 7503),
    "layer_pool": (ex05.check_maxout_layer, (MaxoutPool,), 4, 7504),
    "layer_in64": (ex05.check_maxout_layer, (MaxoutIn64,), 4, 7504),
}


@pytest.mark.parametrize("case", EX05_FAST)
def test_ex05_accepts_other_formulas_float64_inside_and_float32_numbers(case):
    check, answers, seed, hidden_seed = EX05_FAST[case]
    _passes(check, *answers, seed=seed, hidden_seed=hidden_seed)


def test_ex05_maxout_mlp_accepts_another_maxout():
    build = lambda: nn.Sequential(MaxoutPool(40, 64, k=2), MaxoutPool(64, 64, k=2), nn.Linear(64, 10))  # noqa: E731
    _passes(ex05.check_maxout_mlp, build, MaxoutPool, seed=5, hidden_seed=7505)


# ---- ex06: the capstone ---------------------------------------------------------------------------------------

def build_cnn():
    """The solution's CNN written out layer by layer, with a view for the channel axis instead of Unflatten."""
    class Channel(nn.Module):
        def forward(self, x):
            return x.view(len(x), 1, -1)

    return nn.Sequential(Channel(), nn.Conv1d(1, 25, 5, 2, 1), nn.ReLU(), nn.Conv1d(25, 25, 3, 2, 1), nn.ReLU(),
                         nn.Conv1d(25, 25, 3, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(125, 10))


def numpy_config():
    """The solution's configuration with numpy numbers: int64 epochs and batch size, a float32 learning rate."""
    return {"batch_size": np.int64(32), "optimizer": "adam", "lr": np.float32(1e-2), "epochs": np.int64(15)}


@pytest.mark.slow  # four trainings of the CNN, twice: 30 CPU s, over a minute on a shared machine
def test_ex06_training_checks_accept_numpy_numbers_and_a_hand_built_model():
    assert fx.message_of(ex06.check_design, build_cnn, numpy_config) is None
    for check in (ex06.check_accuracy, ex06.check_budget, ex06.check_bonus):
        _passes(check, build_cnn, numpy_config, seed=1)


def _fired(model, x) -> list[torch.Tensor]:
    """Per ReLU-family module, (units,) booleans: positive at some position of some example of x."""
    layers = [m for m in model.modules() if isinstance(m, nn.ReLU | nn.LeakyReLU | nn.PReLU)]
    fired = {m: [] for m in layers}
    hooks = [m.register_forward_hook(lambda m, args, out: fired[m].append(
        (args[0].reshape(len(args[0]), args[0].shape[1], -1) > 0).any(2).any(0))) for m in layers]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return [torch.stack(f).any(0) for f in fired.values()]


EX06_FRACTIONS = {
    "float32_tensor": lambda model, x: (~torch.cat(_fired(model, x))).float().mean(),
    "reversed_numpy_float32": lambda model, x: np.float32(
        sum(int((~f).sum()) for f in reversed(_fired(model, x))) / np.float32(sum(len(f) for f in _fired(model, x)))),
}


@pytest.mark.parametrize("fraction", EX06_FRACTIONS)
def test_ex06_dead_fraction_accepts_float32_and_reordered_answers(fraction):
    answer = EX06_FRACTIONS[fraction]
    answer.__module__ = "__main__"  # defined in the notebook, as the check requires (an import would be borrowed)
    _passes(ex06.check_dead_fraction, answer, seed=1, hidden_seed=7306)
    _passes(ex06.check_dead_fraction_cnn, answer, seed=1, hidden_seed=7308)


# ---- near misses: just inside a tolerance passes, just outside fails -----------------------------------------
# Each pair goes through a real check with a correct answer moved by k times what the comparison allows (k = 0.5
# passes, k = 3 fails), so loosening any of these tolerances (even 10x) fails a fast test. The allowances are
# written here, not read from judges/tolerance.py: a test that read them would move with them.

NEAR = [(0.5, True), (3.0, False)]
DTYPES = ["float64", "float32"]
ALLOWED = {"float64": (1e-6, 1e-9), "float32": (1e-4, 1e-5)}  # dtype -> (rtol, atol), as tolerance.py documents
FRACTION_ALLOWED = 1e-6  # a dead fraction's absolute error


def _moved(value: np.ndarray, k: float, dtype: str = "float32") -> np.ndarray:
    """value + k (rtol |value| + atol) with its dtype's allowances, in its dtype, if it is of `dtype` (else
    value unchanged: each dtype's tolerance is pinned on its own)."""
    if str(value.dtype) != dtype:
        return value
    rtol, atol = ALLOWED[dtype]
    return (value + k * (rtol * np.abs(value.astype(np.float64)) + atol)).astype(value.dtype)


def _moved_tensor(value: torch.Tensor, k: float, dtype: str = "float32") -> torch.Tensor:
    """The same in torch; the gradients are the value's (the shift is a constant)."""
    shift = _moved(value.detach().numpy(), k, dtype).astype(np.float64) - value.detach().double().numpy()
    return value + torch.from_numpy(shift).to(value.dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("k", "passes"), NEAR)
def test_ex02_affine_output_near_miss(k, passes, dtype):
    forward, backward = affine_by_einsum()
    moved = lambda x, w, b: (_moved(forward(x, w, b)[0], k, dtype), (x, w, b))  # noqa: E731
    assert (fx.message_of(ex02.check_affine, moved, backward, seed=1) is None) is passes


@pytest.mark.parametrize(("k", "passes"), NEAR)
def test_ex03_firing_rates_near_miss(k, passes):
    """Rates are compared with rtol 1e-6, atol 1e-9 (judges/ex03.py RATE_TOLERANCE)."""
    moved = lambda model, batches: [r.double() * (1 + k * 1e-6) + k * 1e-9 for r in rates_float32(model, batches)]  # noqa: E731
    assert (fx.message_of(ex03.check_firing_rates, moved, seed=1) is None) is passes


@pytest.mark.parametrize(("k", "passes"), NEAR)
def test_ex03_and_ex06_dead_fraction_near_miss(k, passes):
    """A rejected fraction is shown in full precision (repr), not rounded to look like the expected one."""
    exact = DEAD_FRACTIONS["reversed_sum"]
    moved = lambda rates: exact(rates) + k * FRACTION_ALLOWED  # noqa: E731
    message = fx.message_of(ex03.check_dead_fraction, moved, seed=2)
    assert (message is None) is passes
    if not passes:
        assert f"returned {moved(ex03.rate_lists(2)[0])!r} on layers of widths" in message, message
    answer = lambda model, x: float(EX06_FRACTIONS["reversed_numpy_float32"](model, x)) + k * FRACTION_ALLOWED  # noqa: E731
    answer.__module__ = "__main__"
    message = fx.message_of(ex06.check_dead_fraction, answer, seed=1)
    assert (message is None) is passes
    if not passes:
        assert f"dead fraction {answer(*ex06.probe_mlp(seed=1))!r} on " in message, message


class PReLUMoved(PReLUWhere):
    k, dtype = 0.0, "float32"

    def forward(self, x):
        return _moved_tensor(super().forward(x), self.k, self.dtype)


@pytest.mark.parametrize(("k", "passes"), NEAR)
def test_ex04_prelu_init_near_miss(k, passes):
    """The initial slopes are compared with init at numpy's default allclose (rtol 1e-5, atol 1e-8)."""
    def started(init):
        return float(init) * (1 + k * 1e-5) + k * 1e-8

    prelu = type("PReLU", (PReLUWhere,), {"__init__": lambda self, num_channels, init=0.25, dim=1: (
        PReLUWhere.__init__(self, num_channels, init, dim),
        self.weight.data.fill_(started(init)))[0]})
    assert (fx.message_of(ex04.check_prelu_init, prelu, seed=1) is None) is passes


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("k", "passes"), NEAR)
def test_ex04_prelu_output_near_miss(k, passes, dtype):
    """Graded on hidden inputs: they hold float64 cases as well as float32 ones."""
    prelu = type("PReLU", (PReLUMoved,), {"k": k, "dtype": dtype})
    assert (fx.graded(ex04.check_prelu, prelu, seed=7402, hidden=True) is None) is passes


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("k", "passes"), NEAR)
def test_ex05_maxout_forward_near_miss(k, passes, dtype):
    forward = lambda z, k_: (_moved(np.asarray(maxout_forward_reduce(z, k_)[0]), k, dtype), (z, k_))  # noqa: E731
    assert (fx.message_of(ex05.check_maxout_forward, forward, seed=1) is None) is passes


@pytest.mark.parametrize(("k", "passes"), NEAR)
def test_ex05_maxout_layer_near_miss(k, passes):
    layer = type("Maxout", (MaxoutPool,), {"forward": lambda self, x: _moved_tensor(MaxoutPool.forward(self, x), k)})
    assert (fx.message_of(ex05.check_maxout_layer, layer, seed=4) is None) is passes


@pytest.mark.parametrize(("check", "answer", "seed", "right_below", "wrong_above"), [
    (ex02.check_gradient_check, gradient_check_by_hand, 4, 1e-5, 1e-3),
    (ex05.check_gradient_check, maxout_grad_error_by_hand, 3, 1e-6, 1e-2)], ids=["ex02", "ex05"])
@pytest.mark.parametrize(("k", "passes"), NEAR)
def test_gradient_check_thresholds_near_miss(check, answer, seed, right_below, wrong_above, k, passes):
    """A gradient check must report right gradients below `right_below` and wrong ones above `wrong_above`:
    reporting k times the bound (instead of the true, far smaller or larger, error) passes only inside it."""
    def low(*args):  # right gradients reported as k * right_below
        errors = answer(*args)
        return ({n: e if e > wrong_above else k * right_below for n, e in errors.items()} if isinstance(errors, dict)
                else (errors if errors > wrong_above else k * right_below))

    def high(*args):  # wrong gradients reported as wrong_above / k
        errors = answer(*args)
        return ({n: e if e < right_below else wrong_above / k for n, e in errors.items()} if isinstance(errors, dict)
                else (errors if errors < right_below else wrong_above / k))

    assert (fx.message_of(check, low, seed=seed) is None) is passes
    assert (fx.message_of(check, high, seed=seed) is None) is passes
