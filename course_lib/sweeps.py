"""The dead-unit experiment shared by notebooks 03 and 04: one fixed data set, one fixed net, many seeded runs.

The set-up (`Setup`; the default is `SETUP`): CS231n's three interleaved spirals (`course_lib.data.spirals`,
100 points per class, noise 0.2, data seed 0: 180 training, 60 validation and 60 test points in 2-D), an MLP
2 -> 32 -> 32 -> 32 -> 3 built by `course_lib.nn.mlp` (Kaiming-normal weights, every bias set to the constant
`bias`), trained by `course_lib.train.fit` with plain minibatch SGD (no momentum, no weight decay, batches of
32, 30 epochs) on the cross-entropy. Only the activation, learning rate, bias, BatchNorm and seed vary.

A unit is *dead* when its pre-activation is never > 0 on any training example (`DeadUnitMonitor`, measured in
eval mode). For Leaky ReLU and PReLU this reads "never on the positive side": such a unit still passes gradient.
A run whose parameters or training loss become non-finite has *diverged*: every unit would look dead, so its
dead fraction and accuracy are NaN in its row, and `summarize` counts such runs in `n_nan` instead.

A *row* is a plain dict: the run's settings (activation, lr, bias, batchnorm, seed and any activation keyword)
and its measurements (dead_init, dead, val_acc, diverged; slope_min / slope_max for PReLU).
"""

__all__ = [
    "Setup", "SETUP", "load_data", "build_model", "firing_rates", "dead_masks", "prelu_slopes", "train_run", "sweep",
    "summarize", "format_summary", "revival_totals", "plot_sweep", "incoming_gradients",
]

import functools
import math
import multiprocessing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.data import Split, spirals
from course_lib.diagnostics import RELU_FAMILY, DeadUnitMonitor
from course_lib.nn import mlp
from course_lib.train import History, fit


@dataclass(frozen=True)
class Setup:
    """Everything that stays fixed between runs: hidden widths, training length, and the data set.

    Taught in notebook 03 (dead neurons)."""

    hidden: tuple[int, ...] = (32, 32, 32)
    epochs: int = 30
    batch_size: int = 32
    n_per_class: int = 100
    noise: float = 0.2
    data_seed: int = 0


SETUP = Setup()


@functools.lru_cache(maxsize=8)
def _spirals(n_per_class: int, noise: float, data_seed: int) -> Split:
    return spirals(n_per_class=n_per_class, noise=noise, seed=data_seed, as_torch=True)


def load_data(setup: Setup = SETUP) -> Split:
    """The set-up's spirals as torch tensors: x_* (N, 2) float32, y_* (N,) int64 in {0, 1, 2} (cached).

    Taught in notebook 03 (dead neurons); also used in notebook 04."""
    return _spirals(setup.n_per_class, setup.noise, setup.data_seed)


def build_model(activation: str = "relu", bias: float = 0.0, seed: int = 0, batchnorm: bool = False,
                weights: str = "kaiming", setup: Setup = SETUP, **activation_kw) -> nn.Sequential:
    """A fresh net 2 -> hidden... -> 3 seeded with `seed`; batchnorm puts BatchNorm1d between Linear and activation.

    weights: the initialisation scheme of `course_lib.nn.init_weights` ("kaiming", "xavier", "torch").
    activation_kw go to the activation, e.g. negative_slope=0.1 for leaky_relu (PReLU gets one slope per unit,
    starting at torch's 0.25).

    Taught in notebook 03 (dead neurons); also used in notebook 04.
    """
    torch.manual_seed(seed)
    model = mlp([2, *setup.hidden, 3], activation=activation, init=weights, bias=bias, **activation_kw)
    if not batchnorm:
        return model
    layers = []
    for layer in model[:-1]:
        layers.append(layer)
        if isinstance(layer, nn.Linear):
            layers.append(nn.BatchNorm1d(layer.out_features))
    return nn.Sequential(*layers, model[-1])


