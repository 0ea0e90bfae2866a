"""A small, fast, deterministic training loop for the course's experiments.

`fit` trains a model it is given (it never re-initialises it) with minibatches drawn by index from
tensors held in memory, and records a `History` of per-epoch metrics. The same seed and the same
initial model give bit-identical histories: shuffling uses its own torch.Generator, and any other
randomness inside the model (e.g. dropout) draws from torch's global RNG seeded inside a fork, so
the caller's RNG is left as it was.

Conventions: classification models output logits (N, C) and labels are int64 (N,); accuracy is
reported only when the labels are integers (it is NaN for regression). train_loss / train_acc are
averages over the epoch's minibatches (weights change during the epoch); val_* are measured after
the epoch in eval mode.
"""

__all__ = ["one_thread", "evaluate", "fit"]

import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import trange

from course_lib.data import Split

LOSSES: dict[str, Callable] = {"cross_entropy": F.cross_entropy, "mse": F.mse_loss}
OPTIMIZERS: dict[str, type] = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
METRICS = ("train_loss", "train_acc", "val_loss", "val_acc")


@dataclass
class History:
    """Per-epoch metrics of one `fit` run; `extra` holds anything a callback records with `record`."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    epoch_time_s: list[float] = field(default_factory=list)
    extra: dict[str, list] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.train_loss)

    def record(self, name: str, value) -> None:
        """Append `value` to extra[name], e.g. a PReLU slope or a dead fraction, once per epoch."""
        self.extra.setdefault(name, []).append(value)

    def metric(self, name: str) -> list:
        """A metric by name: one of METRICS, "epoch_time_s", or a key of `extra`."""
        if name in self.extra:
            return self.extra[name]
        if name in (*METRICS, "epoch_time_s"):
            return getattr(self, name)
        raise KeyError(f"no metric {name!r}; have {', '.join([*METRICS, 'epoch_time_s', *self.extra])}")

    def final(self) -> dict[str, float]:
        """The metrics of the last epoch, with its number (1-based) under "epoch"."""
        return self._at(len(self) - 1)

    def best(self, metric: str | None = None) -> dict[str, float]:
        """The metrics of the epoch with the highest accuracy or lowest loss of `metric` (NaNs ignored).

        The default metric is val_acc, falling back to val_loss (regression), then train_loss (no
        validation data).
        """
        fallbacks = ("val_acc", "val_loss", "train_loss")
        metric = metric or next((m for m in fallbacks if _has_number(self.metric(m))), "train_loss")
        values = np.array(self.metric(metric), dtype=float)
        if not np.isfinite(values).any():
            raise ValueError(f"{metric} has no finite value to pick the best epoch by")
        values[~np.isfinite(values)] = np.inf if metric.endswith("loss") else -np.inf
        return self._at(int(np.argmin(values) if metric.endswith("loss") else np.argmax(values)))

    def _at(self, i: int) -> dict[str, float]:
        if not 0 <= i < len(self):
            raise ValueError("the history is empty")
        return {"epoch": i + 1, **{m: getattr(self, m)[i] for m in (*METRICS, "epoch_time_s")}}


def _has_number(values: list) -> bool:
    return any(v is not None and math.isfinite(v) for v in values)


@contextmanager
def one_thread() -> Iterator[None]:
    """torch on one intra-op thread inside the block (the course kernel's setting), restored afterwards:
    results and timings then do not depend on the machine's core count.

    Not taught in a notebook: the grader's kernel-side checks use it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def seed_everything(seed: int) -> None:
    """Seed python's `random`, numpy's global RNG and torch's, for a notebook that must be reproducible."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def predictions(logits: torch.Tensor) -> torch.Tensor:
    """Predicted labels (N,): argmax of logits (N, C), or 1 where one binary logit (N,) or (N, 1) is > 0."""
    logits = torch.as_tensor(logits)
    if logits.ndim == 1 or logits.shape[-1] == 1:
        return (logits.reshape(-1) > 0).long()
    return logits.argmax(dim=-1)


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of the N examples whose predicted label (see `predictions`) equals y: (N,) integer labels."""
    return (predictions(logits) == torch.as_tensor(y).reshape(-1)).float().mean().item()


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator | None = None,
            shuffle: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Minibatches (x[idx], y[idx]) covering every example once; the last one may be smaller."""
    n = len(y)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        yield x[idx], y[idx]


def _loss_fn(loss: str | Callable) -> Callable:
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)} or pass a function")
    return LOSSES[loss]


def _batch_loss(fn: Callable, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """fn(out, y), with float targets (N,) matched to a single output column (N, 1) for regression."""
    if y.is_floating_point() and out.shape != y.shape and out.numel() == y.numel():
        y = y.view_as(out)
    return fn(out, y)


@torch.no_grad()
def evaluate(model: torch.nn.Module, x, y, loss: str | Callable = "cross_entropy",
             batch_size: int = 2048) -> tuple[float, float]:
    """(mean loss, accuracy) of `model` on x: (N, D), y: (N,), in eval mode; accuracy is NaN for float y.

    The model's train/eval mode is restored afterwards. An empty x gives (NaN, NaN).

    Taught in notebook 01 (activation functions); also used in notebook 05.
    """
    x, y = _as_tensors(x, y, _device(model))
    if len(y) == 0:
        return math.nan, math.nan
    fn, was_training = _loss_fn(loss), model.training
    model.eval()
    total_loss, correct = 0.0, 0.0
    for xb, yb in batches(x, y, batch_size, shuffle=False):
        out = model(xb)
        total_loss += _batch_loss(fn, out, yb).item() * len(yb)
        if not yb.is_floating_point():
            correct += accuracy(out, yb) * len(yb)
    model.train(was_training)
    return total_loss / len(y), (correct / len(y) if not y.is_floating_point() else math.nan)


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters(), torch.empty(0)).device


def _as_tensors(x, y, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Features as float32 tensors; integer labels as int64, float targets as float32."""
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    y = y.float() if y.is_floating_point() else y.long()
    return x.float().to(device), y.to(device)


def _unpack(data) -> tuple[torch.Tensor, ...]:
    """(x_train, y_train, x_val, y_val) from a Split or a tuple (x, y) / (x, y, x_val, y_val)."""
    if isinstance(data, Split):
        return data.x_train, data.y_train, data.x_val, data.y_val
    if isinstance(data, tuple | list) and len(data) in (2, 4):
        return tuple(data) if len(data) == 4 else (*data, data[0][:0], data[1][:0])
    raise TypeError(f"data must be a Split or a tuple (x, y) or (x, y, x_val, y_val), "
                    f"got {type(data).__name__}")


def make_optimizer(optimizer, params, lr: float, weight_decay: float = 0.0, momentum: float = 0.0):
    """An optimizer from a name ("sgd", "adam", "adamw"), a torch.optim class, or a factory called like one:
    optimizer(params, lr=lr, [weight_decay=..., momentum=...]); the last two are passed only when non-zero."""
    if isinstance(optimizer, str):
        if optimizer.lower() not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}, "
                             "or pass a torch.optim class or factory")
        if momentum and optimizer.lower() != "sgd":
            raise ValueError(f"momentum={momentum} applies to sgd only; {optimizer} has betas instead")
        optimizer = OPTIMIZERS[optimizer.lower()]
    kwargs = {"lr": lr}
    if weight_decay:
        kwargs["weight_decay"] = weight_decay
    if momentum:
        kwargs["momentum"] = momentum
    return optimizer(params, **kwargs)


