"""Checks for ex03_dead_neurons (what its test cells call): a firing-rate monitor built with forward hooks, the
dead fraction, and two training settings, one that kills ReLU units during training and one that keeps them
alive. Kernel side: each check runs the student's code on the inputs the grader gives and hands back plain
data; the verdict comes from course_lib.grading.judges.ex03.

- firing_rates: the grader's test networks with planted units (dead by a negative bias, dead at exactly 0 on
  every input (the kink), alive on a single example of the last batch, at exactly 0 on some inputs only) are
  built here from the given seed by `flat_net` and `nested_net`; the student's rates come back.
- dead_fraction: lists of per-layer rates built here from the given seed by `rate_lists`; the student's
  fractions come back.
- provoke / prevent: the student's setting function is called and its model built under the given seed;
  what comes back is the model as plain data (course_lib.grading.kernel.modelspec) and the learning rate.
  The grader rebuilds the model from that, trains it and measures its dead units itself.

The builders are public: the judge rebuilds the same networks and lists from the same seed, and the reference
rates and fractions are computed there only.
"""

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from course_lib.grading import plain
from course_lib.grading.kernel import channel, modelspec, training
from course_lib.grading.kernel.probes import student_error

# ---- the grader's networks with planted units -------------------------------------------------------


@dataclass(frozen=True)
class TestNet:
    """A network (eval mode) and the batches it is observed on, each (batch, features); rebuilt identically
    from its seed."""

    model: nn.Module
    batches: list[torch.Tensor]
    description: str


def _plant(linear: nn.Linear, x: torch.Tensor, first_layer: bool) -> None:
    """Set units with known rates in `linear` (whose input is x): 0 dead (bias -1), 1 dead at exactly 0
    on every input (the kink), and in the first layer 2 active only on the last example, 3 at exactly 0
    wherever x[:, 1] == 0."""
    with torch.no_grad():
        linear.weight[:2] = 0.0
        linear.bias[0], linear.bias[1] = -1.0, 0.0
        if first_layer:
            linear.weight[2] = 0.0
            linear.weight[2, 0] = 1.0
            top2 = x[:, 0].topk(2).values
            linear.bias[2] = -(top2[0] + top2[1]) / 2
            linear.weight[3] = 0.0
            linear.weight[3, 1] = 1.0
            linear.bias[3] = 0.0


def _inputs(gen: torch.Generator, n: int, d: int) -> torch.Tensor:
    """n examples (n, d); x[:, 1] is exactly 0 on every third one; the largest x[:, 0] is the last example."""
    x = torch.randn(n, d, generator=gen)
    x[::3, 1] = 0.0
    last = int(x[:, 0].argmax())
    x[[last, n - 1]] = x[[n - 1, last]]
    return x


def flat_net(seed: int, hidden: bool = False) -> TestNet:
    """Linear -> ReLU -> Linear -> ReLU -> Linear with planted units; batches of 16 (the last smaller)."""
    gen = torch.Generator().manual_seed(seed)
    d, h1, h2, c, n, batch = (3, 6, 5, 2, 50, 16) if not hidden else (4, 9, 7, 3, 67, 20)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(d, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU(), nn.Linear(h2, c))
    x = _inputs(gen, n, d)
    _plant(model[0], x, first_layer=True)
    with torch.no_grad():
        _plant(model[2], torch.relu(model[0](x)), first_layer=False)
    return TestNet(model.eval(), list(x.split(batch)), f"the network {d} -> {h1} -> {h2} -> {c}")


