"""Checks for ex04_leaky_prelu: a PReLU module with per-channel slopes, and an MLP that learns them.

The student's PReLU is compared with torch.nn.functional.prelu (the grader's reference, which the student may
not call) on inputs of shape (N, C) and (N, C, L) (hidden: (N, C, H, W), float64, more seeds), forward and
autograd backward, with exact zeros in every input: at x == 0 the gradient is the slope, as in torch.
"""

from functools import cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.data import Split, mnist1d
from course_lib.grading import judged, modules
from course_lib.grading.modules import (
    ModuleCase,
    ModuleMisconception,
    ModuleOutcome,
    call_text,
    compare_module,
    probe_module,
)
from course_lib.grading.training import Hint, TrainingOutcome, accuracy_verdict

INIT = 0.25


def _per_channel(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Slopes (C,) shaped (C, 1, ...) to act on axis 1 of x (N, C, ...)."""
    return a.view(-1, *[1] * (x.dim() - 2))


def _reference(x, p, num_channels):
    return F.prelu(x, p["weight"])


MISCONCEPTIONS = [
    ModuleMisconception(
        lambda x, p, c: torch.where(x > 0, _per_channel(p["weight"], x) * x, x),
        "the slope was applied to the positive side: PReLU keeps x where x > 0 and multiplies the negative side"),
    ModuleMisconception(
        lambda x, p, c: torch.where(x > 0, x, p["weight"] * x),
        "the slopes acted on the last axis: the channels are axis 1 of an (N, C, ...) input, as in torch "
        "(shape the slopes so they broadcast along axis 1, not the last axis)"),
    ModuleMisconception(
        lambda x, p, c: torch.where(x >= 0, x, _per_channel(p["weight"], x) * x),
        "the gradient at x == 0 was 1 instead of the slope: x == 0 belongs to the negative side (as in torch), "
        "so compare with x > 0, not x >= 0"),
    ModuleMisconception(
        lambda x, p, c: torch.clamp(x, min=0) + _per_channel(p["weight"], x) * torch.clamp(x, max=0),
        "the gradient at x == 0 was 1 + slope: torch.clamp passes the gradient at its boundary, so both "
        "clamps fire at 0; torch's PReLU gives exactly the slope there"),
    ModuleMisconception(
        lambda x, p, c: torch.relu(x) - _per_channel(p["weight"], x) * torch.relu(-x),
        "the gradient at x == 0 was 0 instead of the slope: relu's derivative is 0 at the kink on both "
        "sides of this formula; torch's PReLU gives the slope there"),
]

BUILT_IN_PRELU = "the output came from torch's own prelu (nn.PReLU, F.prelu or torch.prelu): write the formula "
BUILT_IN_PRELU += "with torch operations yourself (F.prelu is the reference you are compared with)"


def _prelu_cases(seed: int, hidden: bool) -> list[ModuleCase]:
    """Inputs (N, C), (N, C, L) with L != C and a square (N, C, C); hidden: 4-D, float64, slopes outside
    [0, 1]. Every input holds exact zeros (the kink), every upstream gradient is random."""
    rng = np.random.default_rng(seed)
    shapes = [(8, 5), (6, 4, 7), (5, 3, 3)]
    dtypes = [np.float32] * 3
    if hidden:
        shapes += [(16, 9), (4, 3, 5, 2), (3, 6, 11), (7, 4, 4)]
        dtypes += [np.float32, np.float32, np.float32, np.float64]
    cases = []
    for shape, dtype in zip(shapes, dtypes, strict=True):
        x = rng.normal(scale=2.0, size=shape)
        flat = x.reshape(-1)
        flat[rng.choice(flat.size, size=max(2, flat.size // 8), replace=False)] = 0.0
        channels = shape[1]
        slopes = rng.uniform(0.05, 0.6, size=channels)
        if hidden:
            slopes[0], slopes[-1] = -0.3, 1.5
        cases.append(ModuleCase((channels,), x.astype(dtype), {"weight": slopes.astype(dtype)},
                                rng.normal(size=shape).astype(dtype)))
    return cases


def _slopes_probe(PReLU, seed: int, args: tuple) -> ModuleOutcome:
    """PReLU(*args) constructed under the grader's seed and run on zeros (nothing loaded): what it registers."""
    x = np.zeros((1, args[0]), np.float32)
    return probe_module(PReLU, ModuleCase(args, x, {}, x), seed)


def _slopes_problem(outcome: ModuleOutcome, args: tuple, values: bool = True) -> str | None:
    """What is wrong with the slopes of PReLU(*args) (from `_slopes_probe`): they must be an nn.Parameter
    'weight' of shape (channels,), filled with init (checked only if `values`)."""
    channels, call = args[0], call_text("PReLU", args)
    if outcome.error and not outcome.param_shapes:
        return f"{call}: {outcome.error}"
    shapes = outcome.param_shapes
    if "weight" not in shapes:
        if not shapes:
            return (f"{call} registered no nn.Parameter: the slopes must be an nn.Parameter (self.weight = "
                    "nn.Parameter(...)); a plain tensor attribute is not in model.parameters(), so the optimizer "
                    "never updates it and the slopes do not learn")
        return f"{call}: name the slopes 'weight' (as torch.nn.PReLU does); found parameters {', '.join(shapes)}"
    if shapes["weight"] in ((), (1,)) and channels > 1:
        return (f"{call}: the slopes have shape {shapes['weight']}: one slope shared across channels. This "
                f"exercise wants one slope per channel, shape ({channels},), so each channel learns its own")
    if shapes["weight"] != (channels,):
        return f"{call}: the slopes have shape {shapes['weight']}, expected ({channels},)"
    expected = args[1] if len(args) > 1 else INIT
    if values and not np.allclose(outcome.initial_params["weight"], expected):
        return (f"{call}: the slopes start at {np.unique(outcome.initial_params['weight'])[:4]}; "
                f"every slope must start at init = {expected}")
    return None


def _init_args(seed: int) -> list[tuple]:
    """The constructor calls of the init check: PReLU(C) and PReLU(C', init), C and C' in 3..8."""
    rng = np.random.default_rng(seed)
    return [(int(rng.integers(3, 9)),), (int(rng.integers(3, 9)), round(float(rng.uniform(0.05, 0.5)), 2))]


def judge_prelu_init(data: list[ModuleOutcome], seed: int) -> str | None:
    """data: the `_slopes_probe` ModuleOutcome of each constructor call in _init_args(seed)."""
    for args, outcome in zip(_init_args(seed), data, strict=True):
        message = _slopes_problem(outcome, args)
        if message:
            return message
    return None


def check_prelu_init(PReLU, seed: int) -> None:
    """Construction only: the slopes are a per-channel nn.Parameter starting at `init` (default 0.25)."""
    judged.check(judge_prelu_init, [_slopes_probe(PReLU, seed, args) for args in _init_args(seed)], seed=seed)


SLOPES_ARGS = (5,)


def judge_prelu(data: dict, seed: int, hidden: bool = False) -> str | None:
    """data: {"slopes": the `_slopes_probe` of PReLU(5), "probes": a ModuleOutcome per _prelu_cases(seed,
    hidden)}. The slopes' make-up first, then torch's own prelu, then forward and gradients against F.prelu."""
    message = _slopes_problem(data["slopes"], SLOPES_ARGS, values=False)
    if message:
        return message
    if any(_uses_builtin(o) for o in data["probes"]):
        return f"PReLU: {BUILT_IN_PRELU}"
    return compare_module("PReLU", _prelu_cases(seed, hidden), data["probes"], _reference, MISCONCEPTIONS, hidden)


def check_prelu(PReLU, seed: int, hidden: bool = False) -> None:
    """Forward and autograd gradients (input and slopes) against F.prelu with the grader's slopes (loaded into
    the module's 'weight', so its initial value does not matter here)."""
    data = {"slopes": _slopes_probe(PReLU, seed, SLOPES_ARGS),
            "probes": [probe_module(PReLU, c, seed) for c in _prelu_cases(seed, hidden)]}
    judged.check(judge_prelu, data, seed=seed, hidden=hidden)


def _uses_builtin(outcome: ModuleOutcome) -> bool:
    return (any("prelu" in op.lower() for op in outcome.operations)
            or any(c.startswith("torch.") and c.endswith(".PReLU") for c in outcome.classes))


# ---- the MLP ----------------------------------------------------------------------------------------

EPOCHS, LR = 10, 1e-2
# The solution's PReLU MLP (two hidden layers of 100) over training seeds 0-19, 10 epochs of Adam at lr 1e-2 on
# MNIST-1D (4000 samples): test accuracy 0.522-0.586, mean 0.556 (ReLU, same budget: 0.527-0.572, mean 0.550;
# PReLU ahead on 12 of 20 seeds, so the test does not ask PReLU to win); a linear model reaches 0.28-0.32.
# The threshold 0.45 passes 20/20, and the hidden seed 7412 (0.544); the slopes moved on every seed.
THRESHOLD = 0.45
MAX_SECONDS = 15.0
HINTS = [
    Hint(lambda o: o.test_accuracy < 0.36,
         "about what a linear model reaches on MNIST-1D (0.32): is the activation applied between the layers?"),
    Hint(lambda o: True, "is every hidden Linear followed by activation(width), and the last Linear left bare?"),
]
OTHER_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh)


