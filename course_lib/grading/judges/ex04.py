"""Judges for ex04_leaky_prelu: a PReLU module with per-channel slopes on a chosen axis, and an MLP that learns
them on MNIST-1D.

The task is one torch's built-in does not solve: `PReLU(num_channels, init=0.25, dim=1)` puts the slopes on
axis `dim`, while nn.PReLU and F.prelu always use axis 1. Using them inside one's own module is allowed (the
exercise says so), so nothing here tries to spot them: every check compares what the student's module
computed on the grader's inputs with torch's F.prelu, run here on the host.
"""

import numpy as np
import torch
import torch.nn.functional as F

from course_lib.grading.judges import Judge, Prepared
from course_lib.grading.judges.modules import (
    MALFORMED,
    ModuleMisconception,
    call_text,
    compare_module,
    outcomes_of,
    output_problem,
    readable,
)
from course_lib.grading.judges.training import Hint, accuracy_verdict, heldout_or_public_test
from course_lib.grading.kernel.modules import ModuleCase, ModuleOutcome
from course_lib.grading.kernel.training import TrainingOutcome

# Nothing in course_lib is this exercise's answer: activations.prelu is numpy on axis 1 (what torch's F.prelu
# already does, and the exercise allows that), and course_lib.nn has no PReLU of its own.
WRITTEN: dict[str, list[str]] = {}

INIT = 0.25
INITS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5)


def _at_dim(a: torch.Tensor, x: torch.Tensor, dim: int) -> torch.Tensor:
    """Slopes (C,) shaped to broadcast along axis `dim` of x."""
    shape = [1] * x.dim()
    shape[dim] = -1
    return a.reshape(shape)


def _slopes(p: dict, num_channels: int, init: float, like: torch.Tensor) -> torch.Tensor:
    """The loaded slopes, or (no parameters loaded: the init check) `init` for every channel."""
    return p["weight"] if "weight" in p else torch.full((num_channels,), float(init), dtype=like.dtype)


def reference(x, p, num_channels, init=INIT, dim=1):
    """torch's own PReLU, moved to axis `dim`: the slopes' gradient and x == 0 (the slope) as in torch."""
    return F.prelu(x.movedim(dim, 1), _slopes(p, num_channels, init, x)).movedim(1, dim)


def _wrong(formula):
    """A misconception as a torch function of (x, slopes shaped along `dim`, raw slopes, dim)."""
    def wrong(x, p, num_channels, init=INIT, dim=1):
        a = _slopes(p, num_channels, init, x)
        return formula(x, _at_dim(a, x, dim), a, dim)
    return wrong


# Misconceptions about PReLU's slopes and build_mlp's layers that the module's parameters and layers show
# (not its outputs): whole messages, or the part of one that follows the numbers.
SHARED_SLOPE = "one slope shared across channels"
NOT_A_PARAMETER = ("the slopes must be an nn.Parameter (self.weight = nn.Parameter(...)); a plain tensor attribute "
                   "is not in model.parameters(), so the optimizer never updates it and the slopes do not learn")
SLOPES_NEVER_MOVED = ("the slopes never moved from 0.25 during training: the optimizer does not see them. Are they "
                      "nn.Parameters (listed by model.parameters())?")
INIT_IGNORED = "every slope must start at init"
ACTIVATION_IGNORED = "create activation(width) after each hidden Linear, with the activation passed in"
OTHER_ACTIVATION = "use only the activation passed in, activation(width), as the nonlinearity"
SHARED_INSTANCE = ("one PReLU instance is used by several layers, which ties their slopes together: call "
                   "activation(width) once per layer, for a new module each time")

MISCONCEPTIONS = [
    ModuleMisconception(
        _wrong(lambda x, a, raw, dim: torch.where(x > 0, a * x, x)),
        "the slope was applied to the positive side: PReLU keeps x where x > 0 and multiplies the negative side"),
    ModuleMisconception(
        _wrong(lambda x, a, raw, dim: torch.where(x > 0, x, raw * x)),
        "the slopes acted on the last axis: the channels are axis dim of the input (axis 1 by default, as in "
        "torch; shape the slopes so they broadcast along that axis, not the last axis)"),
    ModuleMisconception(
        _wrong(lambda x, a, raw, dim: torch.where(x > 0, x, _at_dim(raw, x, 1) * x)),
        "the slopes acted on axis 1 whatever dim was: torch's nn.PReLU and F.prelu always use axis 1, so "
        "move the slopes (or the input) to axis dim"),
    ModuleMisconception(
        _wrong(lambda x, a, raw, dim: torch.where(x >= 0, x, a * x)),
        "the gradient at x == 0 was 1 instead of the slope: x == 0 belongs to the negative side (as in torch), "
        "so compare with x > 0, not x >= 0"),
    ModuleMisconception(
        _wrong(lambda x, a, raw, dim: torch.clamp(x, min=0) + a * torch.clamp(x, max=0)),
        "the gradient at x == 0 was 1 + slope: torch.clamp passes the gradient at its boundary, so both "
        "clamps fire at 0; torch's PReLU gives exactly the slope there"),
    ModuleMisconception(
        _wrong(lambda x, a, raw, dim: torch.relu(x) - a * torch.relu(-x)),
        "the gradient at x == 0 was 0 instead of the slope: relu's derivative is 0 at the kink on both "
        "sides of this formula; torch's PReLU gives the slope there"),
]