def nested_net(seed: int, hidden: bool = False) -> TestNet:
    """Blocks (Linear, BatchNorm1d, ReLU) and (Linear, ReLU) inside an outer Sequential, in eval mode; in
    the BatchNorm, unit 0 is scaled to exactly 0 and unit 1 shifted far below 0 (dead after the norm)."""
    gen = torch.Generator().manual_seed(seed + 1)
    d, h1, h2, c, n, batch = (2, 5, 4, 2, 40, 12) if not hidden else (3, 8, 6, 2, 45, 8)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        norm = nn.BatchNorm1d(h1)
        model = nn.Sequential(nn.Sequential(nn.Linear(d, h1), norm, nn.ReLU()),
                              nn.Sequential(nn.Linear(h1, h2), nn.ReLU()), nn.Linear(h2, c))
    with torch.no_grad():
        norm.running_mean.copy_(torch.randn(h1, generator=gen))
        norm.running_var.copy_(0.5 + torch.rand(h1, generator=gen))
        norm.weight.copy_(0.5 + torch.rand(h1, generator=gen))
        norm.bias.copy_(0.3 * torch.randn(h1, generator=gen))
        norm.weight[0], norm.bias[0], norm.bias[1] = 0.0, 0.0, -100.0
    x = _inputs(gen, n, d)
    model.eval()
    with torch.no_grad():
        _plant(model[1][0], model[0](x), first_layer=False)
    return TestNet(model, list(x.split(batch)), f"a network with nested blocks and BatchNorm, {d} -> "
                                                f"{h1} -> {h2} -> {c}")


NETS = (flat_net, nested_net)


@plain.registered
@dataclass(frozen=True)
class RatesProbe:
    """What firing_rates did on one test network: the rates it returned (float64 arrays, one per entry), or
    `error` (what it raised, or why its result is no list of rates); and how many hooks it left attached."""

    rates: list[np.ndarray] | None = None
    hooks_left: int = 0
    error: str | None = None


def hooks_on(model: nn.Module) -> int:
    """Forward, forward-pre and backward hooks attached to any module of `model`."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               for m in model.modules())


def plain_rates(result) -> list[np.ndarray]:
    """A list of rate vectors (tensors or arrays) as float64 numpy arrays; ValueError when it is not one."""
    if not isinstance(result, list | tuple):
        raise ValueError(f"must return a list with one 1-D tensor per nn.ReLU module, not a {type(result).__name__}")
    rates = []
    for i, r in enumerate(result):
        if isinstance(r, torch.Tensor):
            r = r.detach().cpu().double().numpy()
        if not isinstance(r, np.ndarray) or r.dtype.kind not in "fiub":
            raise ValueError(f"entry {i} is a {type(r).__name__}, not a tensor (or array) of rates")
        rates.append(np.array(r, dtype=np.float64))
    return rates


def probe_rates(firing_rates, net: TestNet) -> RatesProbe:
    """Call the student's firing_rates on copies of the net's batches; count the hooks left on its model."""
    try:
        result = firing_rates(net.model, [b.clone() for b in net.batches])
    except Exception as err:  # noqa: BLE001 - a student's bug is data here
        return RatesProbe(error=f"raised {student_error(err)}")
    left = hooks_on(net.model)
    try:
        return RatesProbe(plain_rates(result), left)
    except ValueError as err:
        return RatesProbe(hooks_left=left, error=str(err))


def check_firing_rates(firing_rates, seed: int, hidden: bool = False) -> None:
    """firing_rates(model, batches) on the grader's networks with planted units (given: their seed)."""
    def probe(given) -> list[RatesProbe]:
        return [probe_rates(firing_rates, build(given["seed"], given["hidden"])) for build in NETS]

    channel.check("ex03.firing_rates", probe, seed=seed, hidden=hidden)


# ---- the dead fraction ------------------------------------------------------------------------------


