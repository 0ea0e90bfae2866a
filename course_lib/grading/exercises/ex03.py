"""Checks for ex03_dead_neurons: a firing-rate monitor built with forward hooks, the dead fraction, and two
training settings, one that kills ReLU units during training and one that keeps them alive.

The reference is course_lib.diagnostics.DeadUnitMonitor: a unit is *active* on an example when its
pre-activation is > 0 (exactly 0 is not active: a unit at 0 passes no gradient), and *dead* when it is
active on no example of the data set (firing rate exactly 0). The grader's networks plant units with known
rates: dead by a negative bias, dead at exactly 0 on every input (the kink), alive on a single example of
the last batch, and at exactly 0 on some inputs only.

Each check_* runs the student's code into plain data only (rates, numbers, error strings, a Measurement of a
training run) and hands it to its judge_* (course_lib.grading.judged), which re-creates the networks, the
rate lists and the test labels from the seed and decides, in the kernel and again outside the sandbox.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from course_lib.data import moons
from course_lib.diagnostics import MONITORED, DeadUnitMonitor
from course_lib.grading import judged, plain
from course_lib.grading.training import Hint, TrainingOutcome, accuracy_verdict, near_chance, train_and_measure

# ---- the grader's networks with planted units -------------------------------------------------------


@dataclass(frozen=True)
class TestNet:
    """A network and the batches it is observed on (rebuilt identically for every call from `seed`)."""

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
    with torch.no_grad():
        _plant(model[1][0], model[0](x), first_layer=False)
    return TestNet(model.eval(), list(x.split(batch)), f"a network with nested blocks and BatchNorm, {d} -> "
                                                       f"{h1} -> {h2} -> {c}")


NETS = (flat_net, nested_net)


def reference_rates(net: TestNet) -> list[np.ndarray]:
    with DeadUnitMonitor(net.model) as monitor:
        monitor.observe(net.batches)
        return [r.numpy() for r in monitor.firing_rates().values()]


def _wrong_rates(net: TestNet, active: Callable, watch=nn.ReLU, use_output: bool = False,
                 reduce: str = "pooled") -> list[np.ndarray]:
    """Rates computed the way a misconception computes them (the grader's own hooks)."""
    layers = [m for m in net.model.modules() if isinstance(m, watch)]
    per_batch = [[] for _ in layers]

    def hook(i):
        def record(module, args, output):
            z = (output if use_output else args[0]).detach().double()
            per_batch[i].append((active(z).double().sum(0), z.clamp(min=0).sum(0), len(z)))
        return record

    handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(layers)]
    try:
        with torch.no_grad():
            for xb in net.batches:
                net.model(xb)
    finally:
        for h in handles:
            h.remove()
    rates = []
    for records in per_batch:
        counts, sums, sizes = (list(t) for t in zip(*records, strict=True))
        if reduce == "first":
            rate = counts[0] / sizes[0]
        elif reduce == "last":
            rate = counts[-1] / sizes[-1]
        elif reduce == "batch_mean":
            rate = torch.stack([c / s for c, s in zip(counts, sizes, strict=True)]).mean(0)
        elif reduce == "counts":
            rate = sum(counts)
        elif reduce == "mean_value":
            rate = sum(sums) / sum(sizes)
        else:
            rate = sum(counts) / sum(sizes)
        rates.append(rate.numpy())
    return rates


def _positive(z):
    return z > 0


def _non_negative(z):
    return z >= 0


RATE_MISCONCEPTIONS = (
    (dict(active=_non_negative), "a pre-activation >= 0 was counted as active: a unit at exactly 0 passes no "
     "gradient (ReLU's subgradient there is 0), so active means > 0"),
    (dict(active=_non_negative, use_output=True), "the outputs >= 0 were counted: every ReLU output is >= 0. A "
     "unit is active where its output (equivalently its pre-activation) is > 0"),
    (dict(active=_positive, reduce="first"), "rates counted over one batch, not the whole data set: add up "
     "the counts of every batch and divide by the total number of examples"),
    (dict(active=_positive, reduce="last"), "only the last batch was counted (each batch overwrote the one "
     "before): add up the counts of every batch and divide by the total number of examples"),
    (dict(active=_positive, reduce="batch_mean"), "the per-batch rates were averaged: batches differ in size "
     "(the last one is smaller), so add up counts and divide by the total number of examples"),
    (dict(active=_positive, reduce="counts"), "returned counts of active examples, not fractions: divide by "
     "the number of examples"),
    (dict(active=_positive, reduce="mean_value"), "returned the mean activation, not the fraction of examples "
     "on which the unit is active (pre-activation > 0)"),
)