@cache
def _data() -> Split:
    return mnist1d(num_samples=4000)


def relu_layer(num_channels: int, init: float = INIT) -> nn.Module:
    """What the grader passes as `activation` for the ReLU baseline."""
    return nn.ReLU()


def _inspect_prelus(PReLU, x_train: torch.Tensor):
    """What the grader reads from the trained model: its PReLU layers' slopes, how often each instance ran in
    one forward pass, on how many training examples each of its units was positive (somewhere), and the other
    activations it holds."""
    def inspect(model: nn.Module) -> dict:
        prelus = {name: m for name, m in model.named_modules() if isinstance(m, PReLU)}
        inputs = modules.record_forward(model, x_train, prelus, "input")
        positive = {}
        for name, calls in inputs.items():
            z = calls[0].reshape(*calls[0].shape[:2], -1) if calls else np.zeros((1, 0, 1))  # (N, C, positions)
            positive[name] = (z > 0).any(axis=2).sum(axis=0).astype(np.int64)
        return {"slopes": {name: m.weight.detach().numpy().astype(np.float64).copy() for name, m in prelus.items()},
                "calls": {name: len(calls) for name, calls in inputs.items()},
                "positive": positive,
                "others": sorted({type(m).__name__ for m in model.modules() if isinstance(m, OTHER_ACTIVATIONS)})}
    return inspect


