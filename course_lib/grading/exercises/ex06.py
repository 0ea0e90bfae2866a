"""Checks for ex06_capstone: a network for MNIST-1D within a CPU budget, and its dead-unit fraction.

Every training result comes from `course_lib.grading.budget.train_on_budget`: the student's `build_model` and
`training_config` are called here, with the grader's seed and the grader's MNIST-1D draw, on one thread, and
the time is CPU seconds. One run per (seed, configuration, built model) is kept in this module, so the visible
test cells (and the hidden ones) share one training instead of training once per cell.

Each check_* probes the student's code into plain data and hands it to a judge_* (course_lib.grading.judged),
which decides from that data alone: it counts the accuracy from the held-out predictions against labels it
re-creates from the seed, and re-creates the hand-built models whose dead units dead_fraction must count.
"""

import copy
import hashlib
import numbers
import types

import numpy as np
import torch
from torch import nn

from course_lib import cnn as course_cnn
from course_lib import diagnostics
from course_lib.data import Split, mnist1d
from course_lib.grading import judged
from course_lib.grading.budget import (
    BudgetedRun,
    ConfigLimits,
    ConfigProbe,
    budget_verdict,
    config_verdict,
    probe_config,
    train_on_budget,
)
from course_lib.grading.training import Hint, accuracy_verdict

NUM_SAMPLES = 4000  # 3200 training and 800 test signals (the package's own split, 80/20)
LIMITS = ConfigLimits(epochs=(1, 60), batch_size=(16, 512), lr=(1e-5, 1.0))
# The solution (a 3-layer 1-D CNN, 15 epochs) takes 2.25-3.69 CPU seconds on one thread on the course's machine
# (seeds 0-19, with other jobs sharing the CPU); the budget leaves a 3x margin for slower machines.
BUDGET_S = 12.0
STOP_AFTER_S = 2 * BUDGET_S  # a run this long is stopped: it fails every training test
# Over seeds 0-19 the solution reaches 0.864-0.918 and a ReLU MLP 40-256-256-10 0.575-0.652 (test cell comments).
THRESHOLD_A = 0.50  # the MLP level
THRESHOLD_B = 0.82  # the bonus tier, reached by a small CNN within the budget
MAX_OUTPUTS = 10_000  # a model output larger than this is logged by its shape only

ACTIVE_LAYERS = (nn.ReLU, nn.LeakyReLU, nn.PReLU)

_RUNS: dict[int, tuple[tuple, tuple[BudgetedRun, nn.Module | None]]] = {}


def data(seed: int) -> Split:
    """The grader's MNIST-1D draw for `seed`: x (N, 40) float32 signals, y (N,) labels 0..9, no validation."""
    return mnist1d(num_samples=NUM_SAMPLES, seed=seed, val=0)


def _name(what: str, seed: int, hidden: bool) -> str:
    return f"{what} (hidden test)" if hidden else f"{what} (seed {seed})"


