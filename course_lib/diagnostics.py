"""Diagnostics for rectifier networks: dead units, per-layer statistics, and the odds of being born dead.

Conventions. A *unit* lives on axis 1 of an activation's input: the feature axis of (N, features), the
channel axis of conv activations (N, C, L) or (N, C, H, W), as in BatchNorm. A ReLU-family unit (ReLU,
LeakyReLU, PReLU) is *active* on an example when its pre-activation is > 0 there (for conv inputs: at some
position); a unit never active on the whole data set is *dead* (firing rate exactly 0). For Leaky ReLU and
PReLU "dead" means "never on the positive side": some gradient still leaks through the slope.
A Maxout layer is watched through its GroupMax: every *piece* gets a win rate, and a piece that never wins
is a dead piece (it receives no gradient). Layer names are those of `model.named_modules()`, so the
GroupMax inside layer "0" of an `mlp(..., activation="maxout")` is "0.group_max".
"""

__all__ = [
    "RELU_FAMILY", "DeadUnitMonitor", "dead_fraction", "activation_stats", "hooked_forward", "gradient_stats",
    "born_dead_probability_exact", "born_dead_probability_bounds", "born_dead_probability",
]

import math
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Self

import torch
from torch import nn

from course_lib.nn import GroupMax

RELU_FAMILY = (nn.ReLU, nn.LeakyReLU, nn.PReLU)
MONITORED = (*RELU_FAMILY, GroupMax)
ACTIVATION_MODULES = (*MONITORED, nn.ELU, nn.SELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh)


def _count_per_example(mask_units_last: torch.Tensor) -> torch.Tensor:
    """(N, ..., U) bool -> (U,) number of examples on which each unit is True at some position."""
    n, units = mask_units_last.shape[0], mask_units_last.shape[-1]
    return mask_units_last.reshape(n, -1, units).any(dim=1).sum(dim=0)