def fit(model: torch.nn.Module, data, epochs: int, lr: float, optimizer="sgd", batch_size: int = 64,
        seed: int = 0, loss: str | Callable = "cross_entropy", weight_decay: float = 0.0,
        momentum: float = 0.0, progress: bool = True, on_epoch_end: Callable | None = None) -> History:
    """Train `model` in place for `epochs` epochs of minibatch descent and return its History.

    data: a Split (numpy or torch) or a tuple (x, y) or (x, y, x_val, y_val).
    optimizer: "sgd", "adam", "adamw", a torch.optim class, or a factory f(params, lr=..., ...).
    loss: "cross_entropy" (logits (N, C), int labels), "mse" (float targets), or f(out, y) -> mean loss.
    on_epoch_end(epoch, model, history) runs after each epoch (epoch counts from 0, history already
    holds it); returning True stops training early.

    Taught in notebook 01 (activation functions); also used in notebooks 02, 04, 05 and exercises ex03, ex06.
    """
    if epochs < 0 or batch_size < 1:
        raise ValueError(f"need epochs >= 0 and batch_size >= 1, got {epochs=}, {batch_size=}")
    device = _device(model)
    x, y, x_val, y_val = _unpack(data)
    x, y = _as_tensors(x, y, device)
    x_val, y_val = _as_tensors(x_val, y_val, device)
    fn = _loss_fn(loss)
    opt = make_optimizer(optimizer, model.parameters(), lr, weight_decay, momentum)
    history = History()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        bar = trange(epochs, disable=not progress, desc="training", leave=False)
        for epoch in bar:
            start = time.perf_counter()
            train_loss, train_acc = _train_epoch(model, opt, fn, x, y, batch_size, generator)
            val_loss, val_acc = evaluate(model, x_val, y_val, fn)
            _append(history, train_loss, train_acc, val_loss, val_acc, time.perf_counter() - start)
            bar.set_postfix(_postfix(history))
            if on_epoch_end is not None and on_epoch_end(epoch, model, history) is True:
                break
        bar.close()
    return history


def _train_epoch(model, opt, fn, x, y, batch_size, generator) -> tuple[float, float]:
    """One pass over (x, y) in shuffled minibatches: (mean loss, accuracy) over the epoch's batches."""
    model.train()
    total_loss, correct = torch.zeros(()), torch.zeros(())
    classify = not y.is_floating_point()
    for xb, yb in batches(x, y, batch_size, generator):
        out = model(xb)
        batch_loss = _batch_loss(fn, out, yb)
        opt.zero_grad(set_to_none=True)
        batch_loss.backward()
        opt.step()
        total_loss += batch_loss.detach().cpu() * len(yb)
        if classify:
            correct += (predictions(out.detach()) == yb).sum().cpu()
    n = max(len(y), 1)
    return total_loss.item() / n, (correct.item() / n if classify else math.nan)


def _append(history: History, *values: float) -> None:
    for name, value in zip((*METRICS, "epoch_time_s"), values, strict=True):
        getattr(history, name).append(value)


def _postfix(history: History) -> dict[str, str]:
    last = history.final()
    return {k: f"{v:.3f}" for k, v in last.items() if k in METRICS and v is not None and math.isfinite(v)}