def _model_problem(outcome: TrainingOutcome, seen: dict | None) -> str | None:
    if outcome.error:
        return f"build_mlp(PReLU): building or training the model failed: {outcome.error}"
    if not seen["slopes"]:
        return ("build_mlp(PReLU) holds none of your PReLU layers: create activation(width) after each hidden "
                "Linear, with the activation passed in")
    if seen["others"]:
        return (f"build_mlp(PReLU) also holds torch's {', '.join(seen['others'])}: use only the activation "
                "passed in, activation(width), as the nonlinearity")
    if any(n > 1 for n in seen["calls"].values()):
        return ("one PReLU instance is used by several layers, which ties their slopes together: call "
                "activation(width) once per layer, for a new module each time")
    if not all(seen["calls"].values()):
        return "a PReLU layer of the model is never used in its forward pass"
    message = accuracy_verdict("build_mlp(PReLU)", outcome, _data().y_test, THRESHOLD, HINTS, MAX_SECONDS)
    if message:
        return message
    if all(np.allclose(s, INIT, atol=1e-4) for s in seen["slopes"].values()):
        return ("the slopes never moved from 0.25 during training: the optimizer does not see them. Are they "
                "nn.Parameters (listed by model.parameters())?")
    for name, s in seen["slopes"].items():
        units = seen["positive"][name].size
        if s.size != units:
            return (f"the PReLU layer '{name}' has {s.size} slope(s) for {units} channels: one slope shared across "
                    "channels. Give it one slope per channel, so each channel learns its own")
        if np.ptp(s) < 1e-4:
            return (f"all slopes of the PReLU layer '{name}' learned the same value {s[0]:.3f}: with one "
                    "slope per channel each channel learns its own")
    return None


def judge_prelu_mlp(data: dict, seed: int, hidden: bool = False) -> str | None:
    """data: {"prelu": the TrainingOutcome of build_mlp(PReLU), "seen": what `_inspect_prelus` read from that
    trained model (None if training failed), "relu": the TrainingOutcome of build_mlp(relu_layer)}. The
    accuracy is counted from the predictions against MNIST-1D's test labels, re-created here."""
    message = _model_problem(data["prelu"], data["seen"])
    if message:
        return message
    if data["relu"].error:
        return (f"build_mlp(activation) failed with a ReLU activation: {data['relu'].error}. It must build the "
                "same network for any activation(width) passed in")
    return None


def _report(outcome: TrainingOutcome, seen: dict, relu: TrainingOutcome) -> str:
    lines = [f"PReLU MLP: test accuracy {outcome.test_accuracy:.3f}"]
    for name, s in seen["slopes"].items():
        positive = seen["positive"][name]
        lines.append(f"  layer '{name}': slopes from {s.min():.3f} to {s.max():.3f} (mean {s.mean():.3f}); "
                     f"{int((positive == 0).sum())} of {positive.size} units never positive on the training set")
    if relu.error is None:
        dead = "" if relu.dead_fraction is None else f"; dead units {100 * relu.dead_fraction:.1f}%"
        lines.append(f"ReLU MLP, same architecture and budget: test accuracy {relu.test_accuracy:.3f}{dead}")
    return "\n".join(lines)


def check_prelu_mlp(build_mlp, PReLU, seed: int, hidden: bool = False) -> None:
    """Train build_mlp(PReLU) and build_mlp(relu_layer) with the grader's seed, data and budget.

    Passes when the PReLU model reaches THRESHOLD test accuracy, uses its own PReLU instance in every hidden
    layer and its slopes learned (moved from 0.25, different per channel), and the ReLU model trains. PReLU need
    not beat ReLU: the test prints both accuracies and dead-unit counts for the written answer."""
    data = _data()
    outcome, seen = modules.train_and_inspect(lambda: build_mlp(PReLU), data, EPOCHS, LR, seed,
                                              _inspect_prelus(PReLU, torch.as_tensor(data.x_train)))
    relu = modules.train_and_inspect(lambda: build_mlp(relu_layer), data, EPOCHS, LR, seed, lambda m: None,
                                     measure_dead=True)[0]
    judged.check(judge_prelu_mlp, {"prelu": outcome, "seen": seen, "relu": relu}, seed=seed, hidden=hidden)
    print(_report(outcome, seen, relu))
