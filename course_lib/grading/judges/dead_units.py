"""The host's count of dead units, to judge a student's dead_fraction(model, x), and the counts that plausible
wrong definitions give, to name the mistake.

A unit of an nn.ReLU, nn.LeakyReLU or nn.PReLU module is dead on x when its pre-activation (the module's
input) is > 0 on no example of x; a conv layer's unit is a channel, active if it fires at some position.
The reference is course_lib.diagnostics.DeadUnitMonitor, which never enters an ex06 sandbox.
"""

import copy

import numpy as np
import torch
from torch import nn

from course_lib import diagnostics
from course_lib.grading.judges.tolerance import FRACTION_ATOL
from course_lib.grading.kernel import planted

COUNTED = diagnostics.RELU_FAMILY  # maxout pieces are not counted by ex06's dead_fraction
BATCH_SIZES = (16, 32, 50, 64, 100, 128, 200, 256, 500, 512, 1000, 1024)
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


def reference(model: nn.Module, x: torch.Tensor) -> float:
    """The host's dead fraction of `model` on x (N, ...): 0.0 for a model with no counted units."""
    return diagnostics.dead_fraction(model, x, COUNTED) or 0.0


def _planted_reference(spec: list, x: np.ndarray) -> float:
    return reference(planted.build(spec), torch.as_tensor(x))


def twin(spec: list, x: np.ndarray, rng: np.random.Generator) -> list:
    """A copy of the planted network `spec` with one more dead unit (a live unit, drawn by rng, of a layer
    feeding a counted activation, given bias -1 and no weights). Same shapes, another answer: a constant, or
    any answer worked out from the architecture alone, cannot be right on both."""
    fraction = _planted_reference(spec, x)
    counted = {module.__name__ for module in COUNTED}
    feeding = [i for i, (name, _) in enumerate(spec[:-1]) if name in ("Linear", "Conv1d") and spec[i + 1][0] in counted]
    units = [(i, unit) for i in feeding for unit in range(len(spec[i][1]["bias"]))]
    for pick in rng.permutation(len(units)):
        layer, unit = units[pick]
        other = copy.deepcopy(spec)
        planted.kill(other[layer][1], unit, "bias")
        if _planted_reference(other, x) != fraction:
            return other
    raise ValueError("every counted unit of this planted network is dead already")


def _pre_activations(model: nn.Module, x: torch.Tensor) -> tuple[list, list]:
    """The input and output of each counted module in one forward pass over x: ([z (N, units, ...)], [out])."""
    seen: dict[nn.Module, tuple] = {}

    def record(module, args, output):
        seen[module] = (args[0].detach(), output.detach())

    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, COUNTED)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return [z for z, _ in seen.values()], [out for _, out in seen.values()]


def _per_channel(active: torch.Tensor) -> torch.Tensor:
    """(N, units, ...) bool -> (units,): active at some position of some example."""
    return active.reshape(active.shape[0], active.shape[1], -1).any(dim=2).any(dim=0)


def _silent(units: list) -> float:
    return sum(int((~u).sum()) for u in units) / sum(u.numel() for u in units)


def wrong_fractions(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """What each plausible wrong definition (a key of MISTAKES, "batch N" for each batch size) gives."""
    zs, outs = _pre_activations(model, x)
    if not zs:
        return {}
    found = {
        ">= 0": _silent([_per_channel(z >= 0) for z in zs]),
        "outputs": _silent([_per_channel(o != 0) for o in outs]),
        "positions": _silent([(z > 0).reshape(len(z), -1).any(dim=0) for z in zs]),
        "entries": sum(int((z <= 0).sum()) for z in zs) / sum(z.numel() for z in zs),
    }
    for size in BATCH_SIZES:
        if size < len(x):
            found[f"batch {size}"] = _silent([_per_channel(z[:size] > 0) for z in zs])
    return found


def verdict(name: str, returned, model: nn.Module, x: torch.Tensor, what: str, hidden: bool) -> str | None:
    """None when `returned` (what the student's dead_fraction gave: a float, or an error message string) is
    the reference's count on (model, x); else a message naming the likely mistake."""
    if isinstance(returned, str):
        return f"{name}: dead_fraction {returned} on {what}"
    expected = reference(model, x)
    if abs(returned - expected) <= FRACTION_ATOL:
        return None
    mistakes = dict.fromkeys(MISTAKES["batch" if key.startswith("batch") else key]
                             for key, wrong in wrong_fractions(model, x).items()
                             if abs(returned - wrong) <= FRACTION_ATOL)
    if mistakes:  # two definitions can give the same count on one model: name each
        return f"{name}: dead fraction {returned:.4f} on {what}: " + "; or you ".join(mistakes)
    shown = "" if hidden else f", expected {expected!r}"
    return f"{name}: dead fraction {returned!r} on {what}{shown}"
