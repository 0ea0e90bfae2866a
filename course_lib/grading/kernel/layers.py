"""Probes for numpy layers and losses written CS231n-style, and the grader's SGD loop for a numpy network.

A layer is a pair `forward(*inputs) -> (out, cache)` and `backward(dout, cache) -> grad or (grad, ...)`; a
network loss is `loss(params, x, y) -> (loss, grads)` with `grads` a dict keyed like `params`, and
`loss(params, x) -> scores` without labels (CS231n's TwoLayerNet convention).

Kernel side: everything here calls the student's code on the grader's inputs and keeps only plain data
(`Probe`: one `Outcome` per named value, e.g. "out", "dx", "dw", "db" or "loss", "W1", ...). Nothing here
holds a reference or a label; the verdicts are course_lib.grading.judges.layers'.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from course_lib.gradcheck import numerical_gradient
from course_lib.grading import plain
from course_lib.grading.kernel.probes import Outcome, call, guarded, student_error
from course_lib.grading.kernel.training import TrainingOutcome, predicted_classes


@plain.registered
@dataclass(frozen=True)
class Probe:
    """Named Outcomes of one run of the student's code (plain data), or the error that stopped it, and the
    numpy floating-point warnings (overflow, invalid value; not underflow) raised meanwhile."""

    values: dict[str, Outcome] = field(default_factory=dict)
    error: str | None = None
    warnings: tuple[str, ...] = ()

    def value(self, name: str) -> np.ndarray | None:
        outcome = self.values.get(name)
        return None if outcome is None else outcome.value


def _copy(v):
    return v.copy() if isinstance(v, np.ndarray) else v


def _plain(v) -> Outcome:
    """A plain float64 copy of a returned value (or an error Outcome when it is not an array or number)."""
    return call(lambda: v)


def _run(body: Callable[[], Probe]) -> Probe:
    """body() with numpy floating-point warnings (not underflow) recorded and exceptions kept as data."""
    probe, error, found = guarded(body)
    probe = Probe(error=error) if error else probe
    return Probe(probe.values, probe.error, found)


def _as_tuple(grads) -> tuple:
    return tuple(grads) if isinstance(grads, tuple | list) else (grads,)


def probe_layer(forward: Callable, backward: Callable, args: Sequence, dout: np.ndarray,
                grad_names: Sequence[str]) -> Probe:
    """Run forward(*copies of args) -> (out, cache), then backward(copy of dout, cache).

    The probe holds "out" and one Outcome per name in `grad_names` (the gradients backward returns, in
    that order), or an error naming the step that failed."""

    def body() -> Probe:
        try:
            result = forward(*(_copy(v) for v in args))
        except Exception as err:  # noqa: BLE001
            return Probe(error=f"the forward pass raised {student_error(err)}")
        if not (isinstance(result, tuple) and len(result) == 2):
            return Probe(error=f"the forward pass must return a pair (out, cache), not a {type(result).__name__}")
        out, cache = result
        values = {"out": _plain(out)}  # copied before backward runs, in case backward writes into it
        try:
            grads = _as_tuple(backward(_copy(dout), cache))
        except Exception as err:  # noqa: BLE001
            return Probe(values, f"the backward pass raised {student_error(err)}")
        if len(grads) != len(grad_names):
            return Probe(values, f"the backward pass must return {', '.join(grad_names)}: got {len(grads)} value(s)")
        values.update({name: _plain(g) for name, g in zip(grad_names, grads, strict=True)})
        return Probe(values)

    return _run(body)


def _loss_call(loss_fn: Callable, params: dict, x: np.ndarray, y: np.ndarray | None = None):
    copies = {k: _copy(v) for k, v in params.items()}
    return loss_fn(copies, _copy(x)) if y is None else loss_fn(copies, _copy(x), _copy(y))


def probe_loss(loss_fn: Callable, params: dict, x: np.ndarray, y: np.ndarray) -> Probe:
    """Run loss_fn(copies of params, x, y) -> (loss, grads): the probe holds "loss" and one Outcome per
    parameter's gradient (named like params); a missing key is an error."""

    def body() -> Probe:
        result = _loss_call(loss_fn, params, x, y)
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
            return Probe(error=f"it must return a pair (loss, grads) with grads a dict, not a {type(result).__name__}")
        loss, grads = result
        missing = [k for k in params if k not in grads]
        if missing:
            return Probe({"loss": _plain(loss)}, f"grads has no entry for {', '.join(missing)}")
        return Probe({"loss": _plain(loss), **{k: _plain(grads[k]) for k in params}})

    return _run(body)


