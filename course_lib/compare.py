"""Every activation under the same training budget: accuracy over seeds, time, dead units, gradient flow.

A `Job` is one training run: (data set name, activation, seed, Budget). `run(jobs, datasets, workers)`
trains each job's fresh model and returns one plain dict (a *row*) per job, in job order:

    data, arch, activation, seed, epochs, n_params     what was trained
    test_acc, train_acc                                accuracy after the last epoch (no early stopping)
    train_cpu_s, train_time_s                          CPU and wall-clock seconds of training (one thread;
                                                       CPU time depends far less on other load than wall time)
    dead_fraction                                      dead units after training, on the training set
                                                       (ReLU family and maxout pieces; None otherwise)
    grad_ratio                                         first / last weight-gradient norm at initialisation
    test_curve, train_loss                             per-epoch lists, for plots

Determinism: every job seeds torch before building its model, trains with `fit(seed=seed)` and runs on one
torch thread, so the rows are bit-identical whether the jobs run here (workers=1) or in a pool of worker
processes (workers=2); only the times differ. `summarize`, `versus` and `markdown_table` turn rows into
tables, `plot_bars` into a bar chart with error bars.
"""

__all__ = ["Budget", "grid", "build_model", "run", "summarize", "versus", "paired", "markdown_table"]

import functools
import math
import multiprocessing
import statistics
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import diagnostics
from course_lib.cnn import cnn1d, n_params
from course_lib.data import Split
from course_lib.nn import mlp
from course_lib.train import OPTIMIZERS, evaluate, fit, one_thread

ARCHS = ("linear", "mlp", "cnn")


@dataclass(frozen=True)
class Budget:
    """What every activation gets: the same architecture, epochs, optimizer, learning rate and batch size.

    arch: "linear" (logistic regression; the activation is ignored), "mlp" (hidden widths `hidden`) or
    "cnn" (`course_lib.cnn.cnn1d` with `channels`). probe: training examples for the gradient at init.
    fused: use torch's fused Adam/AdamW kernel (same algorithm, one kernel for all parameters; for these small
    nets on a CPU we measured about a third less time per step; rounding differs slightly from the unfused loop).

    Taught in notebook 06 (capstone comparison).
    """

    arch: str = "mlp"
    hidden: tuple[int, ...] = (100, 100)
    channels: int = 25
    epochs: int = 20
    lr: float = 1e-2
    batch_size: int = 100
    optimizer: str = "adam"
    probe: int = 500
    fused: bool = True


@dataclass(frozen=True)
class Job:
    """One training run: data set `data` (a key of the datasets dict), `activation`, `seed`, `budget`."""

    data: str
    activation: str
    seed: int
    budget: Budget = Budget()


def grid(data: Iterable[str], activations: Iterable[str], seeds: Iterable[int], budget: Budget = Budget()
         ) -> list[Job]:
    """Every (data set, activation, seed) combination under one budget, data sets outermost.

    Taught in notebook 06 (capstone comparison)."""
    return [Job(d, a, s, budget) for d in data for a in activations for s in seeds]


def build_model(budget: Budget, activation: str, n_features: int, n_classes: int) -> nn.Module:
    """A fresh model for the budget's architecture, input (N, n_features), output logits (N, n_classes).

    Each activation gets the initialisation it was designed with (`course_lib.nn.default_init`): Kaiming for
    most, LeCun normal for SELU, and no normalisation layers, so SELU is the self-normalising net of its paper.

    Taught in notebook 06 (capstone comparison)."""
    if budget.arch == "linear":
        return nn.Linear(n_features, n_classes)
    if budget.arch == "mlp":
        return mlp([n_features, *budget.hidden, n_classes], activation)
    if budget.arch == "cnn":
        return cnn1d(n_features, n_classes, activation, channels=budget.channels)
    raise ValueError(f"unknown arch {budget.arch!r}; valid: {', '.join(ARCHS)}")


def make_optimizer(budget: Budget):
    """The optimizer argument for `course_lib.train.fit`: the budget's name, or fused Adam/AdamW."""
    if budget.fused and budget.optimizer in ("adam", "adamw"):
        return functools.partial(OPTIMIZERS[budget.optimizer], fused=True)
    return budget.optimizer


def weight_grad_norms(model: nn.Module) -> list[float]:
    """Norm of the gradient of every weight matrix or kernel (ndim >= 2), in model order; call after backward."""
    return [p.grad.norm().item() for p in model.parameters() if p.ndim >= 2 and p.grad is not None]