def _hooks_on(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               for m in model.modules())


def _plain_rates(result) -> list[np.ndarray]:
    """The student's list of rate vectors as float64 numpy arrays (ValueError when it is not one)."""
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


def _same(got: list[np.ndarray], want: list[np.ndarray]) -> bool:
    return len(got) == len(want) and all(
        g.shape == w.shape and np.allclose(g, w, rtol=1e-6, atol=1e-9) for g, w in zip(got, want, strict=True))


@plain.registered
@dataclass(frozen=True)
class RatesProbe:
    """What firing_rates did on one test network: the rates it returned (float64 arrays, one per entry), or
    `error` (what it raised, or why its result is no list of rates); and how many hooks it left attached."""

    rates: list[np.ndarray] | None = None
    hooks_left: int = 0
    error: str | None = None


def probe_rates(firing_rates, net: TestNet) -> RatesProbe:
    """Call the student's firing_rates on copies of the net's batches; count the hooks left on its model."""
    try:
        result = firing_rates(net.model, [b.clone() for b in net.batches])
    except Exception as err:  # noqa: BLE001 - a student's bug is data here
        return RatesProbe(error=f"raised {type(err).__name__}: {err}")
    left = _hooks_on(net.model)
    try:
        return RatesProbe(_plain_rates(result), left)
    except ValueError as err:
        return RatesProbe(hooks_left=left, error=str(err))


def _rates_problem(probe: RatesProbe, build: Callable[[int, bool], TestNet], seed: int, hidden: bool) -> str | None:
    """What is wrong with the rates of `probe`, measured on build(seed, hidden) (None if nothing)."""
    fresh = build(seed, hidden)
    where = "a hidden test network" if hidden else fresh.description
    if probe.hooks_left:
        return (f"left {probe.hooks_left} hook(s) attached to {where}: remove every handle (handle.remove(), e.g. "
                "in a finally block) before returning, or every later forward pass keeps counting")
    if probe.error:
        return probe.error
    try:
        got = _plain_rates(probe.rates)
    except ValueError as err:  # data that no probe writes
        return str(err)
    want = reference_rates(fresh)
    n_relu, n_linear = len(want), sum(isinstance(m, nn.Linear) for m in fresh.model.modules())
    if len(got) != len(want):
        if len(got) == n_linear:
            return (f"returned {len(got)} rate vectors for {where}, which has {n_relu} nn.ReLU modules and "
                    f"{n_linear} nn.Linear layers: the monitor watched the Linear layers instead of the ReLUs")
        return (f"returned {len(got)} rate vectors for {where}, expected {n_relu}: one per nn.ReLU module in the "
                "order of model.modules() (ReLUs inside nested blocks count too)")
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if g.shape != w.shape:
            return f"rate vector {i} has shape {g.shape} for {where}, expected {w.shape}: one rate per unit"
    if _same(got, want):
        return None
    for kwargs, message in RATE_MISCONCEPTIONS:
        if _same(got, _wrong_rates(build(seed, hidden), **kwargs)):
            return message
    if _same(got, _wrong_rates(build(seed, hidden), _positive, watch=nn.Linear)[:n_relu]):
        return "the monitor watched the Linear layers' outputs, not the inputs of the ReLUs (a norm layer sits between)"
    bad = [(i, int((~np.isclose(g, w, rtol=1e-6, atol=1e-9)).sum()), g.size)
           for i, (g, w) in enumerate(zip(got, want, strict=True))]
    i, k, n = next(b for b in bad if b[1])
    return f"wrong rates for {k} of {n} units of ReLU module {i} of {where}"


def judge_firing_rates(data: dict, seed: int, hidden: bool = False) -> str | None:
    """data: {"borrowed": names, "probes": one RatesProbe per network of NETS, built from (seed, hidden)}."""
    if data["borrowed"]:
        return judged.borrowed_message(data["borrowed"])
    probes = data["probes"]
    if len(probes) != len(NETS):
        return f"firing_rates: {len(probes)} probes for {len(NETS)} test networks"
    for probe, build in zip(probes, NETS, strict=True):
        problem = _rates_problem(probe, build, seed, hidden)
        if problem:
            return f"firing_rates: {problem}"
    return None


def check_firing_rates(firing_rates, seed: int, hidden: bool = False) -> None:
    """firing_rates(model, batches) against DeadUnitMonitor on the grader's networks with planted units."""
    probes = [probe_rates(firing_rates, build(seed, hidden)) for build in NETS]
    data = {"borrowed": judged.borrowed(firing_rates), "probes": probes}
    judged.check(judge_firing_rates, data, seed=seed, hidden=hidden)


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


DEAD_MISCONCEPTIONS = (
    (lambda rates: float(np.mean([float((r == 0).double().mean()) for r in rates])),
     "the per-layer dead fractions were averaged: layers have different widths, so count dead units over all "
     "units of all layers"),
    (lambda rates: 1 - _pooled(rates), "returned the fraction of live units, not dead ones"),
    (lambda rates: float(sum(int((r == 0).sum()) for r in rates)),
     "returned the number of dead units, not the fraction"),
    *[(lambda rates, t=t: sum(int((r < t).sum()) for r in rates) / sum(len(r) for r in rates),
       "a unit that is active on some examples was counted as dead: dead means a firing rate of exactly 0")
      for t in (0.001, 0.01, 0.05, 0.1, 0.5)],
)


def _pooled(rates: list) -> float:
    """Dead units (rate exactly 0) over all units of all layers: rates is a list of 1-D tensors or arrays."""
    return sum(int((r == 0).sum()) for r in rates) / sum(len(r) for r in rates)


def _as_float(result) -> float:
    """A returned number (Python, numpy or a one-element tensor/array) as a float; ValueError otherwise."""
    if isinstance(result, torch.Tensor) and result.numel() == 1:
        return float(result.item())
    if isinstance(result, np.ndarray) and result.size == 1:
        return float(result.item())
    if isinstance(result, int | float | np.integer | np.floating) and not isinstance(result, bool):
        return float(result)
    raise ValueError(f"returned a {type(result).__name__}, not a number")


def _run_dead_fraction(dead_fraction, rates: list[torch.Tensor]) -> tuple[float | None, str | None]:
    """(the student's dead fraction of copies of `rates` as a float, None) or (None, the error)."""
    try:
        return _as_float(dead_fraction([r.clone() for r in rates])), None
    except Exception as err:  # noqa: BLE001 - a student's bug is data here
        return None, f"{type(err).__name__}: {err}"


def judge_dead_fraction(data: dict, seed: int, hidden: bool = False) -> str | None:
    """data: {"borrowed": names, "results": one (value, error) per list of rate_lists(seed, hidden)}."""
    if data["borrowed"]:
        return judged.borrowed_message(data["borrowed"])
    lists = rate_lists(seed, hidden)
    if len(data["results"]) != len(lists):
        return f"dead_fraction: {len(data['results'])} results for {len(lists)} lists of rates"
    for rates, (got, error) in zip(lists, data["results"], strict=True):
        if error:
            return f"dead_fraction: {error}"
        want = _pooled(rates)
        if math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12):
            continue
        named = next((m for f, m in DEAD_MISCONCEPTIONS if math.isclose(got, f(rates), rel_tol=1e-9)), None)
        where = f"a hidden list of {len(rates)} layers" if hidden else f"layers of widths {[len(r) for r in rates]}"
        return f"dead_fraction: {named or f'returned {got:.4f} on {where}, expected {want:.4f}'}"
    return None