def _active_units(module: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """Pre-activation z -> bool with units last: (N, ..., units), or (N, ..., units*k) pieces for GroupMax."""
    if z.dim() == 1:
        z = z.unsqueeze(0)
    if not isinstance(module, GroupMax):
        return (z > 0).movedim(1, -1)
    z = z.movedim(module.dim, -1)
    grouped = z.unflatten(-1, (z.shape[-1] // module.k, module.k))
    wins = nn.functional.one_hot(grouped.argmax(dim=-1), module.k).bool()
    return wins.flatten(-2)


class LayerHooks:
    """A forward hook on every module of `self.layers` while inside `with`, removed again on exit.

    Subclasses set `layers` (name -> module) and `_handles = []`, and define `_hook(name)`, which returns the
    hook for that layer."""

    layers: dict[str, nn.Module]
    _handles: list

    def __enter__(self) -> Self:
        self._handles += [module.register_forward_hook(self._hook(name)) for name, module in self.layers.items()]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _hook(self, name: str):
        raise NotImplementedError


class DeadUnitMonitor(LayerHooks):
    """Counts, for every ReLU, LeakyReLU, PReLU and GroupMax in `model`, how often each unit is active.

    with DeadUnitMonitor(model) as monitor:      # forward hooks on; removed again on exit
        monitor.observe(x)                       # a tensor (run in batches) or an iterable of batches
    monitor.dead_units()                         # {"1": tensor([False, True, ...]), ...}

    Forward passes the model makes inside the `with` block count too, with or without torch.no_grad.
    A module reused at several places in the model (one ReLU shared by all layers) is refused; a module
    called several times in one forward is counted once per call.

    Taught in notebook 03 (dead neurons); also used in notebook 05 and exercises ex03, ex06.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.layers = {name: m for name, m in model.named_modules() if isinstance(m, MONITORED)}
        if not self.layers:
            raise ValueError("the model has no ReLU, LeakyReLU, PReLU or GroupMax module to monitor")
        _refuse_shared(model, self.layers)
        self._handles = []
        self.reset()

    def reset(self) -> None:
        """Forget every count."""
        self.counts: dict[str, torch.Tensor] = {}
        self.n_examples = dict.fromkeys(self.layers, 0)

    def _hook(self, name: str):
        def record(module, args, output):
            counts = _count_per_example(_active_units(module, args[0].detach()))
            if name in self.counts and self.counts[name].shape != counts.shape:
                before = self.counts[name].numel()
                raise ValueError(f"layer {name!r} had {before} units, now {counts.numel()}")
            self.counts[name] = self.counts.get(name, 0) + counts.cpu()
            self.n_examples[name] += 1 if args[0].dim() == 1 else args[0].shape[0]
        return record

    @contextmanager
    def _attached(self):
        """Hooks on for the duration, unless they already are."""
        if self._handles:
            yield
            return
        with self:
            yield

    def observe(self, data: torch.Tensor | Iterable, batch_size: int = 1024) -> "DeadUnitMonitor":
        """Run the model (no grad, train/eval mode unchanged) on `data` and add up the counts.

        data: a tensor (N, ...) split into batches of `batch_size`, or an iterable of batches, each a
        tensor or an (x, y, ...) tuple whose first element is the input.
        """
        batches = data.split(batch_size) if torch.is_tensor(data) else data
        with self._attached(), torch.no_grad():
            for batch in batches:
                self.model(batch[0] if isinstance(batch, (tuple, list)) else batch)
        return self

    def firing_rates(self) -> dict[str, torch.Tensor]:
        """Layer name -> (units,) fraction of examples on which each unit is active (pieces for GroupMax)."""
        missing = [name for name, n in self.n_examples.items() if n == 0]
        if missing:
            raise RuntimeError(f"no examples observed yet for layers {missing}; call observe(x) first")
        return {name: self.counts[name].double() / self.n_examples[name] for name in self.layers}

    def dead_units(self) -> dict[str, torch.Tensor]:
        """Layer name -> (units,) bool, True where a unit (a piece, for GroupMax) was never active."""
        return {name: rate == 0 for name, rate in self.firing_rates().items()}

    def dead_fraction_by_layer(self) -> dict[str, float]:
        """Layer name -> fraction of its units (pieces) that are dead."""
        return {name: dead.double().mean().item() for name, dead in self.dead_units().items()}

    def dead_fraction(self) -> float:
        """Dead units (pieces) over all units (pieces) of all monitored layers."""
        dead = list(self.dead_units().values())
        return sum(d.sum().item() for d in dead) / sum(d.numel() for d in dead)


def _refuse_shared(model: nn.Module, layers: dict[str, nn.Module]) -> None:
    """A ValueError if one activation instance sits at several places: its counts would mix layers."""
    places: dict[int, list[str]] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        if isinstance(module, MONITORED):
            places.setdefault(id(module), []).append(name)
    shared = [names for names in places.values() if len(names) > 1]
    if shared:
        raise ValueError(f"activation instances shared between layers {shared}; give each layer its own "
                         "(course_lib.nn.make_activation returns a fresh one)")


def dead_fraction(model: nn.Module, x: torch.Tensor, kinds: tuple[type, ...] = MONITORED) -> float | None:
    """The fraction of dead units among the model's activation modules of `kinds` (default: every ReLU-family
    and maxout module; a maxout unit counts as its pieces): a unit is dead when it is active on no example of
    x (N, ...). None when the model has no such module; ValueError when one activation instance is shared
    between layers (its counts would mix them). The course's one definition, as DeadUnitMonitor counts.

    Used by the kernel-side checks of ex04 and ex06 and by ex06's judge (notebook 03 teaches the definition)."""
    if not any(isinstance(m, kinds) for m in model.modules()):
        return None
    with DeadUnitMonitor(model) as monitor:
        monitor.observe(x)
        dead = [d for name, d in monitor.dead_units().items() if isinstance(monitor.layers[name], kinds)]
    return sum(int(d.sum()) for d in dead) / sum(d.numel() for d in dead)


@dataclass
class ActivationStats:
    """One activation layer's output over a batch; `saturated` is None for non-saturating units."""

    name: str
    kind: str
    mean: float
    std: float
    zero_fraction: float
    saturated: float | None


def _saturated(module: nn.Module, out: torch.Tensor) -> float | None:
    """Fraction of outputs in the flat tails: |tanh| > 0.97, sigmoid outside (0.03, 0.97)."""
    if isinstance(module, nn.Tanh):
        return (out.abs() > 0.97).double().mean().item()
    if isinstance(module, nn.Sigmoid):
        return ((out < 0.03) | (out > 0.97)).double().mean().item()
    return None


def activation_stats(model: nn.Module, x: torch.Tensor) -> list[ActivationStats]:
    """One forward pass (no grad) on x; ActivationStats of every activation module's output, in order.

    zero_fraction counts outputs that are exactly 0 (for ReLU: pre-activation <= 0).

    Taught in notebook 02 (ReLU and its derivative); also used in notebook 05.
    """
    stats = []

    def record(name, module, args, out):
        out = out.detach().double()
        stats.append(ActivationStats(name, type(module).__name__, out.mean().item(), out.std().item(),
                                     (out == 0).double().mean().item(), _saturated(module, out)))

    layers = {name: m for name, m in model.named_modules() if isinstance(m, ACTIVATION_MODULES)}
    hooked_forward(model, x, layers, record)
    return stats


def hooked_forward(model: nn.Module, x: torch.Tensor, layers: Mapping[str, nn.Module],
                   on_call: Callable[[str, nn.Module, tuple, object], None]) -> None:
    """One forward pass of model(x) without gradients, calling on_call(name, module, args, output) on every
    call each of `layers` (name -> module) receives, in call order; the hooks are removed afterwards, even if
    the forward pass raises.

    Taught in notebook 03 (dead neurons)."""
    handles = [m.register_forward_hook(lambda module, args, out, name=name: on_call(name, module, args, out))
               for name, m in layers.items()]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()


@dataclass
class GradientStats:
    """Gradient of one Linear weight after a backward pass; grad_to_data = grad.std() / weight.std()."""

    name: str
    shape: tuple[int, ...]
    grad_mean: float
    grad_std: float
    grad_norm: float
    grad_to_data: float


def gradient_stats(model: nn.Module) -> list[GradientStats]:
    """GradientStats of every nn.Linear weight (Maxout's too), in model order; call after backward().

    Taught in notebook 01 (activation functions); also used in notebooks 02, 03."""
    stats = []
    for name, layer in model.named_modules():
        if not isinstance(layer, nn.Linear):
            continue
        w, g = layer.weight, layer.weight.grad
        if g is None:
            raise RuntimeError(f"{name}.weight has no gradient; call loss.backward() first")
        stats.append(GradientStats(f"{name}.weight", tuple(w.shape), g.mean().item(), g.std().item(),
                                   g.norm().item(), (g.std() / w.std()).item()))
    return stats


def update_to_data_ratios(model: nn.Module, lr: float) -> dict[str, float]:
    """Parameter name -> log10(std(lr * grad) / std(param)) for plain SGD; Karpathy's rule of thumb: ~ -3.

    Parameters without a gradient or with fewer than 2 entries are left out; a parameter whose entries are
    all equal (a constant-initialised bias) gives +inf.
    """
    return {name: math.log10((lr * p.grad.std() / p.std()).item())
            if p.std() > 0 else math.inf
            for name, p in model.named_parameters() if p.grad is not None and p.numel() > 1}


# --- Born dead: the whole network is a constant function at initialisation -------------------------------


def born_dead_probability_exact(depth: int, width: int) -> float:
    """P(born dead) = 1 - (1 - 2^-width)^depth, exactly, for this setting:

    a ReLU net with 1-D input x, `depth` hidden layers of `width` units, a linear output, i.i.d. weights
    from a continuous distribution symmetric about 0 (He normal included), zero biases (He et al. 2015),
    and inputs on one side of 0 (Omega = (0, r], or [-r, 0)); "born dead" = the output is constant on Omega.

    Proof. Without biases the net is positively homogeneous: for x > 0 every hidden layer is x * u_l for a
    fixed vector u_l, with u_l = relu(W_l u_{l-1}) and u_0 = 1. The output is constant iff some u_l = 0
    (otherwise the output x * w_out . u_L has a slope that is non-zero with probability 1). Given
    u_{l-1} != 0, the entries of W_l u_{l-1} are independent, continuous and symmetric, so all `width` of
    them are <= 0 with probability 2^-width, whatever happened before: each layer kills the ray
    independently, and P(alive after `depth` layers) = (1 - 2^-width)^depth.  []

    The same number is the probability that a zero-bias net of any input dimension is dead at one given
    input, hence an upper bound on being born dead on any domain: 1 - prod_l (1 - 2^-N_l), which -> 0 as
    the width grows. Lu, Shin, Su & Karniadakis (2019, arXiv:1903.06733) prove that with symmetric
    initialisation a deep ReLU net is born dead with probability -> 1 as depth -> infinity; this formula
    shows that for fixed width (depth -> infinity: P -> 1) and how fast.
    NOTE: derived here, not copied from that paper; see `born_dead_probability_bounds` for Omega = [-r, r].

    Taught in notebook 03 (dead neurons).
    """
    _check_architecture(depth, width)
    return -math.expm1(depth * math.log1p(-(2.0 ** -width)))


def born_dead_probability_bounds(depth: int, width: int) -> tuple[float, float]:
    """(lower, upper) bounds on P(born dead) when Omega = [-r, r] holds inputs on both sides of 0.

    Same setting as `born_dead_probability_exact`, but the net must die on both rays x > 0 and x < 0.
    Each ray alone survives with probability q^depth, q = 1 - 2^-width. While both survive, a layer kills
    at least one of them with probability <= 2 * 2^-width (union bound), so both survive with probability
    >= (1 - 2^(1-width))^depth, and by inclusion-exclusion
        1 - 2 q^depth + (1 - 2^(1-width))^depth  <=  P(born dead)  <=  1 - q^depth.
    The lower bound is exact for width 1 and for depth 1 (where P = 0: layer 1 cannot kill both rays),
    and tends to 1 as depth -> infinity. The exact value in between depends on the weight distribution
    (after layer 2 the two rays' vectors are correlated); with Gaussian weights and depth 2 it is
    4^-width * (3 - 2^(1-width)) (the rays are orthogonal after layer 1, hence independent at layer 2).

    Taught in notebook 03 (dead neurons).
    """
    _check_architecture(depth, width)
    q = 1.0 - 2.0 ** -width
    return 1.0 - 2.0 * q ** depth + (1.0 - 2.0 ** (1 - width)) ** depth, 1.0 - q ** depth


def _check_architecture(depth: int, width: int) -> None:
    if depth < 1 or width < 1:
        raise ValueError(f"need depth >= 1 and width >= 1, got depth={depth}, width={width}")


def _born_dead_chunk(x: torch.Tensor, n: int, depth: int, width: int, bias_std: float,
                     gen: torch.Generator) -> torch.Tensor:
    """Sample n He-normal ReLU nets at once; (n,) bool, True where some hidden layer is constant over x.

    x: (P, input_dim) inputs shared by all nets. A constant layer makes the output constant; a non-constant
    last hidden layer gives a non-constant output with probability 1, so the output layer is not sampled.
    """
    h = x.expand(n, *x.shape)  # (n, P, fan_in)
    dead = torch.zeros(n, dtype=torch.bool)
    for _ in range(depth):
        fan_in = h.shape[-1]
        w = torch.randn(n, fan_in, width, generator=gen) * math.sqrt(2.0 / fan_in)
        b = torch.randn(n, 1, width, generator=gen) * bias_std
        h = torch.relu(torch.bmm(h, w) + b)  # (n, P, width)
        dead |= (h == h[:, :1]).all(dim=2).all(dim=1)
    return dead


def born_dead_probability(depth: int, width: int, n_networks: int = 10_000, n_inputs: int = 64,
                          input_dim: int = 1, domain: tuple[float, float] = (0.0, 1.0), bias_std: float = 0.0,
                          seed: int = 0, max_elements: int = 2 ** 22) -> float:
    """Monte Carlo P(born dead): the fraction of n_networks random nets that are constant on Omega.

    Nets as in `born_dead_probability_exact`: `depth` hidden ReLU layers of `width` units, He-normal
    weights N(0, 2 / fan_in), biases N(0, bias_std^2) (0: zero biases, the exact setting). Omega is
    [low, high]^input_dim with (low, high) = domain, seen through n_inputs points (an even grid in 1-D,
    uniform samples otherwise). All nets are sampled and run at once as batched tensors (chunks of at most
    `max_elements` activations); only the layers are looped over. With zero biases and 1-D input every point
    on a ray gives the same verdict, so the grid is exact: with domain (0, 1) this estimates
    `born_dead_probability_exact`, with (-1, 1) a value inside `born_dead_probability_bounds`. With biases
    a unit alive only between grid points would be missed. Standard error: sqrt(p (1 - p) / n_networks).

    Taught in notebook 03 (dead neurons).
    """
    _check_architecture(depth, width)
    gen = torch.Generator().manual_seed(seed)
    low, high = domain
    if input_dim == 1:
        x = torch.linspace(low, high, n_inputs).unsqueeze(1)
    else:
        x = low + (high - low) * torch.rand(n_inputs, input_dim, generator=gen)
    chunk = max(1, max_elements // (n_inputs * max(width, input_dim)))
    dead = sum(_born_dead_chunk(x, min(chunk, n_networks - start), depth, width, bias_std, gen).sum().item()
               for start in range(0, n_networks, chunk))
    return dead / n_networks