def gradient_ratio(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float | None:
    """||dL/dW_first|| / ||dL/dW_last|| for the cross-entropy on (x: (N, D), y: (N,)); None with one layer.

    Well below 1: the gradient shrinks on its way back to the input (vanishing); well above 1: it grows. The
    layers' shapes matter too, so compare ratios between activations on the same architecture. The model's
    gradients are cleared afterwards.
    """
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    norms = weight_grad_norms(model)
    model.zero_grad(set_to_none=True)
    return norms[0] / norms[-1] if len(norms) > 1 else None



def _train(model: nn.Module, d: Split, b: Budget, seed: int):
    """fit() on d's training part, recording test accuracy after every epoch: (History, training CPU seconds)."""
    eval_cpu_s = []

    def record_test_acc(epoch, model, history):
        start = time.process_time()
        history.record("test_acc", evaluate(model, d.x_test, d.y_test)[1])
        eval_cpu_s.append(time.process_time() - start)

    start = time.process_time()
    history = fit(model, (d.x_train, d.y_train), epochs=b.epochs, lr=b.lr, optimizer=make_optimizer(b),
                  batch_size=b.batch_size, seed=seed, progress=False, on_epoch_end=record_test_acc)
    return history, time.process_time() - start - sum(eval_cpu_s)


def run_job(job: Job, data: Split) -> dict:
    """Train job's fresh model on data's training part; measure it on the test part. Returns one row."""
    d, b = data.torch(), job.budget
    torch.manual_seed(job.seed)
    model = build_model(b, job.activation, d.n_features, d.n_classes)
    ratio = gradient_ratio(model, d.x_train[:b.probe], d.y_train[:b.probe])
    history, cpu_s = _train(model, d, b, job.seed)
    return {"data": job.data, "arch": b.arch, "activation": job.activation, "seed": job.seed,
            "epochs": b.epochs, "n_params": n_params(model), "test_acc": history.extra["test_acc"][-1],
            "train_acc": evaluate(model, d.x_train, d.y_train)[1], "train_cpu_s": cpu_s,
            "train_time_s": sum(history.epoch_time_s), "dead_fraction": diagnostics.dead_fraction(model, d.x_train),
            "grad_ratio": ratio, "test_curve": list(history.extra["test_acc"]), "train_loss": list(history.train_loss)}


_WORKER_DATA: dict[str, Split] = {}


def _init_worker(datasets: dict[str, Split]) -> None:
    torch.set_num_threads(1)
    _WORKER_DATA.update(datasets)


def _run_in_worker(job: Job) -> dict:
    return run_job(job, _WORKER_DATA[job.data])


def default_start_method() -> str:
    """"forkserver" where the OS has it (Linux, macOS), else "spawn" (Windows).

    Not "fork": a Jupyter kernel runs several threads and zmq sockets that a forked copy of it must not touch.
    A fork server is a fresh process that imports this module (and torch) once, then forks every worker.
    """
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def run(jobs: list[Job], datasets: dict[str, Split], workers: int = 1, start_method: str | None = None
        ) -> list[dict]:
    """Run every job (see `run_job`) and return their rows in job order.

    workers=1 runs them here, one after the other; workers > 1 hands them, in order, to a pool of that many
    processes with one torch thread each (start_method: "forkserver", "spawn" or "fork"; default
    `default_start_method()`; a fork server preloads this module and torch._dynamo, which torch imports when
    the first optimizer is made, and is reused by later calls).
    The rows are the same either way except for the times.

    Taught in notebook 06 (capstone comparison).
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    missing = sorted({job.data for job in jobs} - set(datasets))
    if missing:
        raise KeyError(f"jobs name data sets {missing} that are not in datasets ({', '.join(datasets)})")
    plain = {name: split.numpy() for name, split in datasets.items()}  # numpy pickles without shared memory
    if workers == 1:
        with one_thread():
            return [run_job(job, plain[job.data]) for job in jobs]
    context = multiprocessing.get_context(start_method or default_start_method())
    if context.get_start_method() == "forkserver":  # torch imports torch._dynamo when a first optimizer is made
        context.set_forkserver_preload([__name__, "torch._dynamo"])
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(plain,)) as pool:
        return list(pool.map(_run_in_worker, jobs))


# ---------------------------------------------------------------- tables


def _mean_or_none(values: list) -> float | None:
    return None if any(v is None for v in values) else statistics.fmean(values)


def summarize(rows: list[dict], metric: str = "test_acc") -> list[dict]:
    """One dict per (data, arch, activation), in order of first appearance, over its seeds.

    Keys: data, arch, activation, n (seeds), values (the metric per seed), mean, std (sample std,
    ddof=1; 0 for one seed), min, max, cpu_s (median train_cpu_s), dead_fraction (mean; None for
    activations without dead units), grad_ratio (median), n_params.

    Taught in notebook 06 (capstone comparison).
    """
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["data"], row["arch"], row["activation"]), []).append(row)
    out = []
    for (data, arch, activation), members in groups.items():
        values = [r[metric] for r in members]
        ratios = [r["grad_ratio"] for r in members]
        out.append({"data": data, "arch": arch, "activation": activation, "n": len(values), "values": values,
                    "mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                    "min": min(values), "max": max(values),
                    "cpu_s": statistics.median(r["train_cpu_s"] for r in members),
                    "dead_fraction": _mean_or_none([r["dead_fraction"] for r in members]),
                    "grad_ratio": None if None in ratios else statistics.median(ratios),
                    "n_params": members[0]["n_params"]})
    return out


def difference(a: dict, b: dict) -> tuple[float, float]:
    """(mean_a - mean_b, its standard error sqrt(std_a^2 / n_a + std_b^2 / n_b)) of two `summarize` entries."""
    return a["mean"] - b["mean"], math.sqrt(a["std"] ** 2 / a["n"] + b["std"] ** 2 / b["n"])


def versus(summary: list[dict], reference: str = "relu") -> list[dict]:
    """Each entry of `summary` with diff, se and verdict against `reference` on the same data and arch.

    verdict: "within noise" when |diff| <= 2 se (seed noise alone easily makes such a gap), else "better"
    or "worse"; "reference" for the reference itself, and diff, se, verdict None where the data set and
    architecture have no reference run. A rule of thumb, not a significance test: with 5 seeds the std
    itself is uncertain, and among many comparisons a few cross 2 se by chance.

    Taught in notebook 06 (capstone comparison).
    """
    refs = {(s["data"], s["arch"]): s for s in summary if s["activation"] == reference}
    out = []
    for s in summary:
        ref = refs.get((s["data"], s["arch"]))
        if ref is None:
            out.append({**s, "diff": None, "se": None, "verdict": None})
            continue
        diff, se = difference(s, ref)
        verdict = "within noise" if abs(diff) <= 2 * se else ("better" if diff > 0 else "worse")
        out.append({**s, "diff": diff, "se": se, "verdict": "reference" if s is ref else verdict})
    return out


def paired(rows: list[dict], reference: str = "relu", metric: str = "test_acc", confidence: float = 0.95
           ) -> dict[tuple[str, str, str], dict]:
    """(data, arch, activation) -> `course_lib.stats.paired_difference` of `metric` against `reference` on the
    same data set and architecture, matched seed by seed (only seeds both have), for every other activation.

    Runs with the same seed start from the same torch seed and see the same minibatch order, so the difference
    per seed removes much of the seed-to-seed noise that `versus` (two independent means) keeps.

    Taught in notebook 06 (capstone comparison).
    """
    from course_lib.stats import paired_difference

    by_key: dict[tuple[str, str, str], dict[int, float]] = {}
    for row in rows:
        by_key.setdefault((row["data"], row["arch"], row["activation"]), {})[row["seed"]] = row[metric]
    out = {}
    for (data, arch, activation), values in by_key.items():
        ref = by_key.get((data, arch, reference))
        if activation == reference or ref is None:
            continue
        seeds = sorted(set(values) & set(ref))
        out[data, arch, activation] = paired_difference([values[s] for s in seeds], [ref[s] for s in seeds],
                                                        confidence)
    return out


def _cell(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format(value, fmt) if fmt else str(value)


def markdown_table(rows: list[dict], columns: dict[str, tuple[str, str]]) -> str:
    """A markdown table: columns maps a header to (key, format spec), e.g. {"acc": ("mean", ".3f")}.

    A key may also be a function row -> value. None and NaN print as "n/a".

    Taught in notebook 06 (capstone comparison).
    """
    head = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    lines = [head, rule]
    for row in rows:
        cells = [_cell(key(row) if callable(key) else row[key], fmt) for key, fmt in columns.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_bars(summary: list[dict], ax=None, band: str = "minmax"):
    """Grouped bars of mean test accuracy per activation, one group per data set, with error bars.

    band: "minmax" (the range over seeds) or "std" (mean +- one sample std). Returns the Axes.
    """
    import matplotlib.pyplot as plt

    from course_lib.plotting import PALETTE

    datasets = list(dict.fromkeys(s["data"] for s in summary))
    activations = list(dict.fromkeys(s["activation"] for s in summary))
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.6), constrained_layout=True)
    width = 0.8 / len(datasets)
    for i, name in enumerate(datasets):
        entries = {s["activation"]: s for s in summary if s["data"] == name}
        xs = np.arange(len(activations)) + (i - (len(datasets) - 1) / 2) * width
        means = np.array([entries[a]["mean"] for a in activations])
        if band == "std":
            err = np.array([[entries[a]["std"] for a in activations]] * 2)
        else:
            err = np.array([means - [entries[a]["min"] for a in activations],
                            [entries[a]["max"] for a in activations] - means])
        ax.bar(xs, means, width, yerr=err, capsize=3, color=PALETTE[i % len(PALETTE)], label=name)
    ax.set_xticks(np.arange(len(activations)), activations, rotation=30)
    ax.set_ylabel("test accuracy")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax

