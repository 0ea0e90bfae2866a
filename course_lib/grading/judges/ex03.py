"""Judges for ex03_dead_neurons: firing rates, the dead fraction, and settings that provoke or prevent dead
units. Host side: the reference is course_lib.diagnostics.DeadUnitMonitor (a unit is *active* on an example
when its pre-activation is > 0; *dead* when its firing rate over the data set is exactly 0), and every
reference value is computed here.

- firing_rates / dead_fraction: the sandbox is given a seed; it builds the test networks and lists of rates
  from it (course_lib.grading.checks.ex03's public builders) and hands back the student's results. The
  judge rebuilds the same networks and lists from the same seed and compares with DeadUnitMonitor's rates
  and the pooled dead fraction, naming the misconception a wrong answer reproduces.
- provoke / prevent: the sandbox is given the torch seed to build the student's model under and hands back
  that model as a modelspec plus a learning rate (`Setting`). The host rebuilds the model from the spec,
  trains it itself (Adam, EPOCHS epochs in batches of BATCH_SIZE on two moons drawn from a seed the sandbox
  never sees) and measures its dead units before and after training and its test accuracy. No figure the
  kernel computed decides anything: a forged Setting passes only if it is a setting that does what the
  exercise asks.
"""

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from course_lib.data import moons
from course_lib.diagnostics import MONITORED, DeadUnitMonitor
from course_lib.grading.checks.ex03 import NETS, RatesProbe, Setting, TestNet, plain_rates, rate_lists
from course_lib.grading.judges import Judge, Prepared, secret_seed
from course_lib.grading.judges.tolerance import FRACTION_ATOL
from course_lib.grading.judges.training import Hint, accuracy_verdict, near_chance
from course_lib.grading.kernel import modelspec
from course_lib.grading.kernel.training import TrainingOutcome, train_and_predict
from course_lib.train import one_thread

# The monitor, and the course's helpers that already compute firing rates or which ReLUs are active.
WRITTEN = {"course_lib.diagnostics": ["DeadUnitMonitor", "dead_fraction"],
           "course_lib.sweeps": ["firing_rates", "dead_masks", "fraction_dead"],
           "course_lib.regions": ["relu_patterns"]}

MAX_HOOKS = 10**6  # more than any model has; a larger count is not one a probe wrote

# ---- firing rates -----------------------------------------------------------------------------------


def reference_rates(net: TestNet) -> list[np.ndarray]:
    """DeadUnitMonitor's firing rates (float64, one array per ReLU in model order) over the net's batches."""
    with DeadUnitMonitor(net.model) as monitor:
        monitor.observe(net.batches)
        return [r.numpy() for r in monitor.firing_rates().values()]


def _reduce(counts: list, sums: list, sizes: list, reduce: str) -> torch.Tensor:
    """One layer's per-batch counts of active examples, sums of positive parts and batch sizes, reduced the
    way a misconception reduces them."""
    if reduce == "first":
        return counts[0] / sizes[0]
    if reduce == "last":
        return counts[-1] / sizes[-1]
    if reduce == "batch_mean":
        return torch.stack([c / s for c, s in zip(counts, sizes, strict=True)]).mean(0)
    if reduce == "counts":
        return sum(counts)
    if reduce == "mean_value":
        return sum(sums) / sum(sizes)
    return sum(counts) / sum(sizes)


