"""Numerical gradient checks (as in CS231n's gradient_check.py) whose reports say in words why a check failed.

- Central differences: df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2h), with an error of order h**2 for a
  smooth f. x must be float64: in float32 the round-off in f, divided by 2h, swamps the derivative.
- Relative error of two gradients a and b: the largest, over elements, of |a - b| / max(1e-12, |a| + |b|).
  In float64 with h = 1e-5, below 1e-7 is a pass; 1e-4 and above usually means a wrong derivative.
- Kinks: where f is not differentiable (ReLU at 0), a step that straddles the kink averages the two
  one-sided slopes, so the central difference disagrees with any single analytic value even when the
  analytic gradient is right. check_gradient finds such inputs (from known kink values, and from forward
  and backward one-sided differences that disagree) and reports them apart from the rest.
"""

__all__ = ["numerical_gradient", "numerical_gradient_array", "relative_error", "check_gradient"]

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

#: One-sided slopes that differ by more than this fraction of their size mark a kink inside the step.
#: A smooth f disagrees by only about h * |f''|; a kink by the jump in slope, whatever h is.
KINK_SLOPE_RTOL = 1e-2


def _float64_input(x) -> np.ndarray:
    """x as a float64 array (the same object when it already is one, so f may read it in place)."""
    x = np.asarray(x)
    if x.dtype != np.float64:
        raise ValueError(
            f"x has dtype {x.dtype}; finite differences need float64 (float32 round-off, divided by the "
            "step 2h, is far larger than the derivative's own error): pass x.astype(np.float64)"
        )
    if not np.all(np.isfinite(x)):
        n_bad = int(np.sum(~np.isfinite(x)))
        raise ValueError(f"x holds {n_bad} non-finite values (nan or inf); the gradient there is undefined")
    return x


def _shifted_values(f: Callable, x: np.ndarray, h: float) -> Iterator[tuple[tuple, np.ndarray, np.ndarray]]:
    """Yield (i, f(x + h e_i), f(x - h e_i)) for every index i, putting x[i] back after each pair."""
    for ix in np.ndindex(x.shape):
        old = x[ix]
        try:
            x[ix] = old + h
            plus = np.array(f(x), dtype=np.float64)  # a copy: f may return the same buffer every call
            x[ix] = old - h
            minus = np.array(f(x), dtype=np.float64)
        finally:
            x[ix] = old
        yield ix, plus, minus


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central-difference gradient of a scalar function f at x (float64, any shape); same shape as x.

    Not taught in a notebook: the grader's kernel-side checks use it."""
    x = _float64_input(x)
    grad = np.zeros_like(x)
    for ix, plus, minus in _shifted_values(f, x, h):
        grad[ix] = (plus - minus) / (2 * h)
    return grad