def _error(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


# ---------------------------------------------------------------- the design: config, shapes, logits


def _config_message(config: ConfigProbe) -> str | None:
    """None when the probed training_config() is within LIMITS; else what the student sees."""
    message = config_verdict("training_config()", config, LIMITS)
    if message is None or config.error:
        return message
    return f"{message}. Allowed: {LIMITS.describe()}"


def _looks_like_probabilities(out) -> bool:
    """True when `out` is (N, C) with every row non-negative and summing to 1: a softmax output, not logits."""
    return (isinstance(out, np.ndarray) and out.ndim == 2 and bool((out >= 0).all())
            and bool(np.allclose(out.sum(axis=1), 1.0, rtol=1e-5, atol=1e-4)))


def _small_array(out) -> np.ndarray | None:
    """A float64 copy of an output tensor of at most MAX_OUTPUTS values; None for anything else."""
    if not isinstance(out, torch.Tensor) or out.numel() > MAX_OUTPUTS:
        return None
    try:
        return out.detach().cpu().double().numpy().copy()
    except Exception:  # noqa: BLE001 - an output numpy cannot hold is no output
        return None


SOFTMAX_OUTPUT = ("the model's outputs are probabilities (every row sums to 1): return the logits of the last "
                  "Linear layer; cross-entropy applies log-softmax itself, and a softmax before it squashes "
                  "the gradients")
USES_CNN1D = ("build_model uses course_lib.cnn.cnn1d, the reference CNN of notebook 06: design the layers "
              "yourself with torch.nn")
FAILED_STEP = {
    "build": "build_model() raised {}",
    "type": "build_model() returned a {}, not a torch nn.Module",
    "forward": ("the model fails on a batch of MNIST-1D signals, shape (7, 40): {}. Check the input size (40 "
                "features) and, after convolutions, the flattened size the read-out Linear layer expects"),
}


def _probe_forward(build_model) -> dict:
    """build_model() (torch seed 0) on a (7, 40) batch: {"failed": (step of FAILED_STEP, detail) or None,
    "shape": the output's shape (its type name when it is not a tensor), "output": _small_array of it}."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        try:
            model = build_model()
        except Exception as err:  # noqa: BLE001 - a student's bug is a failed test, not a crash of the grader
            return {"failed": ("build", _error(err)), "shape": None, "output": None}
        if not isinstance(model, nn.Module):
            return {"failed": ("type", type(model).__name__), "shape": None, "output": None}
        try:
            with torch.no_grad():
                out = model(torch.randn(7, 40))
        except Exception as err:  # noqa: BLE001
            return {"failed": ("forward", _error(err)), "shape": None, "output": None}
    shape = tuple(int(n) for n in out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    return {"failed": None, "shape": shape, "output": _small_array(out)}


def judge_design(probed: dict) -> str | None:
    """probed: {"config": ConfigProbe, "uses_cnn1d": bool, **_probe_forward(build_model)}."""
    message = _config_message(probed["config"])
    if message:
        return message
    if probed["uses_cnn1d"]:
        return USES_CNN1D
    if probed["failed"]:
        step, detail = probed["failed"]
        return FAILED_STEP[step].format(detail)
    if probed["shape"] != (7, 10):
        return f"the model maps a (7, 40) batch to {probed['shape']}; expected (7, 10): one logit per class"
    return SOFTMAX_OUTPUT if _looks_like_probabilities(probed["output"]) else None


def check_design(build_model, training_config) -> None:
    """The config is within the limits; the model maps a (N, 40) batch to (N, 10) float logits."""
    probed = {"config": probe_config(training_config),
              "uses_cnn1d": _refers_to(build_model, (course_cnn.cnn1d, course_cnn), ("cnn1d",)),
              **_probe_forward(build_model)}
    judged.check(judge_design, probed)


# ---------------------------------------------------------------- one training run per seed, shared by cells


def _fingerprint(build_model, config: dict, seed: int) -> tuple | None:
    """What identifies a run: the config, the seed, the built model's classes, layout and initial weights."""
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build_model()
            digest = hashlib.sha256(repr(model).encode())
            for tensor in model.state_dict().values():
                digest.update(tensor.detach().cpu().numpy().tobytes())
            classes = tuple(type(m) for m in model.modules())
    except Exception:  # noqa: BLE001 - no fingerprint: train without keeping the run
        return None
    return tuple(sorted(config.items())), seed, classes, digest.hexdigest()


def _run(build_model, config: ConfigProbe, seed: int) -> tuple[BudgetedRun | None, nn.Module | None]:
    """The grader's training run of the student's design for `seed` and the trained model (trained once, then
    kept); (None, None) when the config is outside LIMITS."""
    if _config_message(config):
        return None, None
    settings = config.as_dict()
    key = _fingerprint(build_model, settings, seed)
    if key is not None and seed in _RUNS and _RUNS[seed][0] == key:
        return _RUNS[seed][1]
    trained = train_on_budget(build_model, data(seed), settings, seed, stop_after_s=STOP_AFTER_S)
    if key is not None:
        _RUNS[seed] = (key, trained)
    return trained


def _trained_outputs(model: nn.Module) -> np.ndarray | None:
    """The trained model's outputs on 16 fixed random signals (_small_array), None when it fails on them."""
    try:
        with torch.no_grad():
            return _small_array(model(torch.randn(16, 40, generator=torch.Generator().manual_seed(0))))
    except Exception:  # noqa: BLE001 - no diagnosis; the accuracy message stands alone
        return None


def _probe_run(build_model, training_config, seed: int) -> tuple[dict, nn.Module | None]:
    """{"config": ConfigProbe, "run": BudgetedRun (None when the config is outside LIMITS), "outputs": the
    trained model's _trained_outputs (None when training failed)}, and the trained model."""
    config = probe_config(training_config)
    run, model = _run(build_model, config, seed)
    trained = model is not None and run.outcome.error is None
    return {"config": config, "run": run, "outputs": _trained_outputs(model) if trained else None}, model


OVER_BUDGET = "use fewer epochs, larger batches or a smaller model"
HINTS = (
    Hint(lambda o: o.test_accuracy < 0.2,
         "accuracy near 0.1 (guessing): is the activation applied between the layers, and does the model return "
         "logits (not softmax probabilities fed to cross-entropy)? Too large a learning rate also ends here"),
    Hint(lambda o: o.test_accuracy < 0.42,
         "about what a linear classifier reaches on MNIST-1D (~0.32): is a nonlinearity applied between the "
         "layers?"),
    Hint(lambda o: True, "try more epochs, another learning rate, or a small 1-D CNN"),
)
BONUS_HINTS = (*HINTS[:2], Hint(lambda o: True, "an MLP stops near 0.6 on MNIST-1D; a small 1-D CNN (weights "
                                                "shared along the signal) gets there within the budget"))


def _stopped(run: BudgetedRun) -> str:
    return (f"training was stopped after {run.cpu_seconds:.1f} CPU seconds, twice the {BUDGET_S:g} s budget: "
            f"{OVER_BUDGET}")


def _run_message(name: str, probed: dict, seed: int, threshold: float, hints=HINTS,
                 budget: bool = False) -> str | None:
    """The verdict on a _probe_run: the config, the CPU budget (if `budget`), then the accuracy counted from the
    predictions against data(seed)'s test labels."""
    message = _config_message(probed["config"])
    run = probed["run"]
    if not message and budget:
        message = budget_verdict(name, run, BUDGET_S, OVER_BUDGET)
    if message:
        return message
    if run.stopped:
        return f"{name}: {_stopped(run)}"
    if not run.outcome.error and _looks_like_probabilities(probed["outputs"]):
        hints = (Hint(lambda o: True, SOFTMAX_OUTPUT),)
    return accuracy_verdict(name, run.outcome, data(seed).y_test, threshold, hints)


def judge_accuracy(probed: dict, seed: int, hidden: bool = False) -> str | None:
    """probed: _probe_run's data; THRESHOLD_A test accuracy."""
    return _run_message(_name("MNIST-1D", seed, hidden), probed, seed, THRESHOLD_A)


def check_accuracy(build_model, training_config, seed: int, hidden: bool = False) -> None:
    """The grader's training of the design reaches THRESHOLD_A test accuracy."""
    judged.check(judge_accuracy, _probe_run(build_model, training_config, seed)[0], seed=seed, hidden=hidden)


def judge_budget(probed: dict, seed: int) -> str | None:
    """probed: _probe_run's data; THRESHOLD_A within BUDGET_S CPU seconds."""
    return _run_message(_name("CPU budget", seed, False), probed, seed, THRESHOLD_A, budget=True)


def check_budget(build_model, training_config, seed: int) -> None:
    """The design reaches THRESHOLD_A within BUDGET_S CPU seconds."""
    judged.check(judge_budget, _probe_run(build_model, training_config, seed)[0], seed=seed)


def judge_bonus(probed: dict, seed: int, hidden: bool = False) -> str | None:
    """probed: _probe_run's data; THRESHOLD_B within BUDGET_S CPU seconds."""
    return _run_message(_name("bonus tier", seed, hidden), probed, seed, THRESHOLD_B, BONUS_HINTS, budget=True)


def check_bonus(build_model, training_config, seed: int, hidden: bool = False) -> None:
    """The bonus tier: THRESHOLD_B test accuracy within BUDGET_S CPU seconds."""
    judged.check(judge_bonus, _probe_run(build_model, training_config, seed)[0], seed=seed, hidden=hidden)


def measure(build_model, training_config, seed: int) -> None:
    """Print what the grader measures for the design (the numbers for the report); problems are printed too."""
    config = probe_config(training_config)
    problem = _config_message(config)
    if problem:
        print(problem)
        return
    (run, model), d = _run(build_model, config, seed), data(seed)
    o = run.outcome
    print(f"MNIST-1D, grader's draw {seed}: {len(d.y_train)} training and {len(d.y_test)} test signals")
    if o.error:
        print(f"training failed: {_stopped(run) if run.stopped else o.error}")
        return
    measured = _measured(model, torch.as_tensor(d.x_train))
    print(f"test accuracy  {o.test_accuracy:.3f}   (required {THRESHOLD_A:.2f}, bonus {THRESHOLD_B:.2f})")
    print(f"CPU seconds    {run.cpu_seconds:.1f}     (budget {BUDGET_S:g} s on one thread)")
    if measured["unmeasurable"]:
        print(f"dead fraction  cannot be measured: {measured['unmeasurable']}")
    else:
        print(f"dead fraction  {_fraction(measured['dead']):.3f}   (ReLU-family units silent on every training "
              "signal)")
    print(f"parameters     {o.n_parameters:,}")


# ---------------------------------------------------------------- dead_fraction(model, x)


def _refers_to(fn, objects, names=()) -> bool:
    """True when fn (or a function nested in it) uses one of `objects` by a global name, or one of `names`."""
    code, globals_ = getattr(fn, "__code__", None), getattr(fn, "__globals__", {})
    if code is None:
        return False

    def used(code) -> set[str]:
        found = set(code.co_names)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                found |= used(const)
        return found

    found = used(code)
    return any(any(globals_.get(n) is obj for obj in objects) for n in found) or bool(found & set(names))


def _dead_units(model: nn.Module, x: torch.Tensor) -> list[np.ndarray]:
    """DeadUnitMonitor's dead units over x, (units,) bool per ReLU, LeakyReLU and PReLU layer (not maxout
    pieces); none for a model without such a layer. ValueError when the monitor refuses the model."""
    if not any(isinstance(m, ACTIVE_LAYERS) for m in model.modules()):
        return []
    with diagnostics.DeadUnitMonitor(model) as monitor:
        monitor.observe(x)
        return [d.numpy().copy() for name, d in monitor.dead_units().items()
                if isinstance(monitor.layers[name], ACTIVE_LAYERS)]


def _fraction(dead: list[np.ndarray]) -> float:
    """Dead units / all units of the layers' masks; 0.0 for no layer."""
    return sum(int(d.sum()) for d in dead) / sum(d.size for d in dead) if dead else 0.0


def _alternatives(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """The fractions that plausible wrong definitions give (ReLU-family layers only), to name the mistake."""
    seen: dict[nn.Module, list] = {}

    def record(module, args, output):
        seen.setdefault(module, []).append((args[0].detach(), output.detach()))

    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, ACTIVE_LAYERS)]
    try:
        with torch.no_grad():
            model(x)
    except Exception:  # noqa: BLE001 - no alternative to name; the plain message is shown
        return {}
    finally:
        for h in hooks:
            h.remove()
    if not seen or any(len(calls) != 1 for calls in seen.values()):
        return {}
    zs, outs = [calls[0][0] for calls in seen.values()], [calls[0][1] for calls in seen.values()]

    def per_channel(active):
        return active.reshape(active.shape[0], active.shape[1], -1).any(dim=2).any(dim=0)

    def fraction(units) -> float:
        return sum(int((~u).sum()) for u in units) / sum(u.numel() for u in units)

    out = {
        ">= 0": fraction([per_channel(z >= 0) for z in zs]),
        "outputs": fraction([per_channel(o != 0) for o in outs]),
        "positions": fraction([(z > 0).reshape(len(z), -1).any(dim=0) for z in zs]),
        "entries": sum(int((z <= 0).sum()) for z in zs) / sum(z.numel() for z in zs),
    }
    for size in (16, 32, 50, 64, 100, 128, 200, 256, 500, 512, 1000, 1024):
        if size < len(x):
            out[f"batch {size}"] = fraction([per_channel(z[:size] > 0) for z in zs])
    return out