def _with_zeros(rng, shape: tuple) -> np.ndarray:
    """Normal values (scale 2) with exact zeros, the kink, in at least two places."""
    x = rng.normal(scale=2.0, size=shape)
    flat = x.reshape(-1)
    flat[rng.choice(flat.size, size=max(2, flat.size // 8), replace=False)] = 0.0
    return x


def _torch_seed(rng) -> int:
    return int(rng.integers(2**31))


# ---- the slopes: construction -----------------------------------------------------------------------


def _init_calls(rng) -> list[tuple[tuple, tuple]]:
    """(constructor args, input shape) of the init check: PReLU(C) on (6, C) and PReLU(C', init) on
    (4, C', 3), C and C' in 3..8, init one of INITS (never the default, so ignoring init shows)."""
    c1, c2 = int(rng.integers(3, 9)), int(rng.integers(3, 9))
    return [((c1,), (6, c1)), ((c2, float(rng.choice(INITS))), (4, c2, 3))]


def prepare_init(params: dict) -> Prepared:
    """Each constructor call, run on the grader's input with nothing loaded: the slopes it starts with."""
    rng = np.random.default_rng([params["seed"], 40])
    cases = [ModuleCase(args, _with_zeros(rng, shape).astype(np.float32), {},
                        rng.normal(size=shape).astype(np.float32)) for args, shape in _init_calls(rng)]
    return Prepared({"cases": cases, "torch_seed": _torch_seed(rng)})


def _slopes_problem(outcome: ModuleOutcome, args: tuple, values: bool = True) -> str | None:
    """What is wrong with the slopes PReLU(*args) registered: they must be an nn.Parameter 'weight' of
    shape (channels,), filled with init (checked only if `values`)."""
    channels, call = args[0], call_text("PReLU", args)
    if (outcome.error or "").startswith(("constructing it failed", "it built a", MALFORMED)):
        return f"{call}: {outcome.error}"  # nothing was built, so there are no parameters to look at
    shapes = outcome.param_shapes
    if "weight" not in shapes:
        if not shapes:
            return f"{call} registered no nn.Parameter: {NOT_A_PARAMETER}"
        return f"{call}: name the slopes 'weight' (as torch.nn.PReLU does); found parameters {', '.join(shapes)}"
    if shapes["weight"] in ((), (1,)) and channels > 1:
        return (f"{call}: the slopes have shape {shapes['weight']}: {SHARED_SLOPE}. This exercise wants one slope "
                f"per channel, shape ({channels},), so each channel learns its own")
    if shapes["weight"] != (channels,):
        return f"{call}: the slopes have shape {shapes['weight']}, expected ({channels},)"
    initial = outcome.initial_params.get("weight")
    expected = args[1] if len(args) > 1 else INIT
    if values and (initial is None or initial.shape != (channels,) or not np.allclose(initial, expected)):
        start = np.unique(initial)[:4] if initial is not None else "nothing"
        return f"{call}: the slopes start at {start}; {INIT_IGNORED} = {expected}"
    return None


def decide_init(data, prepared: Prepared, params: dict) -> str | None:
    cases = prepared.given["cases"]
    outcomes = outcomes_of(data, len(cases))
    for case, outcome in zip(cases, outcomes, strict=True):
        message = _slopes_problem(outcome, case.args)
        if message:
            return message
    return compare_module("PReLU", cases, outcomes, reference, MISCONCEPTIONS)


# ---- the module: forward and gradients --------------------------------------------------------------

# (input shape, dim passed or None for the default, dtype); the channels are shape[dim]
VISIBLE = [((8, 5), None, np.float32), ((6, 4, 7), None, np.float32), ((5, 3, 3), None, np.float32),
           ((6, 7, 4), -1, np.float32), ((4, 3, 3), 2, np.float32)]
HIDDEN = [((16, 9), None, np.float32), ((4, 3, 5, 2), None, np.float32), ((3, 6, 11), 1, np.float32),
          ((7, 4, 4), None, np.float64), ((2, 5, 3, 6), -1, np.float32), ((2, 3, 6, 4), 2, np.float64)]


def _prelu_case(rng, shape: tuple, dim: int | None, dtype, hidden: bool) -> ModuleCase:
    channels = shape[1 if dim is None else dim]
    slopes = rng.uniform(0.05, 0.6, size=channels)
    if hidden:
        slopes[0], slopes[-1] = -0.3, 1.5
    return ModuleCase((channels,), _with_zeros(rng, shape).astype(dtype), {"weight": slopes.astype(dtype)},
                      rng.normal(size=shape).astype(dtype), {} if dim is None else {"dim": dim})


def prepare_prelu(params: dict) -> Prepared:
    """Inputs (N, C), (N, C, L), square ones and channels-last ones (dim=-1, dim=2); hidden: 4-D, float64,
    slopes outside [0, 1]. Every input holds exact zeros (the kink), every upstream gradient is random; the
    grader's slopes are loaded into 'weight', so the module's initial value does not matter here."""
    hidden = bool(params.get("hidden"))
    rng = np.random.default_rng([params["seed"], 41])
    cases = [_prelu_case(rng, shape, dim, dtype, hidden) for shape, dim, dtype in VISIBLE + (HIDDEN if hidden else [])]
    return Prepared({"cases": cases, "torch_seed": _torch_seed(rng)})


def decide_prelu(data, prepared: Prepared, params: dict) -> str | None:
    """The slopes' make-up (from the first case) first, then forward and gradients against torch's prelu."""
    cases = prepared.given["cases"]
    outcomes = outcomes_of(data, len(cases))
    message = _slopes_problem(outcomes[0], cases[0].args, values=False)
    return message or compare_module("PReLU", cases, outcomes, reference, MISCONCEPTIONS,
                                     bool(params.get("hidden")))


# ---- the MLP ----------------------------------------------------------------------------------------

EPOCHS, LR = 10, 1e-2
N_HELDOUT = 1000
# Calibrated with tools/pass_rates.py on 60 course secrets: figures in solutions/ex04_leaky_prelu's test_build_mlp.
THRESHOLD = 0.45
HINTS = [
    Hint(lambda o: o.test_accuracy < 0.36,
         "about what a linear model reaches on MNIST-1D (0.32): is the activation applied between the layers?"),
    Hint(lambda o: True, "is every hidden Linear followed by activation(width), and the last Linear left bare?"),
]
ARCHITECTURE = ("build Linear(40, 100), activation(100), Linear(100, 100), activation(100), Linear(100, 10) "
                "as an nn.Sequential")


def _linear(rng, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    return ((rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)).astype(np.float32),
            rng.normal(scale=0.1, size=n_out).astype(np.float32))


def _architecture(rng) -> dict:
    """Grader's weights for build_mlp's network, by parameter name (PReLU slopes differ per channel and
    layer), and a batch to run it on: what only that network, with those weights, outputs."""
    params = {}
    for index, (n_in, n_out) in zip((0, 2, 4), ((40, 100), (100, 100), (100, 10)), strict=True):
        params[f"{index}.weight"], params[f"{index}.bias"] = _linear(rng, n_in, n_out)
    slopes = {f"{i}.weight": rng.uniform(-0.5, 1.0, size=100).astype(np.float32) for i in (1, 3)}
    return {"x": rng.normal(size=(16, 40)).astype(np.float32), "relu_params": params,
            "prelu_params": {**params, **slopes}}


def _expected_output(arch: dict, prelu: bool) -> np.ndarray:
    """The network's output with the grader's weights, computed here (PReLU slopes on axis 1, or ReLU)."""
    p = {k: torch.as_tensor(v) for k, v in arch["prelu_params"].items()}
    h = torch.as_tensor(arch["x"])
    for layer in (0, 2):
        h = F.linear(h, p[f"{layer}.weight"], p[f"{layer}.bias"])
        h = F.prelu(h, p[f"{layer + 1}.weight"]) if prelu else torch.relu(h)
    return F.linear(h, p["4.weight"], p["4.bias"]).numpy().astype(np.float64)


def prepare_mlp(params: dict) -> Prepared:
    """Training under a torch seed from the (secret) seed, predictions on held-out inputs whose labels stay
    here, and the network run with the grader's weights."""
    rng = np.random.default_rng([params["seed"], 42])
    x, y = heldout_or_public_test(params, N_HELDOUT)
    return Prepared({"train_seed": _torch_seed(rng), "heldout": x, **_architecture(rng)}, y)


def _readable_seen(seen) -> bool:
    """What the kernel reads from the trained model (exercises.ex04._inspect_prelus), well-formed."""
    def arrays(d, kind):
        return isinstance(d, dict) and all(isinstance(k, str) and isinstance(v, np.ndarray) and v.ndim == 1
                                           and v.dtype.kind == kind for k, v in d.items())
    return (isinstance(seen, dict) and arrays(seen.get("slopes"), "f") and arrays(seen.get("positive"), "i")
            and isinstance(seen.get("calls"), dict)
            and all(isinstance(k, str) and type(v) is int for k, v in seen["calls"].items())
            and set(seen["positive"]) == set(seen["slopes"]) == set(seen["calls"])
            and isinstance(seen.get("others"), list) and all(isinstance(o, str) for o in seen["others"]))


def _structure_problem(seen: dict) -> str | None:
    """What the layers of the trained model say is wrong with it (read in the kernel)."""
    if not seen["slopes"]:
        return f"build_mlp(PReLU) holds none of your PReLU layers: {ACTIVATION_IGNORED}"
    if seen["others"]:
        return f"build_mlp(PReLU) also holds torch's {', '.join(seen['others'])}: {OTHER_ACTIVATION}"
    if any(n > 1 for n in seen["calls"].values()):
        return SHARED_INSTANCE
    if not all(seen["calls"].values()):
        return "a PReLU layer of the model is never used in its forward pass"
    return None


def _architecture_problem(name: str, outcome, arch: dict, prelu: bool) -> str | None:
    """Is build_mlp's network the one asked for? Its output with the grader's weights, against ours."""
    if not readable(outcome):
        return f"{name}: {MALFORMED}"
    problem = output_problem(outcome, _expected_output(arch, prelu))
    return f"{name} with the grader's weights loaded: {problem}: {ARCHITECTURE}" if problem else None


def _slopes_learned_problem(seen: dict) -> str | None:
    if all(np.allclose(s, INIT, atol=1e-4) for s in seen["slopes"].values()):
        return SLOPES_NEVER_MOVED
    for name, s in seen["slopes"].items():
        units = seen["positive"][name].size
        if s.size != units:
            return (f"the PReLU layer '{name}' has {s.size} slope(s) for {units} channels: {SHARED_SLOPE}. Give it "
                    "one slope per channel, so each channel learns its own")
        if np.ptp(s) < 1e-4:
            return (f"all slopes of the PReLU layer '{name}' learned the same value {s[0]:.3f}: with one "
                    "slope per channel each channel learns its own")
    return None


MLP_KEYS = {"prelu", "seen", "relu", "arch_prelu", "arch_relu"}


def decide_mlp(data, prepared: Prepared, params: dict) -> str | None:
    """data: {"prelu": TrainingOutcome of build_mlp(PReLU), "seen": what the kernel read from that trained
    model (None if training failed), "relu": TrainingOutcome of build_mlp(relu_layer), "arch_prelu" and
    "arch_relu": ModuleOutcome of each network with the grader's weights on the grader's batch}. The accuracy
    is counted here, from the predictions, against held-out labels that never left the host."""
    if not (isinstance(data, dict) and set(data) == MLP_KEYS and isinstance(data["prelu"], TrainingOutcome)
            and isinstance(data["relu"], TrainingOutcome)):
        return f"build_mlp(PReLU): {MALFORMED}"
    outcome, seen, arch = data["prelu"], data["seen"], prepared.given
    if outcome.error:
        return f"build_mlp(PReLU): building or training the model failed: {outcome.error}"
    if not _readable_seen(seen):
        return f"build_mlp(PReLU): {MALFORMED}"
    message = (_structure_problem(seen) or _architecture_problem("build_mlp(PReLU)", data["arch_prelu"], arch, True)
               or accuracy_verdict("build_mlp(PReLU)", outcome, prepared.private, THRESHOLD, HINTS)
               or _slopes_learned_problem(seen))
    if message:
        return message
    relu_error = data["relu"].error or (data["arch_relu"].error if readable(data["arch_relu"]) else MALFORMED)
    if relu_error:
        return (f"build_mlp(activation) failed with a ReLU activation: {relu_error}. It must build the "
                "same network for any activation(width) passed in")
    return _architecture_problem("build_mlp(relu_layer)", data["arch_relu"], arch, False)


JUDGES = {
    "prelu_init": Judge(prepare_init, decide_init),
    "prelu": Judge(prepare_prelu, decide_prelu),
    "prelu_mlp": Judge(prepare_mlp, decide_mlp),
}
