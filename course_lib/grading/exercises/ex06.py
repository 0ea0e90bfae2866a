"""Checks for ex06_capstone: a network for MNIST-1D within a CPU budget, and its dead-unit fraction.

Every training result comes from `course_lib.grading.budget.train_on_budget`: the student's `build_model` and
`training_config` are called here, with the grader's seed and the grader's MNIST-1D draw, on one thread, and
the time is CPU seconds. One run per (seed, configuration, built model) is kept in this module, so the visible
test cells (and the hidden ones) share one training instead of training once per cell.
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
from course_lib.grading.budget import BudgetedRun, ConfigLimits, budget_verdict, config_verdict, train_on_budget
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

ACTIVE_LAYERS = (nn.ReLU, nn.LeakyReLU, nn.PReLU)

_RUNS: dict[int, tuple[tuple, BudgetedRun]] = {}


def data(seed: int) -> Split:
    """The grader's MNIST-1D draw for `seed`: x (N, 40) float32 signals, y (N,) labels 0..9, no validation."""
    return mnist1d(num_samples=NUM_SAMPLES, seed=seed, val=0)


# ---------------------------------------------------------------- the design: config, shapes, logits


def _config(training_config) -> dict:
    """training_config() as a dict copy; AssertionError with the problems when it is outside LIMITS."""
    try:
        config = training_config()
    except Exception as err:  # noqa: BLE001 - a student's bug is a failed test, not a crash of the grader
        raise AssertionError(f"training_config() raised {type(err).__name__}: {err}") from None
    message = config_verdict("training_config()", config, LIMITS)
    if message:
        raise AssertionError(f"{message}. Allowed: {LIMITS.describe()}")
    return dict(config)


def _looks_like_probabilities(out: torch.Tensor) -> bool:
    """True when every row is non-negative and sums to 1: a softmax output, not logits."""
    return bool((out >= 0).all() and torch.allclose(out.sum(dim=1), torch.ones(len(out)), atol=1e-4))


SOFTMAX_OUTPUT = ("the model's outputs are probabilities (every row sums to 1): return the logits of the last "
                  "Linear layer; cross-entropy applies log-softmax itself, and a softmax before it squashes "
                  "the gradients")


def check_design(build_model, training_config) -> None:
    """The config is within the limits; the model maps a (N, 40) batch to (N, 10) float logits."""
    _config(training_config)
    if _refers_to(build_model, (course_cnn.cnn1d, course_cnn), ("cnn1d",)):
        raise AssertionError("build_model uses course_lib.cnn.cnn1d, the reference CNN of notebook 06: design "
                             "the layers yourself with torch.nn")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        try:
            model = build_model()
        except Exception as err:  # noqa: BLE001
            raise AssertionError(f"build_model() raised {type(err).__name__}: {err}") from None
        if not isinstance(model, nn.Module):
            raise AssertionError(f"build_model() returned a {type(model).__name__}, not a torch nn.Module")
        x = torch.randn(7, 40)
        try:
            with torch.no_grad():
                out = model(x)
        except Exception as err:  # noqa: BLE001
            raise AssertionError(f"the model fails on a batch of MNIST-1D signals, shape (7, 40): "
                                 f"{type(err).__name__}: {err}. Check the input size (40 features) and, after "
                                 "convolutions, the flattened size the read-out Linear layer expects") from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (7, 10):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise AssertionError(f"the model maps a (7, 40) batch to {shape}; expected (7, 10): one logit per class")
    if _looks_like_probabilities(out):
        raise AssertionError(SOFTMAX_OUTPUT)


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


def _run(build_model, training_config, seed: int) -> BudgetedRun:
    """The grader's training run of the student's design for `seed` (trained once, then kept)."""
    config = _config(training_config)
    key = _fingerprint(build_model, config, seed)
    if key is not None and seed in _RUNS and _RUNS[seed][0] == key:
        return _RUNS[seed][1]
    run = train_on_budget(build_model, data(seed), config, seed, stop_after_s=STOP_AFTER_S)
    if key is not None:
        _RUNS[seed] = (key, run)
    return run


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


def _stopped(run: BudgetedRun) -> str:
    return (f"training was stopped after {run.cpu_seconds:.1f} CPU seconds, twice the {BUDGET_S:g} s budget: "
            f"{OVER_BUDGET}")


def _outputs_probabilities(run: BudgetedRun) -> bool:
    """True when the trained model's outputs on a few signals are probabilities (a softmax at the end)."""
    if run.model is None:
        return False
    try:
        with torch.no_grad():
            out = run.model(torch.randn(16, 40, generator=torch.Generator().manual_seed(0)))
    except Exception:  # noqa: BLE001 - no diagnosis; the accuracy message stands alone
        return False
    return isinstance(out, torch.Tensor) and out.ndim == 2 and _looks_like_probabilities(out)


def _accuracy_message(name: str, run: BudgetedRun, threshold: float, hints=HINTS) -> str | None:
    if run.stopped:
        return f"{name}: {_stopped(run)}"
    if not run.outcome.error and _outputs_probabilities(run):
        hints = (Hint(lambda o: True, SOFTMAX_OUTPUT),)
    return accuracy_verdict(name, run.outcome, threshold, hints)


def _name(what: str, seed: int, hidden: bool) -> str:
    return f"{what} (hidden test)" if hidden else f"{what} (seed {seed})"


def check_accuracy(build_model, training_config, seed: int, hidden: bool = False) -> None:
    """The grader's training of the design reaches THRESHOLD_A test accuracy."""
    message = _accuracy_message(_name("MNIST-1D", seed, hidden), _run(build_model, training_config, seed),
                                THRESHOLD_A)
    if message:
        raise AssertionError(message)