MISTAKES = {
    ">= 0": "counted units with pre-activation >= 0 as active: a unit whose pre-activation is exactly 0 outputs 0 "
            "and gets no gradient, so it is active only where the pre-activation is > 0",
    "outputs": "looked at the outputs (!= 0) instead of the pre-activations: a LeakyReLU unit whose pre-activation "
               "is never > 0 still outputs small negative values, yet it is dead by this definition",
    "positions": "counted every (channel, position) of a conv layer as a unit: a conv unit is a channel, active "
                 "if it fires at some position of some example",
    "entries": "returned the fraction of zero activations over all examples: a unit is dead only when it is "
               "silent on EVERY example of x",
    "batch": "counted over one batch instead of the whole data set: a unit that fires only on a later example "
             "is alive",
}


def _as_number(value) -> float | None:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.item())
    if isinstance(value, numbers.Real | np.floating | np.integer) and not isinstance(value, bool):
        return float(value)
    return None


def _returned(dead_fraction, model: nn.Module, x: torch.Tensor) -> dict:
    """dead_fraction(copy of model, copy of x): {"value": it as a float (None when it is not a number),
    "type_name": its type, "error": "Type: message" when it raised}."""
    try:
        value = dead_fraction(copy.deepcopy(model), x.clone())
        return {"value": _as_number(value), "type_name": type(value).__name__, "error": None}
    except Exception as err:  # noqa: BLE001 - a student's bug is a failed test, not a crash of the grader
        return {"value": None, "type_name": None, "error": _error(err)}