def check_dead_fraction(dead_fraction, seed: int, hidden: bool = False) -> None:
    """dead_fraction(rates): dead units (rate exactly 0) over all units of all layers."""
    results = [_run_dead_fraction(dead_fraction, rates) for rates in rate_lists(seed, hidden)]
    data = {"borrowed": judged.borrowed(dead_fraction), "results": results}
    judged.check(judge_dead_fraction, data, seed=seed, hidden=hidden)


# ---- provoking and preventing death -----------------------------------------------------------------

EPOCHS, BATCH_SIZE, OPTIMIZER = 20, 100, "adam"
MIN_UNITS = 64
MAX_DEAD_AT_INIT = 0.2
MAX_SECONDS = 10.0


def moons_data(seed: int):
    """The grader's data: two moons, 2,000 points with noise 0.2 (1,200 train, 400 validation, 400 test)."""
    return moons(n=2000, noise=0.2, seed=seed)


@plain.registered
@dataclass(frozen=True)
class Measurement:
    """A setting trained by the grader: the firing rates of its units on the training inputs (one float64
    array per watched layer, DeadUnitMonitor's) at initialisation and after training (empty when the model has
    no ReLU-family layer), the training outcome, and whether the trained parameters stayed finite; or the
    error that stopped it."""

    at_init: tuple[np.ndarray, ...] = ()
    trained: tuple[np.ndarray, ...] = ()
    outcome: TrainingOutcome | None = None
    finite: bool = True
    error: str | None = None


def _unpack_setting(setting) -> tuple[Callable, float]:
    if not (isinstance(setting, tuple | list) and len(setting) == 2 and callable(setting[0])):
        raise ValueError("must return a pair (build_model, lr): a function that builds a model, and a number")
    build_model, lr = setting
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"the learning rate must be a positive number, got {lr!r}")
    return build_model, float(lr)


def _rates_on(model: nn.Module, x: torch.Tensor) -> tuple[np.ndarray, ...]:
    """DeadUnitMonitor's firing rates of every watched layer of `model` on `x` (train/eval mode unchanged);
    () when the model has no ReLU-family or maxout layer."""
    if not any(isinstance(m, MONITORED) for m in model.modules()):
        return ()
    with DeadUnitMonitor(model) as monitor:
        monitor.observe(x)
        return tuple(r.numpy() for r in monitor.firing_rates().values())


def _at_init(build_model: Callable, x: torch.Tensor, seed: int) -> tuple[np.ndarray, ...]:
    """The firing rates of the freshly built model on the training inputs, in training mode as the first
    step sees it (a BatchNorm normalises with batch statistics)."""
    torch.manual_seed(seed)
    model = build_model()
    if not isinstance(model, nn.Module):
        raise TypeError(f"build_model returned a {type(model).__name__}, not a torch nn.Module")
    return _rates_on(model, x)


def measure(setting_fn: Callable, seed: int) -> Measurement:
    """Call the student's setting function, then build and train its model with the grader's seed and data:
    Adam, 20 epochs, batches of 100; firing rates on the training inputs before and after training."""
    try:
        build_model, lr = _unpack_setting(setting_fn())
        data = moons_data(seed)
        x_train = torch.as_tensor(data.x_train)
        at_init = _at_init(build_model, x_train, seed)
    except Exception as err:  # noqa: BLE001 - a student's bug is data here
        return Measurement(error=f"{type(err).__name__}: {err}")
    if not at_init:
        return Measurement()
    built = []

    def tracked():
        built.append(build_model())
        return built[-1]

    outcome = train_and_measure(tracked, data, EPOCHS, lr, seed, optimizer=OPTIMIZER, batch_size=BATCH_SIZE)
    trained = ()
    if outcome.error is None:
        try:
            trained = _rates_on(built[-1], x_train)
        except Exception as err:  # noqa: BLE001
            outcome = replace(outcome, error=f"{type(err).__name__}: {err}")
    finite = all(bool(torch.isfinite(p).all()) for m in built[-1:] for p in m.parameters())
    return Measurement(at_init, trained, outcome, finite)


NO_RELU = "ValueError: the model has no ReLU-family layer (nn.ReLU, nn.LeakyReLU, nn.PReLU) to watch"


