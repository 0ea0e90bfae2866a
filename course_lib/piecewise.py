"""Piecewise-linear functions of one variable as maxout units: tangent envelopes and differences of two maxouts.

A 1-D maxout unit with k pieces is g(x) = max_i (w_i * x + b_i), given here by two plain arrays w, b of
shape (k,). It is convex in x, whatever the weights. Two constructions, both exact, no training:

- `tangent_pieces`: k tangent lines of a convex f, touching it at the centres of k equal cells of [lo, hi].
  Their maximum lies below f (a convex f lies above each of its tangents) and, for f = x**2, misses it by
  exactly (cell half-width)**2 = ((hi - lo) / (2k))**2: the error shrinks like 1/k**2.
- `difference_of_maxouts`: any continuous piecewise-linear interpolant of f (convex or not) as
  g1(x) - g2(x), two maxout units with one piece per interpolation segment (Goodfellow et al. 2013 use this
  to show that maxout networks are universal approximators).

The weights load directly into `course_lib.nn.Maxout(1, 1, k)`: linear.weight = w[:, None], linear.bias = b.
"""

__all__ = ["maxout_1d", "tangent_points", "tangent_pieces", "max_error", "difference_of_maxouts"]

from collections.abc import Callable

import numpy as np


def maxout_1d(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """max_i (w_i * x + b_i) for x of any shape, w and b of shape (k,); the output has x's shape.

    Taught in notebook 05 (Maxout)."""
    x, w, b = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if w.ndim != 1 or w.shape != b.shape or w.size == 0:
        raise ValueError(f"w and b must both have shape (k,) with k >= 1, got {w.shape} and {b.shape}")
    return (x[..., None] * w + b).max(axis=-1)


def tangent_points(lo: float, hi: float, k: int) -> np.ndarray:
    """The centres of k equal cells of [lo, hi], shape (k,): lo + (i + 1/2) * (hi - lo) / k.

    Taught in notebook 05 (Maxout)."""
    if k < 1 or not hi > lo:
        raise ValueError(f"need k >= 1 and hi > lo, got k={k}, lo={lo}, hi={hi}")
    return lo + (np.arange(k) + 0.5) * (hi - lo) / k


def tangent_pieces(f: Callable, df: Callable, lo: float, hi: float, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(w, b), each (k,): the tangents of f at `tangent_points(lo, hi, k)`, w_i = f'(t_i), b_i = f(t_i) - w_i t_i.

    f and df are numpy functions (value and derivative). For convex f, maxout_1d(x, w, b) <= f(x) everywhere.

    Taught in notebook 05 (Maxout).
    """
    t = tangent_points(lo, hi, k)
    w = np.asarray(df(t), dtype=np.float64)
    return w, np.asarray(f(t), dtype=np.float64) - w * t


def max_error(f: Callable, w: np.ndarray, b: np.ndarray, lo: float, hi: float, n: int = 4001) -> float:
    """max |f(x) - maxout_1d(x, w, b)| over n evenly spaced points of [lo, hi] (both ends included).

    Taught in notebook 05 (Maxout)."""
    x = np.linspace(lo, hi, n)
    return float(np.max(np.abs(np.asarray(f(x), dtype=np.float64) - maxout_1d(x, w, b))))


def _convex_pieces(x: np.ndarray, y: np.ndarray, slopes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lines through (x[j], y[j]) with slope slopes[j], one per segment: (w, b) of shape (segments,)."""
    return slopes, y[:-1] - slopes * x[:-1]


def difference_of_maxouts(x_knots: np.ndarray, y_knots: np.ndarray) -> tuple[tuple, tuple]:
    """((w1, b1), (w2, b2)), each array (m,) for m = len(x_knots) - 1 segments, such that
    maxout_1d(x, w1, b1) - maxout_1d(x, w2, b2) is the piecewise-linear interpolant of the knots
    on [x_knots[0], x_knots[-1]] (x_knots increasing, shape (m + 1,); y_knots the values there).

    The interpolant's slope changes c_i at the inner knots are split by sign: the upward bends (c_i > 0)
    with the first segment's line make a convex g1, the downward bends make a convex g2 (with a minus sign).
    A convex piecewise-linear function is the max of its segments' lines, so each is one maxout unit.

    Taught in notebook 05 (Maxout).
    """
    x, y = np.asarray(x_knots, dtype=np.float64), np.asarray(y_knots, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or x.size < 2 or np.any(np.diff(x) <= 0):
        raise ValueError("x_knots must be increasing with at least 2 knots, and y_knots of the same shape (m+1,)")
    slopes = np.diff(y) / np.diff(x)
    bends = np.diff(slopes)  # (m - 1,): slope change at each inner knot
    up = np.concatenate([[slopes[0]], np.maximum(bends, 0)]).cumsum()  # slope of g1 on each segment
    down = np.concatenate([[0.0], np.maximum(-bends, 0)]).cumsum()  # slope of g2 on each segment
    g2 = np.concatenate([[0.0], np.cumsum(down * np.diff(x))])  # g2 at the knots, g2(x0) = 0
    return _convex_pieces(x, y + g2, up), _convex_pieces(x, g2, down)