def check_budget(build_model, training_config, seed: int) -> None:
    """The design reaches THRESHOLD_A within BUDGET_S CPU seconds."""
    run = _run(build_model, training_config, seed)
    name = _name("CPU budget", seed, False)
    message = budget_verdict(name, run, BUDGET_S, OVER_BUDGET) or _accuracy_message(name, run, THRESHOLD_A)
    if message:
        raise AssertionError(message)


def check_bonus(build_model, training_config, seed: int, hidden: bool = False) -> None:
    """The bonus tier: THRESHOLD_B test accuracy within BUDGET_S CPU seconds."""
    run = _run(build_model, training_config, seed)
    name = _name("bonus tier", seed, hidden)
    bonus_hint = Hint(lambda o: True, "an MLP stops near 0.6 on MNIST-1D; a small 1-D CNN (weights shared "
                                      "along the signal) gets there within the budget")
    message = (budget_verdict(name, run, BUDGET_S, OVER_BUDGET)
               or _accuracy_message(name, run, THRESHOLD_B, (*HINTS[:2], bonus_hint)))
    if message:
        raise AssertionError(message)


def measure(build_model, training_config, seed: int) -> None:
    """Print what the grader measures for the design (the numbers for the report); problems are printed too."""
    try:
        run = _run(build_model, training_config, seed)
    except AssertionError as err:
        print(err)
        return
    d, o = data(seed), run.outcome
    print(f"MNIST-1D, grader's draw {seed}: {len(d.y_train)} training and {len(d.y_test)} test signals")
    if o.error:
        print(f"training failed: {_stopped(run) if run.stopped else o.error}")
        return
    dead = _reference(run.model, torch.as_tensor(d.x_train))
    print(f"test accuracy  {o.test_accuracy:.3f}   (required {THRESHOLD_A:.2f}, bonus {THRESHOLD_B:.2f})")
    print(f"CPU seconds    {run.cpu_seconds:.1f}     (budget {BUDGET_S:g} s on one thread)")
    print(f"dead fraction  {dead:.3f}   (ReLU-family units silent on every training signal)")
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


def _reference(model: nn.Module, x: torch.Tensor) -> float:
    """DeadUnitMonitor's dead fraction over x, counting ReLU, LeakyReLU and PReLU layers (not maxout pieces);
    0.0 for a model without such a layer."""
    if not any(isinstance(m, ACTIVE_LAYERS) for m in model.modules()):
        return 0.0
    with diagnostics.DeadUnitMonitor(model) as monitor:
        monitor.observe(x)
        dead = [d for name, d in monitor.dead_units().items() if isinstance(monitor.layers[name], ACTIVE_LAYERS)]
    return sum(int(d.sum()) for d in dead) / sum(d.numel() for d in dead)


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


def _dead_message(name: str, dead_fraction, model: nn.Module, x: torch.Tensor, what: str, hidden: bool) -> str | None:
    """None when dead_fraction(model, x) matches DeadUnitMonitor; else a message naming the likely mistake."""
    try:
        expected = _reference(model, x)
    except ValueError as err:  # the monitor refuses an activation instance shared between layers
        return f"{name}: the dead fraction of {what} cannot be measured: {err}"
    try:
        value = dead_fraction(copy.deepcopy(model), x.clone())
    except Exception as err:  # noqa: BLE001
        return f"{name}: dead_fraction raised {type(err).__name__}: {err} on {what}"
    got = _as_number(value)
    if got is None:
        return f"{name}: dead_fraction returned a {type(value).__name__}, not a number"
    if abs(got - expected) <= 1e-9:
        return None
    for key, alternative in _alternatives(model, x).items():
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


def _refuse_reference(dead_fraction) -> None:
    imported = getattr(dead_fraction, "__module__", "__main__") != "__main__"
    if imported or _refers_to(dead_fraction, (diagnostics, diagnostics.DeadUnitMonitor), ("DeadUnitMonitor",)):
        raise AssertionError("dead_fraction uses course_lib.diagnostics (DeadUnitMonitor), the reference it is "
                             "compared with: count the units yourself, with forward hooks")


def check_dead_fraction(dead_fraction, seed: int, hidden: bool = False) -> None:
    """dead_fraction(model, x) on hand-built models with known dead units (an MLP; hidden: a CNN too)."""
    _refuse_reference(dead_fraction)
    probes = [("MLP", probe_mlp(seed))] + ([("1-D CNN", probe_cnn(seed))] if hidden else [])
    for kind, (model, x) in probes:
        what = f"a hidden test {kind}" if hidden else f"a hand-built {kind} with {len(x)} examples"
        message = _dead_message(_name("dead_fraction", seed, hidden), dead_fraction, model, x, what, hidden)
        if message:
            raise AssertionError(message)


def check_dead_fraction_trained(dead_fraction, build_model, training_config, seed: int,
                                hidden: bool = False) -> None:
    """dead_fraction on the grader's trained model of the student's design, over the training signals."""
    _refuse_reference(dead_fraction)
    run = _run(build_model, training_config, seed)
    name = _name("dead_fraction on your trained model", seed, hidden)
    if run.model is None or (run.outcome.error and not run.stopped):
        raise AssertionError(f"{name}: building or training the model failed: {run.outcome.error}")
    x = torch.as_tensor(data(seed).x_train)
    message = _dead_message(name, dead_fraction, run.model, x, f"the {len(x)} training signals", hidden)
    if message:
        raise AssertionError(message)