def _common_problem(name: str, m: Measurement) -> str | None:
    if m.error:
        return f"{name}: {m.error}"
    if not m.at_init:
        return f"{name}: {NO_RELU}"
    if m.outcome.error:
        return f"{name}: building or training the model failed: {m.outcome.error}"
    if [r.shape for r in m.trained] != [r.shape for r in m.at_init]:
        return f"{name}: build_model built a different network the second time: it must build the same one"
    units = sum(r.size for r in m.at_init)
    if units < MIN_UNITS:
        return (f"{name}: the network has {units} ReLU units; use at least {MIN_UNITS} (e.g. two hidden layers "
                "of 64) so that the dead fraction means something")
    if not m.finite:
        return (f"{name}: training diverged (the parameters became nan or inf). A diverged network looks "
                "dead everywhere, but nothing died: choose a learning rate that still trains")
    if m.outcome.train_seconds > MAX_SECONDS:
        return f"{name}: training took {m.outcome.train_seconds:.1f} s, over the {MAX_SECONDS:g} s budget"
    return None


def _report(name: str, m: Measurement) -> None:
    if m.error is None and m.at_init and m.trained:
        print(f"{name}: {sum(r.size for r in m.at_init)} units, dead at initialisation {_pooled(m.at_init):.1%}, "
              f"after training {_pooled(m.trained):.1%}; test accuracy {m.outcome.test_accuracy:.3f}")


def judge_provoke(m: Measurement, seed: int, threshold: float, hidden: bool = False) -> str | None:
    """m: the grader's Measurement of provoke_death's setting (see measure)."""
    problem = _common_problem("provoke_death", m)
    if problem:
        return problem
    if _pooled(m.at_init) > MAX_DEAD_AT_INIT:
        return (f"provoke_death: {_pooled(m.at_init):.0%} of the units are dead before any training (at most "
                f"{MAX_DEAD_AT_INIT:.0%} may be): make them die during training, not at initialisation")
    if _pooled(m.trained) < threshold:
        return (f"provoke_death: {_pooled(m.trained):.0%} of the units are dead after training, fewer than the "
                f"{threshold:.0%} required: what does one very large update do to a unit's bias?")
    return None


def check_provoke(provoke_death, seed: int, threshold: float, hidden: bool = False) -> None:
    """Trained by the grader, the setting must leave at least `threshold` of its units dead, having started
    with at most MAX_DEAD_AT_INIT dead: the units must die during training."""
    m = measure(provoke_death, seed)
    _report("provoke_death", m)
    judged.check(judge_provoke, m, seed=seed, threshold=threshold, hidden=hidden)


PREVENT_HINTS = [Hint(near_chance(2), "near chance: did the network train at all (a learning rate too small to "
                                      "move it, or no hidden layers)?")]


def judge_prevent(m: Measurement, seed: int, max_dead: float, threshold: float, hidden: bool = False) -> str | None:
    """m: the grader's Measurement of prevent_death's setting; the accuracy is counted from its predictions
    against the moons' test labels, re-created here from the seed."""
    problem = _common_problem("prevent_death", m)
    if problem:
        return problem
    dead, born = _pooled(m.trained), _pooled(m.at_init)
    if dead > max_dead:
        why = (f" ({born:.1%} were dead already at initialisation: born dead, their pre-activation is <= 0 on "
               "all of the data, they get no gradient)" if born > max_dead else "")
        return (f"prevent_death: {dead:.1%} of the units are dead after training, more than the {max_dead:.0%} "
                f"allowed{why}")
    return accuracy_verdict("prevent_death", m.outcome, moons_data(seed).y_test, threshold, PREVENT_HINTS)


def check_prevent(prevent_death, seed: int, max_dead: float, threshold: float, hidden: bool = False) -> None:
    """Trained by the grader, the setting must leave at most `max_dead` of its units dead and reach
    `threshold` test accuracy."""
    m = measure(prevent_death, seed)
    _report("prevent_death", m)
    judged.check(judge_prevent, m, seed=seed, max_dead=max_dead, threshold=threshold, hidden=hidden)
