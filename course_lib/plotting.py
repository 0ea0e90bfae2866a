"""One-line plots for the notebooks, all in one style.

Every helper draws into `ax` (a new figure when ax is None), returns the Axes it drew on, and never
calls plt.show(): notebooks display figures inline. Colours come from the Okabe-Ito palette, which
stays distinguishable for colour-blind readers; `use_style()` makes your own plots match.
Arrays may be numpy arrays or torch tensors.
"""

__all__ = [
    "use_style", "plot_functions", "plot_with_band", "plot_history", "plot_firing_rates", "plot_decision_regions",
]

from collections.abc import Callable

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch

# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision deficiency.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")

STYLE = {
    "figure.figsize": (6.0, 3.6),
    "figure.dpi": 100,
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 10,
    "legend.frameon": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=PALETTE),
    "lines.linewidth": 2.0,
}


def use_style() -> None:
    """Make every later matplotlib figure use the course's style (sizes, grid, colour-blind-safe colours).

    Taught in notebook 01 (activation functions); also used in notebooks 02, 03, 04, 05, 06."""
    mpl.rcParams.update(STYLE)


def _color(i: int) -> str:
    """The i-th colour of the palette (wrapping around)."""
    return PALETTE[i % len(PALETTE)]


# Lines on a white background: the palette without its yellow, which is too light to read as a thin line.
LINE_COLORS = tuple(c for c in PALETTE if c != "#F0E442")


def _line_color(i: int) -> str:
    """The i-th colour for lines (no yellow), wrapping around."""
    return LINE_COLORS[i % len(LINE_COLORS)]


def _axes(ax=None, ncols: int = 1, figsize: tuple | None = None):
    """`ax` if given, else the Axes (or array of ncols Axes) of a new figure."""
    if ax is not None:
        return ax
    width, height = STYLE["figure.figsize"]
    _, axes = plt.subplots(1, ncols, figsize=figsize or (width * (1 + 0.6 * (ncols - 1)), height),
                           constrained_layout=True)
    return axes


def _tidy(ax, xlabel: str | None = None, ylabel: str | None = None, title: str | None = None):
    """The course's look on one Axes, whatever the global rcParams: light grid, no top/right frame."""
    ax.grid(True, alpha=0.3)
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    return ax


def _np(a) -> np.ndarray:
    """A numpy copy of an array or tensor (detached from autograd, on the CPU)."""
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


# ---------------------------------------------------------------- functions and derivatives


def _call(f: Callable, x: np.ndarray) -> np.ndarray:
    """f(x) for a numpy function, a torch function, or an nn.Module (given a float32 tensor)."""
    if not isinstance(f, torch.nn.Module):
        try:
            return np.asarray(f(x), dtype=float)
        except (TypeError, AttributeError):
            pass
    with torch.no_grad():
        return _np(f(torch.as_tensor(x, dtype=torch.float32))).astype(float)


def plot_functions(functions: dict, x: np.ndarray | None = None, derivatives: bool = True, ax=None):
    """Plot each named function (left) and, dashed, its derivative (right), each panel with its legend.

    functions: name -> f, or name -> (f, df); f may be numpy, torch, or an nn.Module. Without df the
    derivative is a central difference on the grid (a kink shows as one intermediate point).
    x: the grid, default 401 points on [-4, 4]. Returns the two Axes (one if derivatives=False).

    Taught in notebook 01 (activation functions); also used in notebooks 02, 04, 05.
    """
    x = np.linspace(-4, 4, 401) if x is None else _np(x).astype(float)
    axes = _axes(ax, ncols=2 if derivatives else 1)
    ax_f, ax_df = (axes[0], axes[1]) if derivatives else (axes, None)
    for i, (name, fs) in enumerate(functions.items()):
        f, df = fs if isinstance(fs, tuple) else (fs, None)
        y = _call(f, x)
        ax_f.plot(x, y, color=_line_color(i), label=name)
        if ax_df is not None:
            dy = _call(df, x) if df is not None else np.gradient(y, x)
            ax_df.plot(x, dy, color=_line_color(i), linestyle="--", label=name)
    _tidy(ax_f, "x", "f(x)", "functions").legend()
    if ax_df is not None:
        _tidy(ax_df, "x", "f'(x)", "derivatives").legend()
    return axes


# ---------------------------------------------------------------- training curves


def plot_with_band(x, ys, label: str | None = None, ax=None, band: str = "std", color: str | None = None):
    """The mean over seeds of ys: (n_seeds, n_points) against x: (n_points,), with a shaded band.

    band: "std" (mean +- one standard deviation) or "minmax" (the range over seeds). One seed draws
    no band. A NaN in any seed (a diverged run) leaves a gap there rather than hiding that run.

    Taught in notebook 01 (activation functions); also used in notebooks 02, 03.
    """
    x, ys = _np(x), _np(ys).astype(float)
    if ys.ndim != 2 or ys.shape[1] != len(x) or ys.shape[0] == 0:
        raise ValueError(f"ys must have shape (n_seeds, len(x)) = (n, {len(x)}), got {ys.shape}")
    if band not in ("std", "minmax"):
        raise ValueError(f"band must be 'std' or 'minmax', got {band!r}")
    ax = _axes(ax)
    mean = ys.mean(axis=0)
    low, high = ((mean - ys.std(axis=0), mean + ys.std(axis=0)) if band == "std"
                 else (ys.min(axis=0), ys.max(axis=0)))
    (line,) = ax.plot(x, mean, label=label, color=color)
    if len(ys) > 1:
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    return _tidy(ax)


