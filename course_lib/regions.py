"""Linear regions of a ReLU network: activation patterns, counted and coloured on a 2-D grid.

A ReLU net is piecewise affine. Its *activation pattern* at an input x is the on/off state of every ReLU
unit (on: pre-activation > 0, so exactly 0 counts as off, as in `course_lib.diagnostics`). Inputs with the
same pattern lie in one *linear region*: there every ReLU is a fixed identity or zero map, so the network
is one affine function A x + c. Each region is convex (an intersection of half-spaces), hence connected,
so counting distinct patterns counts regions. On a finite grid a region thinner than the grid spacing can
be missed: grid counts are lower bounds on the regions that meet the box.

All functions return plain numpy arrays or numbers. Models take float inputs of shape (N, D).
"""

__all__ = [
    "relu_patterns", "region_map", "count_regions", "max_regions_one_hidden_layer", "input_gradients",
    "spread_within_regions", "plot_region_map",
]

import math

import numpy as np
import torch
from torch import nn


def relu_patterns(model: nn.Module, x) -> np.ndarray:
    """(N, U) bool: pre-activation > 0 for each of the U units of every nn.ReLU in `model`, in model order.

    x: (N, D) inputs (numpy or torch), cast to the model's dtype. Raises ValueError if there is no nn.ReLU.

    Used in exercise ex03.
    """
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise ValueError("the model has no nn.ReLU module, so it has no activation pattern")
    seen: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda mod, args, out: seen.append(args[0].detach() > 0)) for m in relus]
    try:
        with torch.no_grad():
            model(_as_input(model, x))
    finally:
        for handle in handles:
            handle.remove()
    return torch.cat([s.reshape(len(s), -1) for s in seen], dim=1).numpy()


def _as_input(model: nn.Module, x) -> torch.Tensor:
    dtype = next(model.parameters(), torch.empty(0)).dtype
    return torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x).to(dtype)


def region_ids(patterns: np.ndarray) -> np.ndarray:
    """(N,) int64 region number for (N, U) bool patterns: equal patterns get equal numbers 0..R-1."""
    packed = np.ascontiguousarray(np.packbits(np.asarray(patterns, dtype=bool), axis=1))
    rows = packed.view(np.dtype((np.void, packed.shape[1]))).reshape(-1)  # one opaque key per pattern: fast unique
    _, ids = np.unique(rows, return_inverse=True)
    return ids.reshape(-1).astype(np.int64)