def wrong_rates(net: TestNet, active: Callable, watch=nn.ReLU, use_output: bool = False,
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
    return [_reduce(*(list(t) for t in zip(*records, strict=True)), reduce).numpy() for records in per_batch]


def positive(z):
    return z > 0


def non_negative(z):
    return z >= 0


RATE_MISCONCEPTIONS = (
    (dict(active=non_negative), "a pre-activation >= 0 was counted as active: a unit at exactly 0 passes no "
     "gradient (ReLU's subgradient there is 0), so active means > 0"),
    (dict(active=non_negative, use_output=True), "the outputs >= 0 were counted: every ReLU output is >= 0. A "
     "unit is active where its output (equivalently its pre-activation) is > 0"),
    (dict(active=positive, reduce="first"), "rates counted over one batch, not the whole data set: add up "
     "the counts of every batch and divide by the total number of examples"),
    (dict(active=positive, reduce="last"), "only the last batch was counted (each batch overwrote the one "
     "before): add up the counts of every batch and divide by the total number of examples"),
    (dict(active=positive, reduce="batch_mean"), "the per-batch rates were averaged: batches differ in size "
     "(the last one is smaller), so add up counts and divide by the total number of examples"),
    (dict(active=positive, reduce="counts"), "returned counts of active examples, not fractions: divide by "
     "the number of examples"),
    (dict(active=positive, reduce="mean_value"), "returned the mean activation, not the fraction of examples "
     "on which the unit is active (pre-activation > 0)"),
)

# Misconceptions about how a monitor finds the units and cleans up: whole messages, or the end of one.
WATCHED_LINEAR_OUTPUTS = ("the monitor watched the Linear layers' outputs, not the inputs of the ReLUs (a norm layer "
                          "sits between)")
WATCHED_LINEAR = "the monitor watched the Linear layers instead of the ReLUs"
NESTED_RELUS = "one per nn.ReLU module in the order of model.modules() (ReLUs inside nested blocks count too)"
HOOKS_LEFT = ("remove every handle (handle.remove(), e.g. in a finally block) before returning, or every later "
              "forward pass keeps counting")

RATE_TOLERANCE = {"rtol": 1e-6, "atol": 1e-9}  # rates are ratios of counts: float32 counting is exact here


def _same(got: list[np.ndarray], want: list[np.ndarray]) -> bool:
    return len(got) == len(want) and all(
        g.shape == w.shape and np.allclose(g, w, **RATE_TOLERANCE) for g, w in zip(got, want, strict=True))


def _misconception(got: list[np.ndarray], build: Callable, seed: int, hidden: bool, n_relu: int) -> str | None:
    """The message of the first misconception whose rates equal `got`, if any."""
    for kwargs, message in RATE_MISCONCEPTIONS:
        if _same(got, wrong_rates(build(seed, hidden), **kwargs)):
            return message
    if _same(got, wrong_rates(build(seed, hidden), positive, watch=nn.Linear)[:n_relu]):
        return WATCHED_LINEAR_OUTPUTS
    return None


def _count_problem(got: list, want: list, fresh: TestNet, where: str) -> str | None:
    """Why `got` has the wrong number or shapes of rate vectors (None when they fit)."""
    n_relu, n_linear = len(want), sum(isinstance(m, nn.Linear) for m in fresh.model.modules())
    if len(got) != len(want):
        if len(got) == n_linear:
            return (f"returned {len(got)} rate vectors for {where}, which has {n_relu} nn.ReLU modules and "
                    f"{n_linear} nn.Linear layers: {WATCHED_LINEAR}")
        return f"returned {len(got)} rate vectors for {where}, expected {n_relu}: {NESTED_RELUS}"
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if g.shape != w.shape:
            return f"rate vector {i} has shape {g.shape} for {where}, expected {w.shape}: one rate per unit"
    return None


def _rates_problem(probe, build: Callable[[int, bool], TestNet], seed: int, hidden: bool) -> str | None:
    """What is wrong with the rates of `probe` (a RatesProbe, or forged data), measured on build(seed, hidden)
    (None if nothing)."""
    fresh = build(seed, hidden)
    where = "a hidden test network" if hidden else fresh.description
    if not isinstance(probe, RatesProbe):
        return "the check returned no rates"
    hooks = probe.hooks_left
    if isinstance(hooks, bool) or not isinstance(hooks, int) or not 0 <= hooks <= MAX_HOOKS:
        return "the check returned no count of hooks"
    if hooks:
        return f"left {hooks} hook(s) attached to {where}: {HOOKS_LEFT}"
    if probe.error is not None:
        return str(probe.error)
    try:
        got = plain_rates(probe.rates)
    except ValueError as err:  # data that no probe writes
        return str(err)
    want = reference_rates(fresh)
    problem = _count_problem(got, want, fresh, where)
    if problem or _same(got, want):
        return problem
    named = _misconception(got, build, seed, hidden, len(want))
    if named:
        return named
    wrong = [~np.isclose(g, w, **RATE_TOLERANCE) for g, w in zip(got, want, strict=True)]
    i = next(i for i, w in enumerate(wrong) if w.any())
    j = int(np.flatnonzero(wrong[i])[0])
    shown = "" if hidden else f" (unit {j}: {float(got[i][j])!r}, expected {float(want[i][j])!r})"
    return f"wrong rates for {int(wrong[i].sum())} of {wrong[i].size} units of ReLU module {i} of {where}{shown}"


def _seeded(params: dict) -> Prepared:
    """The sandbox builds its inputs from the check's seed: the answers follow from it only by doing the work."""
    return Prepared({"seed": params["seed"], "hidden": bool(params.get("hidden"))})


def decide_firing_rates(data, prepared: Prepared, params: dict) -> str | None:
    """data: one RatesProbe per network of NETS, built from the given seed."""
    seed, hidden = prepared.given["seed"], prepared.given["hidden"]
    if not isinstance(data, list) or len(data) != len(NETS):
        return f"firing_rates: the check returned no results for the {len(NETS)} test networks"
    for probe, build in zip(data, NETS, strict=True):
        problem = _rates_problem(probe, build, seed, hidden)
        if problem:
            return f"firing_rates: {problem}"
    return None


# ---- the dead fraction ------------------------------------------------------------------------------


def pooled(rates: list) -> float:
    """Dead units (rate exactly 0) over all units of all layers: rates is a list of 1-D tensors or arrays."""
    return sum(int((r == 0).sum()) for r in rates) / sum(len(r) for r in rates)


DEAD_MISCONCEPTIONS = (
    (lambda rates: float(np.mean([float((r == 0).double().mean()) for r in rates])),
     "the per-layer dead fractions were averaged: layers have different widths, so count dead units over all "
     "units of all layers"),
    (lambda rates: 1 - pooled(rates), "returned the fraction of live units, not dead ones"),
    (lambda rates: float(sum(int((r == 0).sum()) for r in rates)),
     "returned the number of dead units, not the fraction"),
    *[(lambda rates, t=t: sum(int((r < t).sum()) for r in rates) / sum(len(r) for r in rates),
       "a unit that is active on some examples was counted as dead: dead means a firing rate of exactly 0")
      for t in (0.001, 0.01, 0.05, 0.1, 0.5)],
)


def _fraction_problem(result, rates: list[torch.Tensor], hidden: bool) -> str | None:
    """What is wrong with one (value, error) pair the probe returned for `rates` (None if nothing)."""
    if not (isinstance(result, tuple) and len(result) == 2):
        return "the check returned no result for a list of rates"
    got, error = result
    if error is not None:
        return str(error)
    if not isinstance(got, float):
        return "the check returned no number for a list of rates"
    want = pooled(rates)
    if math.isclose(got, want, rel_tol=0, abs_tol=FRACTION_ATOL):
        return None
    named = next((m for f, m in DEAD_MISCONCEPTIONS if math.isclose(got, f(rates), rel_tol=0, abs_tol=FRACTION_ATOL)),
                 None)
    where = f"a hidden list of {len(rates)} layers" if hidden else f"layers of widths {[len(r) for r in rates]}"
    return named or f"returned {got!r} on {where}, expected {want!r}"


def decide_dead_fraction(data, prepared: Prepared, params: dict) -> str | None:
    """data: one (value, error) per list of rate_lists(seed, hidden)."""
    lists = rate_lists(prepared.given["seed"], prepared.given["hidden"])
    if not isinstance(data, list) or len(data) != len(lists):
        return f"dead_fraction: the check returned no results for the {len(lists)} lists of rates"
    for rates, result in zip(lists, data, strict=True):
        problem = _fraction_problem(result, rates, prepared.given["hidden"])
        if problem:
            return f"dead_fraction: {problem}"
    return None


# ---- provoking and preventing death: trained and measured here ---------------------------------------

EPOCHS, BATCH_SIZE, OPTIMIZER = 20, 100, "adam"
MIN_UNITS = 64
MAX_DEAD_AT_INIT = 0.2
_TRAINING = threading.Lock()  # one training at a time in this process: torch's global RNG and thread count
# Misconceptions about how units die, each the end of provoke_death's message (the numbers come before it).
TOO_FEW_UNITS = "(e.g. two hidden layers of 64) so that the dead fraction means something"
BORN_DEAD = "make them die during training, not at initialisation"
TOO_FEW_DIED = "what does one very large update do to a unit's bias?"
STILL_BORN_DEAD = "born dead, their pre-activation is <= 0 on all of the data, they get no gradient"  # prevent_death


@lru_cache(maxsize=16)
def moons_data(seed: int):
    """The grader's data: two moons, 2,000 points with noise 0.2 (1,200 train, 400 validation, 400 test);
    scikit-learn takes 32-bit seeds."""
    return moons(n=2000, noise=0.2, seed=seed % 2**32)


def model_seed(seed: int) -> int:
    """The torch seed the sandbox builds the model under: derived from the check's seed one way, so the
    moons' seed (and labels) cannot be re-created from it."""
    return secret_seed(b"ex03 model seed", seed)


@dataclass(frozen=True)
class Measured:
    """A setting trained here: DeadUnitMonitor's rates (one float64 array per watched layer) at
    initialisation and after training, whether the trained parameters stayed finite, the training outcome
    (its predictions on the held-out inputs); or the error that stopped it."""

    at_init: tuple[np.ndarray, ...] = ()
    trained: tuple[np.ndarray, ...] = ()
    finite: bool = True
    outcome: TrainingOutcome | None = None
    error: str | None = None


def _rates_on(model: nn.Module, x: torch.Tensor) -> tuple[np.ndarray, ...]:
    """DeadUnitMonitor's firing rates of every watched layer of `model` on `x` (train/eval mode unchanged)."""
    with DeadUnitMonitor(model) as monitor:
        monitor.observe(x)
        return tuple(r.numpy() for r in monitor.firing_rates().values())


def _train(spec: dict, lr: float, seed: int, data) -> Measured:
    """Build the spec twice: measure the fresh one on the training inputs in training mode (as the first
    step sees it: a BatchNorm normalises with batch statistics), and train the other (seed: shuffling and
    dropout) and measure it in eval mode."""
    x_train = torch.as_tensor(data.x_train)
    with torch.random.fork_rng(devices=[]):  # this process's RNG is left as it was
        torch.manual_seed(seed)
        at_init = _rates_on(modelspec.build(spec), x_train)
        outcome, model = train_and_predict(lambda: modelspec.build(spec), data.x_train, data.y_train,
                                           data.x_test, EPOCHS, lr, seed, optimizer=OPTIMIZER, batch_size=BATCH_SIZE)
    if outcome.error:
        return Measured(at_init, outcome=outcome, error=f"training the model failed: {outcome.error}")
    finite = all(bool(torch.isfinite(p).all()) for p in model.parameters())
    return Measured(at_init, _rates_on(model, x_train) if finite else (), finite, outcome)


def measure(setting, given: dict, data_seed: int) -> Measured:
    """Rebuild, train and measure the setting the sandbox handed back (anything: checked here)."""
    if not isinstance(setting, Setting):
        return Measured(error="the check returned no setting")
    if setting.error is not None:
        return Measured(error=str(setting.error))
    lr = setting.lr
    if isinstance(lr, bool) or not isinstance(lr, float) or not math.isfinite(lr) or lr <= 0:
        return Measured(error="the learning rate must be a positive number")
    try:
        model = modelspec.build(setting.model)
    except modelspec.SpecError as err:
        return Measured(error=str(err))
    if not any(isinstance(m, MONITORED) for m in model.modules()):
        return Measured(error="the model has no ReLU-family layer (nn.ReLU, nn.LeakyReLU, nn.PReLU) to watch")
    data = moons_data(data_seed)
    with _TRAINING, one_thread():
        try:
            return _train(setting.model, lr, given["seed"], data)
        except Exception as err:  # noqa: BLE001 - a model that cannot run on the data is the student's bug
            return Measured(error=f"running the model failed: {type(err).__name__}: {err}")


def _common_problem(m: Measured) -> str | None:
    if m.error:
        return m.error
    units = sum(r.size for r in m.at_init)
    if units < MIN_UNITS:
        return f"the network has {units} ReLU units; use at least {MIN_UNITS} {TOO_FEW_UNITS}"
    if not m.finite:
        return ("training diverged (the parameters became nan or inf). A diverged network looks dead everywhere, "
                "but nothing died: choose a learning rate that still trains")
    return None


def _prepare_setting(params: dict) -> Prepared:
    """The sandbox gets the seed to build the model under; the moons' seed stays here."""
    return Prepared({"seed": model_seed(params["seed"])}, private=params["seed"])


def decide_provoke(data, prepared: Prepared, params: dict) -> str | None:
    """data: the Setting of provoke_death, trained and measured here."""
    m = measure(data, prepared.given, prepared.private)
    problem = _common_problem(m)
    if problem:
        return f"provoke_death: {problem}"
    born, dead = pooled(m.at_init), pooled(m.trained)
    if born > MAX_DEAD_AT_INIT:
        return (f"provoke_death: {born:.0%} of the units are dead before any training (at most "
                f"{MAX_DEAD_AT_INIT:.0%} may be): {BORN_DEAD}")
    if dead < params["threshold"]:
        return (f"provoke_death: {dead:.0%} of the units are dead after training, fewer than the "
                f"{params['threshold']:.0%} required: {TOO_FEW_DIED}")
    return None


PREVENT_HINTS = [Hint(near_chance(2), "near chance: did the network train at all (a learning rate too small to "
                                      "move it, or no hidden layers)?")]


def decide_prevent(data, prepared: Prepared, params: dict) -> str | None:
    """data: the Setting of prevent_death, trained and measured here; the accuracy is counted against the
    moons' test labels, which never leave this side."""
    m = measure(data, prepared.given, prepared.private)
    problem = _common_problem(m)
    if problem:
        return f"prevent_death: {problem}"
    dead, born, max_dead = pooled(m.trained), pooled(m.at_init), params["max_dead"]
    if dead > max_dead:
        why = f" ({born:.1%} were dead already at initialisation: {STILL_BORN_DEAD})" if born > max_dead else ""
        return (f"prevent_death: {dead:.1%} of the units are dead after training, more than the {max_dead:.0%} "
                f"allowed{why}")
    return accuracy_verdict("prevent_death", m.outcome, moons_data(prepared.private).y_test, params["threshold"],
                            PREVENT_HINTS)


JUDGES = {
    "firing_rates": Judge(_seeded, decide_firing_rates),
    "dead_fraction": Judge(_seeded, decide_dead_fraction),
    "provoke": Judge(_prepare_setting, decide_provoke),
    "prevent": Judge(_prepare_setting, decide_prevent),
}