def _measured(model: nn.Module, x: torch.Tensor) -> dict:
    """What the reference sees: {"dead": _dead_units(model, x) (None when unmeasurable), "unmeasurable": why
    the monitor refused the model (or None), "alternatives": _alternatives(model, x)}."""
    try:
        dead, unmeasurable = _dead_units(model, x), None
    except ValueError as err:  # the monitor refuses an activation instance shared between layers
        dead, unmeasurable = None, str(err)
    return {"dead": dead, "unmeasurable": unmeasurable, "alternatives": _alternatives(model, x)}


def _dead_message(name: str, returned: dict, measured: dict, what: str, hidden: bool) -> str | None:
    """None when what dead_fraction returned (_returned) matches the reference's count (_measured); else a
    message naming the likely mistake."""
    if measured["unmeasurable"]:
        return f"{name}: the dead fraction of {what} cannot be measured: {measured['unmeasurable']}"
    expected = _fraction(measured["dead"])
    if returned["error"]:
        return f"{name}: dead_fraction raised {returned['error']} on {what}"
    got = returned["value"]
    if got is None:
        return f"{name}: dead_fraction returned a {returned['type_name']}, not a number"
    if abs(got - expected) <= 1e-9:
        return None
    for key, alternative in measured["alternatives"].items():
        if abs(got - alternative) <= 1e-9:
            mistake = MISTAKES["batch" if key.startswith("batch") else key]
            return f"{name}: dead fraction {got:.4f} on {what}: {mistake}"
    shown = "" if hidden else f", expected {expected:.4f}"
    return f"{name}: dead fraction {got:.4f} on {what}{shown}"