_METRIC_LABELS = {"train_loss": "training loss", "val_loss": "validation loss",
                  "train_acc": "training accuracy", "val_acc": "validation accuracy",
                  "epoch_time_s": "seconds per epoch"}


def plot_history(histories, metric: str = "val_acc", ax=None, band: str = "std"):
    """Training curves of `metric` per epoch: one History, or name -> History / list of Histories.

    A list (one History per seed) is drawn as its mean with a shaded band (see plot_with_band);
    runs of different lengths are cut to the shortest. metric: train_loss, train_acc, val_loss,
    val_acc, epoch_time_s, or anything recorded in History.extra.

    Taught in notebook 05 (Maxout).
    """
    if not isinstance(histories, dict):
        histories = {None: histories}
    ax = _axes(ax)
    for i, (name, runs) in enumerate(histories.items()):
        runs = runs if isinstance(runs, list | tuple) else [runs]
        n = min(len(r.metric(metric)) for r in runs)
        ys = np.array([np.asarray(r.metric(metric)[:n], dtype=float) for r in runs])
        label = name if len(runs) == 1 or name is None else f"{name} ({len(runs)} seeds)"
        plot_with_band(np.arange(1, n + 1), ys, label=label, ax=ax, band=band, color=_color(i))
    if any(name is not None for name in histories):
        ax.legend()
    return _tidy(ax, "epoch", _METRIC_LABELS.get(metric, metric))


# ---------------------------------------------------------------- dead units


def plot_firing_rates(rates: dict, ax=None, bins: int = 20):
    """Histogram of each layer's per-unit firing rates (fraction of inputs on which a unit is active).

    rates: layer name -> (n_units,) values in [0, 1]. Dead units (rate exactly 0) are drawn as hatched bars left
    of 0, side by side (one per layer), and counted in the legend, e.g. "layer 1: 12/100 dead".

    Taught in notebook 03 (dead neurons); also used in notebook 05.
    """
    ax = _axes(ax)
    width = 1.0 / bins
    slot = width / max(len(rates), 1)  # each layer's dead bar gets its own slot left of 0: none hides another
    for i, (name, r) in enumerate(rates.items()):
        r = _np(r).astype(float).ravel()
        if r.size and (r.min() < 0 or r.max() > 1):
            raise ValueError(f"firing rates must lie in [0, 1]; layer {name!r} has [{r.min()}, {r.max()}]")
        dead = int((r == 0).sum())
        label = f"{name}: {dead}/{r.size} dead"
        ax.hist(r[r > 0], bins=np.linspace(0, 1, bins + 1), histtype="stepfilled", alpha=0.35,
                color=_color(i), edgecolor=_color(i), linewidth=1.5, label=label)
        if dead:
            ax.bar(-width + (i + 0.5) * slot, dead, width=slot, color=_color(i), alpha=0.35, edgecolor=_color(i),
                   hatch="//", linewidth=1.5)
    ax.set_xlim(-width * 1.5, 1)
    ax.legend()
    return _tidy(ax, "firing rate (hatched left of 0: dead units)", "number of units")


# ---------------------------------------------------------------- decision regions


def _predict_labels(predict, points: np.ndarray) -> np.ndarray:
    """Labels (M,) from a torch module or a callable on (M, 2) numpy returning labels or logits."""
    if isinstance(predict, torch.nn.Module):
        was_training = predict.training
        predict.eval()
        with torch.no_grad():
            out = _np(predict(torch.as_tensor(points, dtype=torch.float32)))
        predict.train(was_training)
    else:
        out = _np(predict(points))
    if out.ndim == 2 and out.shape[1] > 1:
        return out.argmax(axis=1)
    out = out.reshape(-1)
    return out.astype(np.int64) if np.issubdtype(out.dtype, np.integer) else (out > 0).astype(np.int64)


def plot_decision_regions(predict, x, y, ax=None, resolution: int = 200, margin: float = 0.1):
    """Shade the class `predict` assigns to each point of the plane, and scatter the data on top.

    predict: a torch module, or a callable on (M, 2) numpy, returning labels (M,), logits (M, C),
    or one binary logit (M,) / (M, 1) (class 1 where > 0). x: (N, 2) points, y: (N,) labels.
    margin: extra room around the data, as a fraction of its range.

    Taught in notebook 01 (activation functions).
    """
    x, y = _np(x).astype(float), _np(y).astype(np.int64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"decision regions need 2-D points x of shape (N, 2), got {x.shape}")
    ax = _axes(ax, figsize=(4.5, 4.5))
    lo, hi = x.min(0), x.max(0)
    pad = margin * (hi - lo) + 1e-9
    g0, g1 = np.meshgrid(np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution),
                         np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution))
    labels = _predict_labels(predict, np.c_[g0.ravel(), g1.ravel()]).reshape(g0.shape)
    k = int(max(labels.max(), y.max())) + 1
    ax.contourf(g0, g1, labels, levels=np.arange(k + 1) - 0.5, colors=[_color(c) for c in range(k)],
                alpha=0.25)
    for c in range(k):
        pts = x[y == c]
        if len(pts):
            ax.scatter(pts[:, 0], pts[:, 1], s=14, color=_color(c), edgecolors="white", linewidths=0.4,
                       label=f"class {c}")
    ax.set_aspect("equal", adjustable="box")
    ax.legend(loc="best", markerscale=1.5)
    _tidy(ax, "$x_1$", "$x_2$").grid(False)
    return ax
