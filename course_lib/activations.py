"""Rectified linear units and their relatives, in numpy: reference implementations checked against PyTorch.

Conventions kept by every function here:

- Inputs are float arrays of any shape, and the output has the input's dtype (float32 in, float32 out;
  float64 in, float64 out). Python scalars and lists are converted with np.asarray to float64. Integer
  and bool arrays raise ValueError: convert them first, e.g. x.astype(np.float64).
- Each `*_grad` sits right after its function and returns the derivative element-wise, or, with `dout`,
  the gradient of sum(f(x) * dout).
- At a kink (x == 0 for ReLU, Leaky ReLU, PReLU, ELU) we return what torch autograd returns: relu_grad
  gives 0 (any value in [0, 1] is a valid subgradient; `at_zero` chooses), leaky_relu_grad and prelu_grad
  give the negative-side slope, elu_grad gives alpha.
- PReLU's per-channel slopes live on axis 1, as in torch: x of shape (N, C, ...) with a of shape (C,).
- Maxout groups the last axis into contiguous pieces: z[..., j*k:(j+1)*k] are unit j's k pieces.
- The CS231n-style layers `*_forward(x, ...) -> (out, cache)` and `*_backward(dout, cache)` are for the
  exercises; each backward reuses the matching `*_grad`.
"""

__all__ = [
    "relu", "relu_grad", "leaky_relu", "leaky_relu_grad", "prelu", "prelu_grad", "elu", "elu_grad", "softplus",
    "softplus_grad", "sigmoid", "sigmoid_grad", "tanh", "tanh_grad", "gelu", "gelu_grad", "silu", "silu_grad",
    "maxout", "maxout_grad", "affine_forward", "affine_backward", "relu_forward", "relu_backward", "maxout_forward",
    "maxout_backward",
]

import math

import numpy as np
from scipy.special import erf


def _floats(x) -> np.ndarray:
    """x as a float array; Python scalars and lists become float64, non-float arrays are refused."""
    if isinstance(x, (int, float, list, tuple)):
        return np.asarray(x, dtype=np.float64)
    arr = np.asarray(x)
    if arr.dtype.kind != "f":  # cheaper than np.issubdtype; relu's overhead on small arrays matters
        raise ValueError(
            f"expected a floating-point array, got dtype {arr.dtype}; "
            "convert it first, e.g. x.astype(np.float64) or x.astype(np.float32)"
        )
    return arr


def _dout(dout, shape: tuple, dtype) -> np.ndarray:
    """The upstream gradient: ones when None, else checked to have `shape`, in `dtype`."""
    if dout is None:
        return np.ones(shape, dtype=dtype)
    dout = _floats(dout)
    if dout.shape != shape:
        raise ValueError(f"dout has shape {dout.shape} but the output has shape {shape}")
    return dout.astype(dtype, copy=False)


# ---- ReLU -------------------------------------------------------------------------------------------


def relu(x: np.ndarray) -> np.ndarray:
    """max(0, x), element-wise.

    Taught in notebook 02 (ReLU and its derivative); also used in notebooks 00, 01, 04."""
    return np.maximum(_floats(x), 0)  # a Python 0 is "weak": float32 stays float32 (NEP 50)


def relu_grad(x: np.ndarray, at_zero: float = 0.0) -> np.ndarray:
    """1 where x > 0, 0 where x < 0, and `at_zero` at the kink (default 0, as torch).

    Taught in notebook 02 (ReLU and its derivative); also used in notebooks 00, 01, 04."""
    if not 0.0 <= at_zero <= 1.0:
        raise ValueError(
            f"at_zero={at_zero} is not a subgradient of ReLU at 0: the subgradients there are the slopes "
            "between the left slope 0 and the right slope 1, so choose a value in [0, 1]"
        )
    x = _floats(x)
    return np.where(x > 0, 1.0, np.where(x < 0, 0.0, at_zero)).astype(x.dtype)


# ---- Leaky ReLU and PReLU ---------------------------------------------------------------------------


def leaky_relu(x: np.ndarray, slope: float = 0.01) -> np.ndarray:
    """x where x > 0, slope * x elsewhere.

    Taught in notebook 04 (Leaky ReLU and PReLU); also used in notebook 01."""
    x = _floats(x)
    return np.where(x > 0, x, slope * x).astype(x.dtype, copy=False)


def leaky_relu_grad(x: np.ndarray, slope: float = 0.01) -> np.ndarray:
    """1 where x > 0, `slope` where x <= 0 (torch also gives `slope` at exactly 0).

    Taught in notebook 04 (Leaky ReLU and PReLU); also used in notebook 01."""
    x = _floats(x)
    return np.where(x > 0, 1.0, slope).astype(x.dtype)