def grid(lo: float = -3.0, hi: float = 3.0, resolution: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """A square grid: (g0, g1), each (resolution, resolution), from np.meshgrid over [lo, hi]^2."""
    axis = np.linspace(lo, hi, resolution)
    return np.meshgrid(axis, axis)


def region_map(model: nn.Module, lo: float = -3.0, hi: float = 3.0,
               resolution: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, g0, g1): the region number of every point of the grid over [lo, hi]^2, each (res, res).

    The model takes 2-D input (N, 2). ids[i, j] belongs to the point (g0[i, j], g1[i, j]).

    Taught in notebook 02 (ReLU and its derivative).
    """
    g0, g1 = grid(lo, hi, resolution)
    points = np.stack([g0.ravel(), g1.ravel()], axis=1)
    return region_ids(relu_patterns(model, points)).reshape(g0.shape), g0, g1


def count_regions(model: nn.Module, lo: float = -3.0, hi: float = 3.0, resolution: int = 200) -> int:
    """Number of linear regions of a 2-D-input model seen on the grid over [lo, hi]^2 (a lower bound).

    Taught in notebook 02 (ReLU and its derivative)."""
    ids, _, _ = region_map(model, lo, hi, resolution)
    return int(ids.max()) + 1


def max_regions_one_hidden_layer(n_units: int, input_dim: int) -> int:
    """sum_{i=0}^{input_dim} C(n_units, i): the most regions n_units hyperplanes cut R^input_dim into.

    Zaslavsky's count for hyperplanes in general position; a one-hidden-layer ReLU net has one
    hyperplane (its kink) per unit, so this bounds its linear regions on the whole input space.

    Taught in notebook 02 (ReLU and its derivative).
    """
    if n_units < 0 or input_dim < 1:
        raise ValueError(f"need n_units >= 0 and input_dim >= 1, got {n_units}, {input_dim}")
    return sum(math.comb(n_units, i) for i in range(input_dim + 1))


def input_gradients(model: nn.Module, x) -> np.ndarray:
    """(N, D) gradient of the model's single output with respect to each input row of x: (N, D).

    Rows do not interact (no batch norm), so one backward pass of the summed output gives every row's
    gradient. Inside one linear region this is the region's slope A (constant there).

    Taught in notebook 02 (ReLU and its derivative).
    """
    xt = _as_input(model, x).clone().requires_grad_(True)
    out = model(xt)
    if out.reshape(len(xt), -1).shape[1] != 1:
        raise ValueError(f"input_gradients needs one output per example, got shape {tuple(out.shape)}")
    (grad,) = torch.autograd.grad(out.sum(), xt)
    return grad.detach().numpy()


def spread_within_regions(values: np.ndarray, ids: np.ndarray) -> float:
    """Largest, over regions and columns, of max - min of `values` (N, K) among rows with the same id (N,).

    0 means `values` (e.g. input gradients) are exactly constant inside every region.

    Taught in notebook 02 (ReLU and its derivative).
    """
    values = np.asarray(values, dtype=np.float64).reshape(len(ids), -1)
    ids = np.asarray(ids).reshape(-1)
    order = np.argsort(ids, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(ids[order]) != 0])
    sorted_values = values[order]
    highs = np.maximum.reduceat(sorted_values, starts, axis=0)
    lows = np.minimum.reduceat(sorted_values, starts, axis=0)
    return float(np.max(highs - lows, initial=0.0))


def region_colours(ids: np.ndarray, n_colours: int = 20) -> np.ndarray:
    """A colour index per region, 0..n_colours-1, such that regions sharing a grid edge never share a colour
    (greedy colouring of the adjacency graph; a planar map needs at most 4, greedy rarely needs more than 6)."""
    n = int(ids.max()) + 1
    pairs = np.concatenate([np.stack([ids[:, :-1].ravel(), ids[:, 1:].ravel()], 1),
                            np.stack([ids[:-1, :].ravel(), ids[1:, :].ravel()], 1)])
    pairs = np.unique(pairs[pairs[:, 0] != pairs[:, 1]], axis=0)
    neighbours = [set() for _ in range(n)]
    for a, b in pairs:
        neighbours[a].add(b)
        neighbours[b].add(a)
    colour = np.full(n, -1)
    for region in np.argsort([-len(nb) for nb in neighbours], kind="stable"):
        used = {colour[nb] for nb in neighbours[region]}
        colour[region] = next(c for c in range(n + 1) if c not in used)
    return colour % n_colours


def plot_region_map(ids: np.ndarray, g0: np.ndarray, g1: np.ndarray, ax=None, seed: int = 0):
    """Colour each grid point by its region, neighbouring regions always in different colours, with the region
    borders drawn as thin dark lines; returns the Axes. (`seed` is kept for compatibility and unused.)

    Taught in notebook 02 (ReLU and its derivative)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5), constrained_layout=True)
    extent = (g0.min(), g0.max(), g1.min(), g1.max())
    strong_first = np.r_[0:20:2, 1:20:2]  # tab20's strong colours first, its light variants after
    ax.imshow(strong_first[region_colours(ids)][ids], origin="lower", cmap="tab20", vmin=-0.5, vmax=19.5,
              interpolation="nearest", extent=extent)
    border = np.zeros(ids.shape, dtype=bool)
    border[:, 1:] |= ids[:, 1:] != ids[:, :-1]
    border[1:, :] |= ids[1:, :] != ids[:-1, :]
    ax.imshow(np.ma.masked_where(~border, border), origin="lower", cmap="gray_r", vmin=0, vmax=1.2,
              interpolation="nearest", extent=extent)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    return ax