def firing_rates(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Activation name -> (units,) fraction of the N inputs x (N, 2) where each unit is > 0, in eval mode.

    Taught in notebook 03 (dead neurons)."""
    was_training = model.training
    model.eval()
    try:
        return DeadUnitMonitor(model).observe(x).firing_rates()
    finally:
        model.train(was_training)


def dead_masks(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Activation name -> (units,) bool, True where the unit is never > 0 on x (N, 2).

    Taught in notebook 03 (dead neurons); also used in notebook 04."""
    return {name: rate == 0 for name, rate in firing_rates(model, x).items()}


def fraction_dead(masks: dict[str, torch.Tensor]) -> float:
    """Dead units over all units of all layers in `masks` (from `dead_masks`)."""
    return sum(m.sum().item() for m in masks.values()) / sum(m.numel() for m in masks.values())


def prelu_slopes(model: nn.Module) -> dict[str, np.ndarray]:
    """PReLU name -> (num_parameters,) copy of its learned slopes.

    Taught in notebook 04 (Leaky ReLU and PReLU)."""
    return {name: m.weight.detach().cpu().numpy().copy() for name, m in model.named_modules()
            if isinstance(m, nn.PReLU)}


def is_diverged(model: nn.Module, history: History) -> bool:
    """True when a parameter or the last training loss is NaN or infinite."""
    finite_loss = len(history) == 0 or math.isfinite(history.train_loss[-1])
    return not (finite_loss and all(torch.isfinite(p).all() for p in model.parameters()))


@dataclass
class Run:
    """One trained net: the model, its History, its row, and (with track=True) a dead mask per checkpoint.

    masks[0] is at initialisation, masks[e] after epoch e (each a dict as returned by `dead_masks`).
    """

    model: nn.Module
    history: History
    row: dict
    masks: list[dict[str, torch.Tensor]] = field(default_factory=list)


def train_run(activation: str = "relu", lr: float = 0.1, bias: float = 0.0, seed: int = 0,
              batchnorm: bool = False, weights: str = "kaiming", setup: Setup = SETUP, track: bool = False,
              on_epoch_end: Callable | None = None, **activation_kw) -> Run:
    """Build a net with `build_model`, train it on the set-up's data with seed `seed`, and measure it.

    track=True records the dead masks after every epoch (Run.masks) and their dead fraction in
    history.extra["dead"]. on_epoch_end(epoch, model, history) is passed on to `fit`. Training stops early
    once the loss is non-finite (the run has diverged).

    Taught in notebook 03 (dead neurons); also used in notebook 04.
    """
    data = load_data(setup)
    model = build_model(activation, bias, seed, batchnorm, weights, setup, **activation_kw)
    masks = [dead_masks(model, data.x_train)]

    def after_epoch(epoch, model, history):
        if track:
            masks.append(dead_masks(model, data.x_train))
            history.record("dead", fraction_dead(masks[-1]))
        stop = on_epoch_end(epoch, model, history) if on_epoch_end is not None else None
        return stop is True or not math.isfinite(history.train_loss[-1])

    history = fit(model, data, epochs=setup.epochs, lr=lr, batch_size=setup.batch_size, seed=seed,
                  progress=False, on_epoch_end=after_epoch)
    diverged = is_diverged(model, history)
    row = {"activation": activation, "lr": lr, "bias": bias, "batchnorm": batchnorm, "weights": weights, "seed": seed,
           **activation_kw, "dead_init": fraction_dead(masks[0]),
           "dead": math.nan if diverged else fraction_dead(dead_masks(model, data.x_train)),
           "val_acc": math.nan if diverged else history.final()["val_acc"], "diverged": diverged}
    slopes = prelu_slopes(model)
    if slopes:
        every = np.concatenate(list(slopes.values()))
        row.update(slope_min=float(every.min()), slope_max=float(every.max()))
    return Run(model, history, row, masks if track else [])


def measure(**settings) -> dict:
    """The row of `train_run(**settings)`: what `sweep` records for one grid point and seed."""
    return train_run(**settings).row


def dead_fraction_after_training(activation: str = "relu", lr: float = 0.1, bias: float = 0.0, seed: int = 0,
                                 **settings) -> float:
    """Fraction of hidden units never > 0 on the training set after training (NaN if the run diverged)."""
    return measure(activation=activation, lr=lr, bias=bias, seed=seed, **settings)["dead"]


def _measure_kwargs(settings: dict) -> dict:
    return measure(**settings)


def _init_worker() -> None:
    torch.set_num_threads(1)


def sweep(grid: Iterable[dict], seeds: Iterable[int], run: Callable[..., dict] = measure,
          workers: int = 1) -> list[dict]:
    """One row per grid point and seed: run(**point, seed=seed), e.g. grid = [{"lr": 0.1}, {"lr": 1.0}].

    A point may carry a "label" (e.g. "BatchNorm + ReLU"): it is not passed to `run` but copied into the row.
    workers > 1 (only with the default `run`) trains the runs in a pool of that many processes with one torch
    thread each (a fork server, as `course_lib.compare.run`); every run seeds itself, so the rows are the same.

    Taught in notebook 03 (dead neurons); also used in notebook 04.
    """
    seeds, tasks = list(seeds), []
    for point in grid:
        settings = {k: v for k, v in point.items() if k != "label"}
        extra = {"label": point["label"]} if "label" in point else {}
        tasks += [(extra, {**settings, "seed": seed}) for seed in seeds]
    if workers > 1 and run is measure:
        from concurrent.futures import ProcessPoolExecutor

        from course_lib.compare import default_start_method

        context = multiprocessing.get_context(default_start_method())
        if context.get_start_method() == "forkserver":
            context.set_forkserver_preload([__name__, "torch._dynamo"])
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
            results = list(pool.map(_measure_kwargs, [settings for _, settings in tasks]))
    else:
        results = [run(**settings) for _, settings in tasks]
    return [{**extra, **row} for (extra, _), row in zip(tasks, results, strict=True)]


def summarize(rows: list[dict], by: str, metric: str) -> dict[str, np.ndarray]:
    """Group rows by row[by] (first-seen order) and describe row[metric] over each group's seeds.

    Returns arrays of one entry per group: "by" (the group values), "mean", "std" (over seeds, ddof=1;
    0 for one value), "min", "max" of the finite values, "n" (how many) and "n_nan" (NaN values: diverged
    runs). A group with no finite value gets NaN statistics.

    Taught in notebook 03 (dead neurons); also used in notebook 04.
    """
    groups: dict = {}
    for row in rows:
        groups.setdefault(row[by], []).append(float(row[metric]))
    out = {key: [] for key in ("by", "mean", "std", "min", "max", "n", "n_nan")}
    for value, metrics in groups.items():
        v = np.asarray(metrics)
        finite = v[np.isfinite(v)]
        some = finite.size > 0
        out["by"].append(value)
        out["mean"].append(finite.mean() if some else math.nan)
        out["std"].append(finite.std(ddof=1) if finite.size > 1 else (0.0 if some else math.nan))
        out["min"].append(finite.min() if some else math.nan)
        out["max"].append(finite.max() if some else math.nan)
        out["n"].append(finite.size)
        out["n_nan"].append(v.size - finite.size)
    return {key: np.asarray(values) for key, values in out.items()}


def format_summary(rows: list[dict], by: str, metrics: Iterable[str]) -> str:
    """A small table: one line per value of row[by], each metric as "mean ± std [min, max]" over the finite
    values of its seeds, then the number of runs and, in brackets, how many diverged (row["diverged"]).

    Taught in notebook 03 (dead neurons); also used in notebook 04."""
    metrics = list(metrics)
    stats = {m: summarize(rows, by, m) for m in metrics}
    runs = summarize([{**r, "_diverged": float(r.get("diverged", False))} for r in rows], by, "_diverged")
    width = max(len(by), *(len(str(v)) for v in runs["by"]))
    lines = [f"{by:>{width}} | " + " | ".join(f"{m:^29}" for m in metrics) + " | runs (diverged)"]
    for i, value in enumerate(runs["by"]):
        cells = [f"{s['mean'][i]:.3f} ± {s['std'][i]:.3f} [{s['min'][i]:.2f}, {s['max'][i]:.2f}]"
                 for s in stats.values()]
        diverged = round(runs["mean"][i] * runs["n"][i])
        lines.append(f"{value!s:>{width}} | " + " | ".join(f"{c:^29}" for c in cells)
                     + f" | {runs['n'][i]} ({diverged})")
    return "\n".join(lines)


def revived_units(masks: list[dict[str, torch.Tensor]]) -> dict[str, tuple[int, int]]:
    """Layer name -> (units dead at some checkpoint, units of those active again at a later checkpoint).

    masks: a list of dead masks (e.g. Run.masks: at initialisation, then after every epoch).
    """
    out = {}
    for name in masks[0]:
        dead = torch.stack([m[name] for m in masks])  # (T, units)
        alive_later = torch.flip(torch.cummax(torch.flip((~dead).int(), [0]), dim=0).values, [0]).bool()
        alive_later = torch.cat([alive_later[1:], torch.zeros_like(alive_later[:1])])  # active after t
        out[name] = (int(dead.any(0).sum()), int((dead & alive_later).any(0).sum()))
    return out


def revival_totals(runs: list[Run]) -> dict[str, tuple[int, int]]:
    """`revived_units` added up over the runs that did not diverge (each tracked with train_run(track=True)).

    Taught in notebook 03 (dead neurons); also used in notebook 04."""
    totals: dict[str, tuple[int, int]] = {}
    for run in runs:
        if run.row["diverged"]:
            continue
        for name, (ever, back) in revived_units(run.masks).items():
            before = totals.get(name, (0, 0))
            totals[name] = (before[0] + ever, before[1] + back)
    return totals


def plot_sweep(rows: list[dict], by: str, metric: str, ax=None, label: str | None = None, logx: bool = False):
    """Mean over seeds of row[metric] against row[by], error bars +- one std, each seed a faint dot.

    String values of `by` (labels) are placed at 0, 1, 2, ... Groups with diverged (NaN) runs are annotated
    "k/n diverged" at the bottom of the axes. Returns the Axes.

    Taught in notebook 03 (dead neurons); also used in notebook 04.
    """
    s = summarize(rows, by, metric)
    if ax is None:
        ax = plt.subplots(constrained_layout=True)[1]
    categorical = any(isinstance(v, str) for v in s["by"])
    pos = np.arange(len(s["by"]), dtype=float) if categorical else s["by"].astype(float)
    where = dict(zip(s["by"].tolist(), pos, strict=True))
    bars = ax.errorbar(pos, s["mean"], yerr=s["std"], marker="o", capsize=4, label=label,
                       linestyle="none" if categorical else "-")
    ax.scatter([where[r[by]] for r in rows], [r[metric] for r in rows], s=12, alpha=0.35,
               color=bars[0].get_color(), linewidths=0)
    for p, n, bad in zip(pos, s["n"], s["n_nan"], strict=True):
        if bad:
            ax.annotate(f"{bad}/{n + bad} diverged", (p, 0.02), xycoords=("data", "axes fraction"),
                        ha="center", fontsize=8, color=bars[0].get_color())
    if categorical:
        ax.set_xticks(pos, s["by"], rotation=20, ha="right")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(by)
    ax.set_ylabel(_LABELS.get(metric, metric))
    return ax


_LABELS = {"dead": "fraction dead after training", "dead_init": "fraction dead at initialisation",
           "val_acc": "validation accuracy", "slope_min": "smallest learned slope",
           "slope_max": "largest learned slope"}


def incoming_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Activation name -> (units,) largest |gradient| on each unit's incoming weights and bias.

    The loss is the cross-entropy over all of x (N, 2), y (N,) at once; "incoming" is the nearest nn.Linear
    before the activation. The model's gradients are left as computed (call model.zero_grad() to clear).

    Taught in notebook 03 (dead neurons); also used in notebook 04.
    """
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    out, linear = {}, None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            linear = module
        elif isinstance(module, RELU_FAMILY) and linear is not None:
            grads = torch.cat([linear.weight.grad.abs(), linear.bias.grad.abs().unsqueeze(1)], dim=1)
            out[name] = grads.max(dim=1).values
    return out