def _prelu_slope(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    """`a` shaped to broadcast against x: one shared slope, or one per channel along axis 1."""
    if a.size == 1 and a.ndim <= 1:
        return a.reshape(()).astype(x.dtype)
    if a.ndim != 1 or x.ndim < 2 or x.shape[1] != a.shape[0]:
        raise ValueError(
            f"prelu slope of shape {a.shape} does not fit input of shape {x.shape}: pass one slope "
            "(a float or shape (1,)), or one per channel along axis 1: x (N, C, ...) with a (C,)"
        )
    return a.reshape((-1,) + (1,) * (x.ndim - 2)).astype(x.dtype)


def prelu(x: np.ndarray, a) -> np.ndarray:
    """Leaky ReLU with a learned slope `a`: a scalar, or shape (C,) for x of shape (N, C, ...).

    Taught in notebook 04 (Leaky ReLU and PReLU); also used in notebook 01."""
    x = _floats(x)
    return np.where(x > 0, x, _prelu_slope(x, _floats(a)) * x)


def prelu_grad(x: np.ndarray, a, dout: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of sum(prelu(x, a) * dout): dx of x's shape, da of a's shape (summed over its elements).

    At x == 0 we follow torch: dx gets the slope a, and da gets x * dout = 0.

    Taught in notebook 04 (Leaky ReLU and PReLU); also used in notebook 01.
    """
    x, a = _floats(x), _floats(a)
    slope = _prelu_slope(x, a)
    dout = _dout(dout, x.shape, x.dtype)
    dx = dout * np.where(x > 0, 1, slope)
    da_each = dout * np.where(x > 0, 0, x)
    per_channel = slope.ndim > 0
    da = da_each.sum(axis=tuple(i for i in range(x.ndim) if i != 1)) if per_channel else da_each.sum()
    return dx, np.reshape(da, a.shape).astype(a.dtype)


# ---- Smooth relatives -------------------------------------------------------------------------------


def elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """x where x > 0, alpha * (exp(x) - 1) elsewhere.

    Taught in notebook 01 (activation functions)."""
    x = _floats(x)
    negative_side = alpha * np.expm1(np.minimum(x, 0))  # minimum: no overflow warning from the unused side
    return np.where(x > 0, x, negative_side).astype(x.dtype, copy=False)


def elu_grad(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """1 where x > 0, alpha * exp(x) where x <= 0 (torch gives alpha at exactly 0).

    Taught in notebook 01 (activation functions)."""
    x = _floats(x)
    return np.where(x > 0, 1, alpha * np.exp(np.minimum(x, 0))).astype(x.dtype)


def softplus(x: np.ndarray, beta: float = 1.0) -> np.ndarray:
    """log(1 + exp(beta * x)) / beta, computed without overflow for any x.

    torch's softplus returns x itself where beta * x > 20 (threshold=20); ours keeps the exact formula,
    which differs there by log1p(exp(-beta * x)) / beta < 2.1e-9 / beta.

    Taught in notebook 01 (activation functions); also used in notebook 05.
    """
    x = _floats(x)
    bx = beta * x
    return ((np.maximum(bx, 0) + np.log1p(np.exp(-np.abs(bx)))) / beta).astype(x.dtype, copy=False)


def softplus_grad(x: np.ndarray, beta: float = 1.0) -> np.ndarray:
    """sigmoid(beta * x); torch returns exactly 1 where beta * x > 20, we return 1 - O(2e-9).

    Taught in notebook 01 (activation functions)."""
    x = _floats(x)
    return sigmoid(beta * x).astype(x.dtype, copy=False)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), computed from exp(-|x|) so that it never overflows.

    Taught in notebook 01 (activation functions); also used in notebook 05."""
    x = _floats(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_grad(x: np.ndarray) -> np.ndarray:
    """sigmoid(x) * (1 - sigmoid(x)).

    Taught in notebook 01 (activation functions)."""
    s = sigmoid(x)
    return s * (1 - s)


def tanh(x: np.ndarray) -> np.ndarray:
    """Hyperbolic tangent, element-wise.

    Taught in notebook 01 (activation functions)."""
    return np.tanh(_floats(x))


def tanh_grad(x: np.ndarray) -> np.ndarray:
    """1 - tanh(x)**2.

    Taught in notebook 01 (activation functions)."""
    t = tanh(x)
    return 1 - t * t


_SQRT_2 = math.sqrt(2.0)  # Python floats, not numpy scalars, so float32 inputs stay float32
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715


def gelu(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    """x * Phi(x) with Phi the standard normal CDF; approximate="tanh" uses torch's tanh formula.

    Taught in notebook 01 (activation functions)."""
    x = _floats(x)
    if approximate == "none":
        return 0.5 * x * (1 + erf(x / _SQRT_2))
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x**3)))
    raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")


def gelu_grad(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    """Phi(x) + x * phi(x) (exact), or the derivative of the tanh formula.

    Taught in notebook 01 (activation functions)."""
    x = _floats(x)
    if approximate == "none":
        return 0.5 * (1 + erf(x / _SQRT_2)) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    if approximate == "tanh":
        t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x**3))
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * x * x)
    raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(x: np.ndarray) -> np.ndarray:
    """x * sigmoid(x), also called swish.

    Taught in notebook 01 (activation functions)."""
    x = _floats(x)
    return x * sigmoid(x)