def numerical_gradient_array(f: Callable, x: np.ndarray, dout: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Gradient of sum(f(x) * dout) for an array-valued f, by central differences; same shape as x.

    Used in exercise ex05."""
    x = _float64_input(x)
    dout = np.asarray(dout, dtype=np.float64)
    grad = np.zeros_like(x)
    for ix, plus, minus in _shifted_values(f, x, h):
        if plus.shape != dout.shape:
            raise ValueError(f"f(x) has shape {plus.shape} but dout has shape {dout.shape}")
        grad[ix] = np.sum((plus - minus) * dout) / (2 * h)
    return grad


def _relative_errors(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| / max(1e-12, |a| + |b|), element-wise."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare gradients of shapes {a.shape} and {b.shape}")
    return np.abs(a - b) / np.maximum(1e-12, np.abs(a) + np.abs(b))


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max over elements of |a - b| / max(1e-12, |a| + |b|); a and b must have the same shape.

    Used in exercise ex05."""
    return float(np.max(_relative_errors(a, b), initial=0.0))


@dataclass(frozen=True)
class GradCheckReport:
    """What check_gradient found; str(report) explains it in words."""

    max_error: float  # worst relative error over all inputs
    worst_index: tuple  # the input where it occurs
    near_kink: tuple  # indices of inputs within h of a kink
    max_error_away_from_kinks: float  # worst relative error over the other inputs (0.0 if none)
    failing: tuple  # indices of inputs whose relative error exceeds tol
    passed: bool  # every input within tol
    passed_away_from_kinks: bool  # every input not near a kink within tol
    n_inputs: int
    h: float
    tol: float
    kinks: tuple | None
    numerical: np.ndarray = field(repr=False, compare=False)
    errors: np.ndarray = field(repr=False, compare=False)  # relative error per input, x's shape

    def explain(self) -> str:
        """The verdict in words: passed, failed only near kinks (harmless), or failed away from them."""
        worst = f"worst relative error {self.max_error:.0e} at index {self.worst_index} (tol {self.tol:.0e})"
        near, n_fail = set(self.near_kink), len(self.failing)
        if self.passed:
            aside = f"; {len(near)} of them lie within h={self.h:g} of a kink" if near else ""
            return f"passes at all {self.n_inputs} inputs{aside}: {worst}"
        if self.kinks:
            where = "the kink at " + " and ".join(f"{k:g}" for k in self.kinks)
        else:
            where = "a kink (there the forward and backward one-sided differences disagree)"
        if self.passed_away_from_kinks:
            return (
                f"fails at {n_fail} of {self.n_inputs} inputs, all within h={self.h:g} of {where}: "
                "the central difference straddles the kink and averages the two one-sided slopes; "
                f"away from the kink the worst relative error is {self.max_error_away_from_kinks:.0e}"
            )
        n_away = sum(ix not in near for ix in self.failing)
        also = f"; {n_fail - n_away} more fail within h={self.h:g} of {where}" if n_fail > n_away else ""
        return (
            f"FAILS at {n_away} of {self.n_inputs} inputs away from any kink, so the analytic gradient is "
            f"probably wrong: away from kinks the worst relative error is "
            f"{self.max_error_away_from_kinks:.0e}; overall the {worst}{also}"
        )

    def __str__(self) -> str:
        return self.explain()


def _indices(mask: np.ndarray) -> tuple[tuple[int, ...], ...]:
    """The index tuples where mask is True."""
    return tuple(tuple(int(i) for i in row) for row in np.argwhere(mask))


def _near_kink_values(x: np.ndarray, h: float, kinks) -> np.ndarray:
    """Inputs with |x - kink| < h for some kink of an element-wise function."""
    near = np.zeros(x.shape, dtype=bool)
    for kink in kinks or ():
        near |= np.abs(x - kink) < h
    return near


def _one_sided_slopes_disagree(f0: float, plus: np.ndarray, minus: np.ndarray, h: float) -> np.ndarray:
    """Inputs whose forward and backward differences differ by > KINK_SLOPE_RTOL of their size: a kink.

    The size is |forward| + |backward|, but at least the largest central difference, so that a smooth
    stationary point (both slopes ~ 0) is not mistaken for a kink.
    """
    forward, backward = (plus - f0) / h, (f0 - minus) / h
    typical = np.max(np.abs(forward + backward) / 2, initial=0.0)
    size = np.maximum(np.abs(forward) + np.abs(backward), typical)
    return np.abs(forward - backward) > KINK_SLOPE_RTOL * size


def check_gradient(
    f: Callable[[np.ndarray], float],
    analytic_grad: np.ndarray | Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    h: float = 1e-5,
    tol: float = 1e-7,
    kinks: tuple[float, ...] | None = None,
) -> GradCheckReport:
    """Compare an analytic gradient of scalar f at x (float64) with central differences, input by input.

    analytic_grad: an array of x's shape, or a function of x returning one.
    kinks: values where an element-wise f is not differentiable, e.g. (0.0,) for ReLU. Inputs within h of
    one, and inputs whose one-sided differences disagree (a kink somewhere inside the network), are
    reported as near a kink.

    Taught in notebook 02 (ReLU and its derivative); also used in notebook 05 and exercise ex02.
    """
    x = _float64_input(x)
    if x.size == 0:
        raise ValueError("x is empty: there is no gradient to check")
    analytic = np.asarray(analytic_grad(x) if callable(analytic_grad) else analytic_grad, dtype=np.float64)
    if analytic.shape != x.shape:
        raise ValueError(f"the analytic gradient has shape {analytic.shape} but x has shape {x.shape}")
    f0 = float(f(x))
    plus, minus = np.zeros_like(x), np.zeros_like(x)
    for ix, p, m in _shifted_values(f, x, h):
        plus[ix], minus[ix] = p, m
    numerical = (plus - minus) / (2 * h)
    errors = _relative_errors(analytic, numerical)
    near = _near_kink_values(x, h, kinks) | _one_sided_slopes_disagree(f0, plus, minus, h)
    away = float(np.max(errors[~near], initial=0.0))
    return GradCheckReport(
        max_error=float(errors.max()),
        worst_index=tuple(int(i) for i in np.unravel_index(np.argmax(errors), x.shape)),
        near_kink=_indices(near),
        max_error_away_from_kinks=away,
        passed=not np.any(errors > tol),
        passed_away_from_kinks=away <= tol,
        failing=_indices(errors > tol),
        n_inputs=x.size,
        h=h,
        tol=tol,
        kinks=None if kinks is None else tuple(kinks),
        numerical=numerical,
        errors=errors,
    )
