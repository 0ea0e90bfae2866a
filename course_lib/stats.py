"""Comparing two settings run on the same seeds: paired differences, their intervals, and words that follow them.

Two settings trained with the same seed share their initial weights and minibatch order, so the difference
*per seed* removes much of the seed noise that two independent means would keep. `paired_difference` gives the
mean of those differences with a Student-t confidence interval (95 % by default); `describe` turns it into
words that follow the interval ("indistinguishable here" when it contains 0); `plot_intervals` draws several.
`largest_within_one_se` picks a well-defined "best" setting from a noisy, flat curve.
"""

__all__ = ["paired_difference", "describe", "largest_within_one_se", "plot_intervals"]

import math

import numpy as np
from scipy import stats as _stats


def paired_difference(a, b, confidence: float = 0.95) -> dict:
    """Mean of a[i] - b[i] over seeds i, its standard error and a Student-t interval.

    a, b: equal-length sequences of one metric per seed, in the same seed order (NaN pairs are dropped).
    Returns {"mean", "se", "low", "high", "n"}; with fewer than 2 pairs se, low and high are NaN.

    Taught in notebook 03 (dead neurons).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same shape, got {a.shape} and {b.shape}")
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    n = int(d.size)
    mean = float(d.mean()) if n else math.nan
    if n < 2:
        return {"mean": mean, "se": math.nan, "low": math.nan, "high": math.nan, "n": n}
    se = float(d.std(ddof=1) / math.sqrt(n))
    half = float(_stats.t.ppf(0.5 + confidence / 2, n - 1)) * se
    return {"mean": mean, "se": se, "low": mean - half, "high": mean + half, "n": n}


def describe(diff: dict, higher: str = "better", lower: str = "worse", fmt: str = ".3f") -> str:
    """Words that follow the interval of `paired_difference`: "indistinguishable here (+0.004 ± 0.006)" when
    it contains 0, else e.g. "better by 0.021 ± 0.009" (mean ± standard error); "not comparable" with fewer
    than 3 usable seeds.

    Taught in notebook 03 (dead neurons); also used in notebook 06."""
    if diff["n"] < 3:
        return f"not comparable ({diff['n']} usable seeds)"
    spread = f"{abs(diff['mean']):{fmt}} ± {diff['se']:{fmt}}"
    if not diff["low"] > 0 and not diff["high"] < 0:
        return f"indistinguishable here ({diff['mean']:+{fmt}} ± {diff['se']:{fmt}})"
    return f"{higher if diff['mean'] > 0 else lower} by {spread}"


def largest_within_one_se(values, means, ses) -> int:
    """Index of the largest `values` entry whose mean is within one standard error of the best mean.

    The "one standard error rule": on a flat, noisy curve the argmax is a coin toss; the largest setting
    that is statistically as good as the best is well defined.

    Taught in notebook 03 (dead neurons).
    """
    values, means, ses = (np.asarray(v, dtype=float) for v in (values, means, ses))
    best = int(np.nanargmax(means))
    good = np.flatnonzero(means >= means[best] - ses[best])
    return int(good[np.argmax(values[good])])


def plot_intervals(diffs: dict, ax=None, xlabel: str = "difference", title: str | None = None):
    """One row per entry of diffs (label -> `paired_difference`): the mean as a dot, the interval as a bar,
    and a line at 0 (an entry with fewer than 2 usable seeds is named instead). Intervals that miss 0 are
    drawn filled, in a stronger colour. Returns the Axes.

    Taught in notebook 03 (dead neurons); also used in notebook 06."""
    import matplotlib.pyplot as plt

    from course_lib.plotting import PALETTE

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.45 * len(diffs) + 1.2), constrained_layout=True)
    ys = np.arange(len(diffs))[::-1]
    for y, d in zip(ys, diffs.values(), strict=True):
        if d["n"] < 2:
            ax.annotate(f"{d['n']} usable seeds", (0, y), ha="center", va="center", fontsize=9, color="0.3")
            continue
        clear = d["low"] > 0 or d["high"] < 0
        color = PALETTE[3] if clear else PALETTE[0]
        ax.errorbar(d["mean"], y, xerr=[[d["mean"] - d["low"]], [d["high"] - d["mean"]]], fmt="o", capsize=4,
                    color=color, markerfacecolor=color if clear else "white")
    ax.axvline(0, color="0.3", lw=1)
    ax.set_yticks(ys, list(diffs))
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title)
    return ax