def _linear(n_in: int, n_out: int, rng: np.random.Generator) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)))
        layer.bias.copy_(torch.as_tensor(rng.normal(scale=0.1, size=n_out)))
    return layer


def _kill(weight: torch.Tensor, bias: torch.Tensor, unit: int, how: str, feature: int = 0, cut: float = 0.0):
    """Make `unit` dead ('bias': pre-activation -1; 'zero': exactly 0) or 'rare' (fires only above `cut`)."""
    with torch.no_grad():
        weight[unit] = 0.0
        if how == "bias":
            bias[unit] = -1.0
        elif how == "zero":
            bias[unit] = 0.0
        else:
            weight[unit].view(-1)[feature] = 1.0
            bias[unit] = -cut


def probe_mlp(seed: int) -> tuple[nn.Module, torch.Tensor]:
    """An MLP 6 -> 12 (ReLU) -> 8 (LeakyReLU) -> 3 with known dead units, and x (1100, 6).

    Layer 1: one unit with bias -1, one with pre-activation exactly 0 (both dead), one that fires only on one
    example late in x (alive); layer 2: two units with bias -1 (dead although LeakyReLU passes a small output).
    """
    rng = np.random.default_rng(seed)
    x = torch.as_tensor(rng.normal(size=(1100, 6)), dtype=torch.float32).clamp(-4, 4)
    rare = int(rng.integers(1030, 1100))
    x[rare, 0] = 10.0
    first, second = _linear(6, 12, rng), _linear(12, 8, rng)
    units = rng.permutation(12)
    _kill(first.weight, first.bias, int(units[0]), "bias")
    _kill(first.weight, first.bias, int(units[1]), "zero")
    _kill(first.weight, first.bias, int(units[2]), "rare", feature=0, cut=8.0)
    for unit in rng.choice(8, size=2, replace=False):
        _kill(second.weight, second.bias, int(unit), "bias")
    return nn.Sequential(first, nn.ReLU(), second, nn.LeakyReLU(0.1), _linear(8, 3, rng)), x