def numerical_loss_grads(loss_fn: Callable, params: dict, x: np.ndarray, y: np.ndarray,
                         h: float = 1e-5) -> dict[str, np.ndarray] | None:
    """Central-difference gradients (float64, each parameter's shape) of the student's own
    loss_fn(params, x, y)[0] w.r.t. each parameter, or None if the loss cannot be evaluated: the judge
    compares them with the student's analytic gradients (does the backward pass differentiate the forward?)."""
    base = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    grads = {}
    try:
        with np.errstate(all="ignore"):
            for name in base:
                def f(value, name=name):
                    return float(_loss_call(loss_fn, {**base, name: value}, x, y)[0])
                grads[name] = numerical_gradient(f, base[name].copy(), h)
    except Exception:  # noqa: BLE001 - the loss probe reports the student's error
        return None
    return grads


# ---- the grader's training loop ---------------------------------------------------------------------


def he_init(seed: int, d: int, h: int, c: int) -> dict[str, np.ndarray]:
    """A two-layer net's starting params for `seed`: He-normal W1 (D, H) and W2 (H, C), zero biases."""
    rng = np.random.default_rng(seed)
    return {"W1": rng.normal(0, np.sqrt(2 / d), (d, h)), "b1": np.zeros(h),
            "W2": rng.normal(0, np.sqrt(2 / h), (h, c)), "b2": np.zeros(c)}


def _checked_grads(grads, params: dict) -> dict:
    if not isinstance(grads, dict) or set(grads) != set(params):
        raise ValueError(f"the loss must return grads with the keys {sorted(params)}")
    out = {}
    for k, p in params.items():
        g = np.asarray(grads[k], dtype=np.float64)
        if g.shape != p.shape:
            raise ValueError(f"grads[{k!r}] has shape {g.shape}, but {k} has shape {p.shape}")
        out[k] = g
    return out


def _sgd(loss_fn: Callable, params: dict, x: np.ndarray, y: np.ndarray, epochs: int, lr: float, seed: int,
         batch_size: int) -> None:
    """Minibatch SGD on params, in place: params[k] -= lr * grads[k]; batches from a permutation per epoch."""
    rng, step = np.random.default_rng(seed), 0
    with np.errstate(all="ignore"):
        for _ in range(epochs):
            order = rng.permutation(len(y))
            for i in range(0, len(y), batch_size):
                idx = order[i:i + batch_size]
                loss, grads = _loss_call(loss_fn, params, x[idx], y[idx])
                step += 1
                if not np.isfinite(loss):
                    raise FloatingPointError(f"the loss became {float(loss)} at SGD step {step}: the updates blew "
                                             "up; are the gradients those of the mean loss?")
                for k, g in _checked_grads(grads, params).items():
                    params[k] -= lr * g


def train_numpy_classifier(loss_fn: Callable, params: dict, x_train: np.ndarray, y_train: np.ndarray,
                           x_test: np.ndarray, n_classes: int, epochs: int, lr: float, seed: int,
                           batch_size: int = 50) -> tuple[TrainingOutcome, dict[str, np.ndarray] | None]:
    """Train a numpy classifier with plain minibatch SGD, using nothing but the student's loss function, and
    predict the held-out inputs; returns the outcome and the trained params (None when training failed).

    x_train (N, D), y_train (N,) int, x_test (M, D): every step calls loss_fn(copies of params, x_batch,
    y_batch) -> (loss, grads); the batch order is drawn from `seed`. Then loss_fn(params, x_test) must
    return the scores (M, n_classes); `predictions` (M,) are their argmax classes (the judge counts the
    accuracy: no label of x_test is here). Any exception, a gradient of the wrong shape, or a loss that stops
    being finite becomes `error`; the caller's params are not changed (the trained ones are copies)."""
    x, y = np.asarray(x_train, dtype=np.float64), np.asarray(y_train)
    params = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    start = time.perf_counter()
    try:
        _sgd(loss_fn, params, x, y, epochs, lr, seed, batch_size)
    except Exception as err:  # noqa: BLE001 - a student's bug is data here, not a crash of the grader
        return TrainingOutcome(error=student_error(err)), None
    seconds = time.perf_counter() - start
    try:
        with np.errstate(all="ignore"):
            scores = np.asarray(_loss_call(loss_fn, params, np.asarray(x_test, dtype=np.float64)))
        if scores.shape != (len(x_test), n_classes):
            raise ValueError(f"got an array of shape {scores.shape}, expected {(len(x_test), n_classes)}")
        predictions = predicted_classes(scores)
    except Exception as err:  # noqa: BLE001
        return TrainingOutcome(error="called without labels, loss(params, x) must return the scores (N, C): "
                                     + student_error(err)), params
    return TrainingOutcome(None, seconds, None, sum(v.size for v in params.values()), predictions=predictions), params