def silu_grad(x: np.ndarray) -> np.ndarray:
    """sigmoid(x) * (1 + x * (1 - sigmoid(x))).

    Taught in notebook 01 (activation functions)."""
    x = _floats(x)
    s = sigmoid(x)
    return s * (1 + x * (1 - s))


# ---- Maxout -----------------------------------------------------------------------------------------


def _maxout_pieces(z: np.ndarray, k: int) -> np.ndarray:
    """z of shape (..., units * k) viewed as (..., units, k)."""
    z = _floats(z)
    width = z.shape[-1] if z.ndim else None
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 or width is None or width % k:
        raise ValueError(
            f"maxout splits the last axis into groups of k pieces, but the width is {width} and k={k!r}: "
            "k must be an integer >= 1 that divides the width"
        )
    return z.reshape(z.shape[:-1] + (width // k, k))


def maxout(z: np.ndarray, k: int) -> np.ndarray:
    """Max over contiguous groups of k along the last axis: (..., units * k) -> (..., units).

    Taught in notebook 05 (Maxout); also used in exercise ex05."""
    return _maxout_pieces(z, k).max(axis=-1)


def maxout_grad(z: np.ndarray, k: int, dout: np.ndarray | None = None) -> np.ndarray:
    """Gradient of sum(maxout(z, k) * dout) w.r.t. z (z's shape): each unit's dout goes to its winning piece.

    Ties go to the first maximum (as np.argmax); torch's z.view(..., units, k).max(-1) does the same,
    whereas torch.amax splits the gradient evenly between tied pieces.

    Taught in notebook 05 (Maxout).
    """
    pieces = _maxout_pieces(z, k)
    dout = _dout(dout, pieces.shape[:-1], pieces.dtype)
    dpieces = np.zeros_like(pieces)
    np.put_along_axis(dpieces, pieces.argmax(axis=-1)[..., None], dout[..., None], axis=-1)
    return dpieces.reshape(np.shape(z))


# ---- CS231n-style layers ----------------------------------------------------------------------------


def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """x of shape (N, d1, ..., dk), read as (N, D) with D = d1 * ... * dk; w (D, M); b (M,) -> out (N, M).

    Taught in notebook 05 (Maxout)."""
    x, w, b = _floats(x), _floats(w), _floats(b)
    dim = math.prod(x.shape[1:])
    if x.ndim < 2 or w.ndim != 2 or w.shape[0] != dim or b.shape != (w.shape[1],):
        raise ValueError(
            f"affine_forward needs x (N, d1, ..., dk), w (d1*...*dk, M), b (M,); "
            f"got x {x.shape}, w {w.shape}, b {b.shape}"
        )
    out = x.reshape(x.shape[0], dim) @ w + b
    return out, (x, w, b)


def affine_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout (N, M) -> dx of x's original shape (N, d1, ..., dk), dw (D, M), db (M,).

    Taught in notebook 05 (Maxout)."""
    x, w, b = cache
    dout = _dout(dout, (x.shape[0], w.shape[1]), np.result_type(x, w, b))
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], w.shape[0]).T @ dout
    return dx, dw, dout.sum(axis=0)


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """relu(x) of x's shape; the cache is x.

    Imported by no notebook: exercise ex02 has students write it, and its grader compares theirs with this."""
    x = _floats(x)
    return relu(x), x


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """dx = dout * relu_grad(x), of x's shape (0 at the kink, as torch).

    Imported by no notebook: exercise ex02 has students write it, and its grader compares theirs with this."""
    x = cache
    return _dout(dout, x.shape, x.dtype) * relu_grad(x)


def leaky_relu_forward(x: np.ndarray, slope: float = 0.01) -> tuple[np.ndarray, tuple]:
    """leaky_relu(x, slope) of x's shape; the cache is (x, slope)."""
    x = _floats(x)
    return leaky_relu(x, slope), (x, slope)


def leaky_relu_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dx = dout * leaky_relu_grad(x, slope), of x's shape."""
    x, slope = cache
    return _dout(dout, x.shape, x.dtype) * leaky_relu_grad(x, slope)


def maxout_forward(z: np.ndarray, k: int) -> tuple[np.ndarray, tuple]:
    """maxout(z, k): (..., units * k) -> (..., units); the cache is (z, k).

    Taught in notebook 05 (Maxout)."""
    z = _floats(z)
    return maxout(z, k), (z, k)


def maxout_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dz of z's shape: each unit's dout routed to its winning piece (ties: the first).

    Taught in notebook 05 (Maxout)."""
    z, k = cache
    return maxout_grad(z, k, dout)