def probe_cnn(seed: int) -> tuple[nn.Module, torch.Tensor]:
    """A 1-D CNN (N, 20) -> conv 6 channels (ReLU) -> conv 4 channels (ReLU) -> 3 logits, and x (1100, 20).

    Conv 1: one channel with bias -1 and one with pre-activation 0 (dead), one firing at a single position of
    one late example (alive); conv 2: one channel with bias -1 (dead)."""
    rng = np.random.default_rng(seed)
    x = torch.as_tensor(rng.normal(size=(1100, 20)), dtype=torch.float32).clamp(-4, 4)
    rare = int(rng.integers(1030, 1100))
    x[rare, int(rng.integers(1, 19))] = 10.0
    conv1, conv2 = nn.Conv1d(1, 6, 3, padding=1), nn.Conv1d(6, 4, 3, padding=1)
    with torch.no_grad():
        for conv in (conv1, conv2):
            conv.weight.copy_(torch.as_tensor(rng.normal(size=conv.weight.shape) / np.sqrt(conv.weight[0].numel())))
            conv.bias.copy_(torch.as_tensor(rng.normal(scale=0.1, size=conv.bias.shape)))
        units = rng.permutation(6)
        _kill(conv1.weight, conv1.bias, int(units[0]), "bias")
        _kill(conv1.weight, conv1.bias, int(units[1]), "zero")
        _kill(conv1.weight, conv1.bias, int(units[2]), "rare", feature=1, cut=8.0)  # centre tap of the kernel
        _kill(conv2.weight, conv2.bias, int(rng.integers(4)), "bias")
    model = nn.Sequential(nn.Unflatten(1, (1, 20)), conv1, nn.ReLU(), conv2, nn.ReLU(), nn.Flatten(),
                          _linear(4 * 20, 3, rng))
    return model, x