def rate_lists(seed: int, hidden: bool = False) -> list[list[torch.Tensor]]:
    """Lists of per-layer rates (float64 tensors) of different widths, with dead units (rate 0) and units
    active on a single example of 2,000 (rate 0.0005)."""
    gen = torch.Generator().manual_seed(seed)
    widths = [(10, 30), (4, 16, 8)] if not hidden else [(7, 3, 20), (64,), (5, 50), (12, 12, 12)]
    lists = []
    for layer_widths in widths:
        layers = []
        for width in layer_widths:
            rate = torch.rand(width, generator=gen, dtype=torch.float64)
            kind = torch.randint(0, 4, (width,), generator=gen)
            rate = torch.where(kind == 0, 0.0, torch.where(kind == 1, 1 / 2000, rate))
            layers.append(rate)
        layers[0][: layer_widths[0] // 2 + 1] = 0.0  # layers differ in their dead fraction
        lists.append(layers)
    return lists


def as_float(result) -> float:
    """A returned number (Python, numpy or a one-element tensor/array) as a float; ValueError otherwise."""
    if isinstance(result, torch.Tensor) and result.numel() == 1:
        return float(result.item())
    if isinstance(result, np.ndarray) and result.size == 1:
        return float(result.item())
    if isinstance(result, int | float | np.integer | np.floating) and not isinstance(result, bool):
        return float(result)
    raise ValueError(f"returned a {type(result).__name__}, not a number")


def run_dead_fraction(dead_fraction, rates: list[torch.Tensor]) -> tuple[float | None, str | None]:
    """(the student's dead fraction of copies of `rates` as a float, None) or (None, the error)."""
    try:
        return as_float(dead_fraction([r.clone() for r in rates])), None
    except Exception as err:  # noqa: BLE001 - a student's bug is data here
        return None, student_error(err)


def check_dead_fraction(dead_fraction, seed: int, hidden: bool = False) -> None:
    """dead_fraction(rates) on the grader's lists of rates (given: their seed)."""
    def probe(given) -> list[tuple[float | None, str | None]]:
        return [run_dead_fraction(dead_fraction, rates) for rates in rate_lists(given["seed"], given["hidden"])]

    channel.check("ex03.dead_fraction", probe, seed=seed, hidden=hidden)


# ---- provoking and preventing death -----------------------------------------------------------------


@plain.registered
@dataclass(frozen=True)
class Setting:
    """A training setting as the grader rebuilds it: the model build_model made under the grader's seed, as a
    modelspec (plain data), and the learning rate; or the error that stopped the probe."""

    model: dict | None = None
    lr: float | None = None
    error: str | None = None


def unpack_setting(setting) -> tuple[Callable, float]:
    """(build_model, lr) from what a setting function returned; ValueError when it is not such a pair."""
    if not (isinstance(setting, tuple | list) and len(setting) == 2 and callable(setting[0])):
        raise ValueError("must return a pair (build_model, lr): a function that builds a model, and a number")
    build_model, lr = setting
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"the learning rate must be a positive number, got {lr!r}")
    return build_model, float(lr)


def probe_setting(setting_fn: Callable, seed: int) -> Setting:
    """Call the student's setting function and build its model under torch seed `seed`; export both."""
    try:
        build_model, lr = unpack_setting(setting_fn())
        return Setting(modelspec.export(training.build(build_model, seed)), lr)
    except modelspec.SpecError as err:
        return Setting(error=str(err))
    except Exception as err:  # noqa: BLE001 - a student's bug is data here
        return Setting(error=student_error(err))


def check_provoke(provoke_death, seed: int, threshold: float, hidden: bool = False) -> None:
    """Trained by the grader, the setting must leave at least `threshold` of its units dead, having started
    with few dead: the units must die during training."""
    channel.check("ex03.provoke", lambda given: probe_setting(provoke_death, given["seed"]), seed=seed,
                  threshold=threshold, hidden=hidden)


def check_prevent(prevent_death, seed: int, max_dead: float, threshold: float, hidden: bool = False) -> None:
    """Trained by the grader, the setting must leave at most `max_dead` of its units dead and reach
    `threshold` test accuracy."""
    channel.check("ex03.prevent", lambda given: probe_setting(prevent_death, given["seed"]), seed=seed,
                  max_dead=max_dead, threshold=threshold, hidden=hidden)