BORROWS_MONITOR = ("dead_fraction uses course_lib.diagnostics (DeadUnitMonitor), the reference it is compared "
                   "with: count the units yourself, with forward hooks")


def _borrows_monitor(dead_fraction) -> bool:
    """True when dead_fraction is imported (not defined in the notebook) or uses DeadUnitMonitor."""
    imported = getattr(dead_fraction, "__module__", "__main__") != "__main__"
    return imported or _refers_to(dead_fraction, (diagnostics, diagnostics.DeadUnitMonitor), ("DeadUnitMonitor",))


def _hand_built(seed: int, hidden: bool) -> list[tuple[str, nn.Module, torch.Tensor]]:
    """(kind, model, x) of the hand-built models (an MLP; hidden: a CNN too), the global torch RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        return [("MLP", *probe_mlp(seed))] + ([("1-D CNN", *probe_cnn(seed))] if hidden else [])


def judge_dead_fraction(probed: dict, seed: int, hidden: bool = False) -> str | None:
    """probed: {"borrows": _borrows_monitor, "returned": what dead_fraction gave (_returned) on each _hand_built
    model, none when it borrows}. The models, their dead units and the alternatives are re-created here."""
    if probed["borrows"]:
        return BORROWS_MONITOR
    for (kind, model, x), returned in zip(_hand_built(seed, hidden), probed["returned"], strict=True):
        what = f"a hidden test {kind}" if hidden else f"a hand-built {kind} with {len(x)} examples"
        message = _dead_message(_name("dead_fraction", seed, hidden), returned, _measured(model, x), what, hidden)
        if message:
            return message
    return None


def check_dead_fraction(dead_fraction, seed: int, hidden: bool = False) -> None:
    """dead_fraction(model, x) on hand-built models with known dead units (an MLP; hidden: a CNN too)."""
    borrows = _borrows_monitor(dead_fraction)
    returned = [] if borrows else [_returned(dead_fraction, m, x) for _, m, x in _hand_built(seed, hidden)]
    judged.check(judge_dead_fraction, {"borrows": borrows, "returned": returned}, seed=seed, hidden=hidden)


def judge_dead_fraction_trained(probed: dict, seed: int, hidden: bool = False) -> str | None:
    """probed: {"borrows": _borrows_monitor} and, unless it borrows, _probe_run's data with "measured": the
    trained model's _measured over data(seed)'s training signals and "returned": what dead_fraction gave there
    (both None when training failed)."""
    if probed["borrows"]:
        return BORROWS_MONITOR
    name = _name("dead_fraction on your trained model", seed, hidden)
    run = probed["run"]
    message = _config_message(probed["config"])
    if not message and run.outcome.error and not run.stopped:
        message = f"{name}: building or training the model failed: {run.outcome.error}"
    if message:
        return message
    what = f"the {len(data(seed).y_train)} training signals"
    return _dead_message(name, probed["returned"], probed["measured"], what, hidden)


def check_dead_fraction_trained(dead_fraction, build_model, training_config, seed: int,
                                hidden: bool = False) -> None:
    """dead_fraction on the grader's trained model of the student's design, over the training signals."""
    probed = {"borrows": _borrows_monitor(dead_fraction)}
    if not probed["borrows"]:
        found, model = _probe_run(build_model, training_config, seed)
        probed.update(found, measured=None, returned=None)
        run = found["run"]
        if model is not None and not (run.outcome.error and not run.stopped):
            x = torch.as_tensor(data(seed).x_train)
            probed.update(measured=_measured(model, x), returned=_returned(dead_fraction, model, x))
    judged.check(judge_dead_fraction_trained, probed, seed=seed, hidden=hidden)
