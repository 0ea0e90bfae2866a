"""Checks for ex05_maxout: maxout forward/backward in numpy, a gradient check of it, a torch Maxout layer
and an MLP of them.

Conventions (course_lib.activations.maxout, the reference): the last axis holds units * k values and
z[..., j*k:(j+1)*k] are unit j's k pieces; the gradient goes only to the winning piece, on ties the first.
"""

from collections.abc import Callable
from functools import cache

import numpy as np
import torch
from torch import nn

from course_lib import activations as reference
from course_lib import nn as course_nn
from course_lib.data import Split, mnist1d
from course_lib.grading import judged, modules, probes
from course_lib.grading.modules import (
    ModuleCase,
    ModuleMisconception,
    ModuleOutcome,
    call_text,
    compare_module,
    probe_module,
)
from course_lib.grading.probes import Outcome
from course_lib.grading.training import Hint, accuracy_verdict
from course_lib.grading.verdict import Misconception, elementwise_verdict

# ---- numpy forward and backward ---------------------------------------------------------------------


def _borrowed(fn) -> str | None:
    """fn's dotted name if it is course_lib's own (the reference, imported instead of written), else None."""
    names = judged.borrowed(fn)
    return f"{fn.__module__}.{names[0]}" if names else None


def _borrowed_message(name: str, dotted: str | None) -> str | None:
    if dotted:
        return f"{name} is {dotted}: write your own; course_lib's is the reference you are compared with"
    return None


def _ks(hidden: bool) -> tuple[int, ...]:
    return (2, 3, 1, 4) if hidden else (2, 3)


def _pieces(z: np.ndarray, k: int) -> np.ndarray:
    return z.reshape(*z.shape[:-1], z.shape[-1] // k, k)


def _strided(z: np.ndarray, k: int) -> np.ndarray:
    """The wrong grouping z[..., j::units]: piece i of unit j is z[..., i*units + j]."""
    return np.swapaxes(z.reshape(*z.shape[:-1], k, z.shape[-1] // k), -1, -2)


def _maxout_inputs(seed: int, k: int, hidden: bool) -> list[np.ndarray]:
    """z of shapes (N, units*k), (N, L, units*k) and (units*k,), float64 and float32, with exact ties: a unit
    whose k pieces are all equal and units whose first two pieces share the maximum."""
    rng = np.random.default_rng([seed, k])
    shapes = [(6, 4 * k), (2, 3, 3 * k), (5 * k,)]
    if hidden:
        shapes += [(9, 7 * k), (2, 2, 2, 2 * k), (1, k)]
    arrays = []
    for dtype in (np.float64, np.float32):
        for shape in shapes:
            z = rng.normal(scale=2.0, size=shape)
            pieces = _pieces(z, k).reshape(-1, k)
            pieces[0] = pieces[0, 0]  # all k pieces tie
            if len(pieces) > 1 and k > 1:
                top = pieces[1:].max(axis=1) + 0.5
                pieces[1::2, 0], pieces[1::2, 1] = top[::2], top[::2]  # the first two pieces tie at the top
            arrays.append(pieces.reshape(shape).astype(dtype))
    return arrays


def _forward_out(forward):
    def out(z, k):
        result = forward(z, k)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise TypeError(f"maxout_forward returned a {type(result).__name__}: return the pair (out, cache)")
        return result[0]
    return out


def _forward_misconceptions(k: int) -> list[Misconception]:
    return [
        Misconception(lambda z: _strided(z, k).max(axis=-1),
                      "the pieces were grouped with stride (z[..., j::units]): unit j's pieces are the contiguous "
                      "block z[..., j*k:(j+1)*k]"),
        Misconception(lambda z: _pieces(z, k).max(axis=-2),
                      "the max was taken over the wrong axis (over the units, not over each unit's k pieces): "
                      "the output should have shape (..., units)"),
        Misconception(lambda z: _pieces(z, k).min(axis=-1), "took the min of the pieces, not the max"),
    ]


def _per_k_verdict(name: str, outcomes_by_k: list[list[Outcome]], seed: int, hidden: bool,
                   expected: Callable[[np.ndarray, int], np.ndarray],
                   misconceptions: Callable[[int], list[Misconception]]) -> str | None:
    """The first failing k's elementwise verdict: outcomes_by_k[i] holds one Outcome per _maxout_inputs(seed,
    k, hidden) for the i-th k of _ks(hidden), judged against expected(z, k); `name` is formatted with k."""
    for k, outcomes in zip(_ks(hidden), outcomes_by_k, strict=True):
        inputs = _maxout_inputs(seed, k, hidden)
        message = elementwise_verdict(name.format(k=k), outcomes, inputs,
                                      [np.asarray(expected(z, k), dtype=np.float64) for z in inputs],
                                      misconceptions(k), hidden)
        if message:
            return message
    return None


def _indivisible(seed: int, hidden: bool) -> list[tuple[np.ndarray, int]]:
    """(z, k) pairs where k does not divide z's width: maxout_forward must raise ValueError."""
    return [(np.random.default_rng(seed).normal(size=(3, width)), k)
            for width, k in (((7, 2), (10, 3), (9, 4)) if hidden else ((7, 2),))]


def judge_maxout_forward(data: dict, seed: int, hidden: bool = False) -> str | None:
    """data: {"borrowed": `_borrowed(maxout_forward)`, "outcomes": for each k of _ks(hidden), an Outcome of the
    forward's out per _maxout_inputs(seed, k, hidden), "indivisible": an Outcome per _indivisible(seed, hidden)}."""
    message = _borrowed_message("maxout_forward", data["borrowed"]) or _per_k_verdict(
        "maxout_forward(z, k={k})", data["outcomes"], seed, hidden, reference.maxout, _forward_misconceptions)
    if message:
        return message
    for (z, k), outcome in zip(_indivisible(seed, hidden), data["indivisible"], strict=True):
        if not (outcome.error or "").startswith("ValueError"):
            got = f"raised {outcome.error}" if outcome.error else "returned without an error"
            width = z.shape[-1]
            return (f"maxout_forward(z, k={k}) on z of width {width} {got}: {width} is not divisible by k={k}, so "
                    "the last pieces belong to no unit; raise ValueError (with a message saying so)")
    return None


def check_maxout_forward(maxout_forward, seed: int, hidden: bool = False) -> None:
    """Values, shapes and dtypes for k = 1..4 on the grader's inputs, and ValueError when k does not divide
    the width."""
    forward = _forward_out(maxout_forward)
    data = {"borrowed": _borrowed(maxout_forward),
            "outcomes": [probes.elementwise(forward, _maxout_inputs(seed, k, hidden), k) for k in _ks(hidden)],
            "indivisible": [probes.call(forward, z, k) for z, k in _indivisible(seed, hidden)]}
    judged.check(judge_maxout_forward, data, seed=seed, hidden=hidden)


def _upstream(z: np.ndarray, k: int) -> np.ndarray:
    """The grader's upstream gradient for z: random, fixed by z's shape and k, in z's dtype."""
    shape = (*z.shape[:-1], z.shape[-1] // k)
    return np.random.default_rng([k, *shape, 5]).normal(size=shape).astype(z.dtype)


def _spread(grad_pieces: np.ndarray, z: np.ndarray) -> np.ndarray:
    return grad_pieces.reshape(z.shape)


def _backward_misconceptions(k: int) -> list[Misconception]:
    def every_piece(z):
        return np.repeat(_upstream(z, k), k, axis=-1)

    def strided(z):
        piece = _strided(z, k)
        winners = piece == piece.max(axis=-1, keepdims=True)
        first = winners & (np.cumsum(winners, axis=-1) == 1)
        return np.swapaxes(first * _upstream(z, k)[..., None], -1, -2).reshape(z.shape)

    def split_ties(z):
        piece = _pieces(z, k)
        winners = piece == piece.max(axis=-1, keepdims=True)
        return _spread(winners * _upstream(z, k)[..., None] / winners.sum(axis=-1, keepdims=True), z)

    def last_tie(z):
        piece = _pieces(z, k)
        last = k - 1 - piece[..., ::-1].argmax(axis=-1)
        grad = np.zeros_like(piece)
        np.put_along_axis(grad, last[..., None], _upstream(z, k)[..., None], axis=-1)
        return _spread(grad, z)

    def every_tie(z):
        piece = _pieces(z, k)
        return _spread((piece == piece.max(axis=-1, keepdims=True)) * _upstream(z, k)[..., None], z)

    def no_dout(z):
        return reference.maxout_grad(z, k)

    return [
        Misconception(every_piece, "the gradient reached every maxout piece, not only the winner: the max passes "
                                   "dout to the piece that won and 0 to the others"),
        Misconception(strided, "the pieces were grouped with stride (z[..., j::units]): unit j's pieces are the "
                               "contiguous block z[..., j*k:(j+1)*k]"),
        Misconception(split_ties, "ties split the gradient between the tied pieces: route all of dout to the first "
                                  "maximum (as np.argmax picks it), never split"),
        Misconception(every_tie, "on ties every tied piece got the whole dout: route it to the first maximum "
                                 "only (as np.argmax picks it), or the gradient counts twice"),
        Misconception(last_tie, "on ties the gradient went to the last maximum: route it to the first (as "
                                "np.argmax picks it)"),
        Misconception(no_dout, "the winner got 1 instead of dout: multiply by the upstream gradient"),
    ]


def judge_maxout_backward(data: dict, seed: int, hidden: bool = False) -> str | None:
    """data: {"borrowed": `_borrowed(maxout_backward)`, "outcomes": for each k of _ks(hidden), an Outcome of
    maxout_backward(_upstream(z, k), cache of the student's forward) per z of _maxout_inputs(seed, k, hidden)}."""
    return _borrowed_message("maxout_backward", data["borrowed"]) or _per_k_verdict(
        "maxout_backward (k={k})", data["outcomes"], seed, hidden,
        lambda z, k: reference.maxout_grad(z, k, _upstream(z, k)), _backward_misconceptions)


def check_maxout_backward(maxout_forward, maxout_backward, seed: int, hidden: bool = False) -> None:
    """dz = maxout_backward(dout, cache) with the cache of the student's own forward, on inputs with ties."""
    def backward(z, k):
        result = maxout_forward(z, k)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise TypeError(f"maxout_forward returned a {type(result).__name__}: return the pair (out, cache)")
        return maxout_backward(_upstream(z, k), result[1])

    data = {"borrowed": _borrowed(maxout_backward),
            "outcomes": [probes.elementwise(backward, _maxout_inputs(seed, k, hidden), k) for k in _ks(hidden)]}
    judged.check(judge_maxout_backward, data, seed=seed, hidden=hidden)


# ---- the gradient check -----------------------------------------------------------------------------

def _every_piece_backward(dout, cache):
    z, k = cache
    return np.repeat(dout, k, axis=-1).astype(z.dtype)


def _no_dout_backward(dout, cache):
    z, k = cache
    return reference.maxout_grad(z, k)


def _half_backward(dout, cache):
    return 0.5 * reference.maxout_backward(dout, cache)


WRONG_BACKWARDS = {
    "sends the gradient to every piece": _every_piece_backward,
    "ignores dout (the winner gets 1)": _no_dout_backward,
    "returns half the gradient": _half_backward,
}


def _separated(seed: int, shape: tuple, k: int) -> np.ndarray:
    """float64 z whose winning piece leads each unit by at least 1, so no step of 1e-5 changes a winner."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=shape)
    pieces = _pieces(z, k)
    np.put_along_axis(pieces, pieces.argmax(axis=-1)[..., None],
                      pieces.max(axis=-1, keepdims=True) + 1.0, axis=-1)
    return pieces.reshape(shape)


def _grad_check_setups(seed: int, hidden: bool) -> list[tuple[np.ndarray, int, np.ndarray, str]]:
    """(z, k, dout, where): the problems the student's gradient check is given, and how a message names each."""
    setups = [((4, 6), 2), ((3, 9), 3)] + ([((2, 3, 8), 4), ((5, 4), 2)] if hidden else [])
    return [(_separated(seed + i, shape, k), k,
             np.random.default_rng(seed + 100 + i).normal(size=(*shape[:-1], shape[-1] // k)),
             "a hidden test case" if hidden else f"z of shape {shape}, k={k}")
            for i, (shape, k) in enumerate(setups)]


def _grad_check_problem(right: Outcome, wrongs: list[Outcome], where: str) -> str | None:
    """What is wrong with the errors reported for the reference backward (`right`) and each of WRONG_BACKWARDS."""
    if right.error:
        return f"maxout_grad_error failed on {where}: {right.error}"
    if right.value.shape != () or not np.isfinite(right.value) or right.value < 0:
        return (f"maxout_grad_error returned {right.value!r} on {where}: return one non-negative float, the "
                "largest relative error")
    if right.value > 1e-6:
        return (f"maxout_grad_error returned {float(right.value):.1e} for a CORRECT maxout_backward on {where}: "
                "compare backward(dout, cache) with the numerical gradient of sum(forward(z, k)[0] * dout)")
    for what, outcome in zip(WRONG_BACKWARDS, wrongs, strict=True):
        value = float(outcome.value) if outcome.value is not None and outcome.value.shape == () else None
        if value is None or value < 1e-2:
            got = outcome.error or (f"{value:.1e}" if value is not None else "no number")
            return (f"maxout_grad_error returned {got} for a WRONG maxout_backward that {what} on {where}: a "
                    "gradient check that passes a wrong gradient checks nothing; compare the analytic gradient "
                    "with an independent numerical one")
    return None


def judge_gradient_check(data: dict, seed: int, hidden: bool = False) -> str | None:
    """data: {"borrowed": `_borrowed(maxout_grad_error)`, "errors": for each of _grad_check_setups(seed, hidden),
    [Outcome for the reference backward, Outcome for each of WRONG_BACKWARDS]}."""
    message = _borrowed_message("maxout_grad_error", data["borrowed"])
    if message:
        return message
    for (_, _, _, where), (right, *wrongs) in zip(_grad_check_setups(seed, hidden), data["errors"], strict=True):
        message = _grad_check_problem(right, wrongs, where)
        if message:
            return message
    return None


def check_gradient_check(maxout_grad_error, seed: int, hidden: bool = False) -> None:
    """A gradient check must pass the reference backward (error < 1e-6) and fail wrong ones (error > 1e-2)."""
    backwards = [reference.maxout_backward, *WRONG_BACKWARDS.values()]
    errors = [[probes.call(maxout_grad_error, reference.maxout_forward, backward, z, k, dout) for backward in backwards]
              for z, k, dout, _ in _grad_check_setups(seed, hidden)]
    judged.check(judge_gradient_check, {"borrowed": _borrowed(maxout_grad_error), "errors": errors},
                 seed=seed, hidden=hidden)


# ---- the torch Maxout layer -------------------------------------------------------------------------

def _reference_layer(x, p, in_features, out_features, k):
    layer = course_nn.Maxout(in_features, out_features, k)
    return torch.func.functional_call(layer, p, (x,))


def _z(x, p):
    return torch.nn.functional.linear(x, p["linear.weight"], p["linear.bias"])


LAYER_MISCONCEPTIONS = [
    ModuleMisconception(lambda x, p, i, o, k: _z(x, p).unflatten(-1, (k, o)).max(dim=-2).values,
                        "the pieces were grouped with stride (z[..., j::out_features]): unit j's pieces are the "
                        "contiguous block z[..., j*k:(j+1)*k]"),
    ModuleMisconception(lambda x, p, i, o, k: _z(x, p).unflatten(-1, (o, k)).amax(dim=-1),
                        "ties split the gradient between the tied pieces (torch.amax does that): use .max(dim) "
                        "whose gradient goes to one winning piece"),
    ModuleMisconception(lambda x, p, i, o, k: _z(x, p).unflatten(-1, (o, k)).max(dim=-2).values,
                        "the max was taken over the wrong axis (over the units, not over each unit's k pieces)"),
]


def _layer_cases(seed: int, hidden: bool) -> list[ModuleCase]:
    """Maxout(in, out, k) with the grader's weights; unit 0's pieces have zero weights and one bias (an exact
    tie on every input)."""
    rng = np.random.default_rng(seed)
    setups = [(5, 3, 2, 7), (4, 2, 3, 6)] + ([(6, 4, 4, 9), (3, 5, 1, 4), (8, 2, 2, 1)] if hidden else [])
    cases = []
    for n_in, n_out, k, n in setups:
        weight = rng.normal(size=(n_out * k, n_in))
        bias = rng.normal(size=n_out * k)
        weight[:k], bias[:k] = 0.0, 0.3
        params = {"linear.weight": weight.astype(np.float32), "linear.bias": bias.astype(np.float32)}
        cases.append(ModuleCase((n_in, n_out, k), rng.normal(size=(n, n_in)).astype(np.float32), params,
                                rng.normal(size=(n, n_out)).astype(np.float32)))
    return cases


def judge_maxout_layer(data: list[ModuleOutcome], seed: int, hidden: bool = False) -> str | None:
    """data: a ModuleOutcome of the student's Maxout per _layer_cases(seed, hidden). course_lib's classes and a
    Linear too narrow for k pieces per unit first, then forward and gradients against course_lib.nn.Maxout."""
    cases = _layer_cases(seed, hidden)
    for case, outcome in zip(cases, data, strict=True):
        borrowed = [c for c in outcome.classes if c.startswith("course_lib.")]
        if borrowed:
            return (f"Maxout uses {borrowed[0]}: write the grouped max yourself (course_lib's Maxout and GroupMax "
                    "are the reference you are compared with)")
        shapes, (n_in, n_out, k) = outcome.param_shapes, case.args
        if outcome.error and shapes.get("linear.weight") == (n_out, n_in) and k > 1:
            return (f"{call_text('Maxout', case.args)}: self.linear has {n_out} outputs: each of the {n_out} units "
                    f"needs k={k} pieces, so it needs out_features * k = {n_out * k}")
    return compare_module("Maxout", cases, data, _reference_layer, LAYER_MISCONCEPTIONS, hidden)


def check_maxout_layer(Maxout, seed: int, hidden: bool = False) -> None:
    """Forward and gradients (input, weight, bias) against course_lib.nn.Maxout with the grader's weights."""
    judged.check(judge_maxout_layer, [probe_module(Maxout, c, seed) for c in _layer_cases(seed, hidden)],
                 seed=seed, hidden=hidden)


# ---- the MLP ----------------------------------------------------------------------------------------

EPOCHS, LR = 15, 1e-2
# The solution (Maxout(40, 64, 2), Maxout(64, 64, 2), Linear(64, 10)) over training seeds 0-19, 15 epochs of
# Adam at lr 1e-2 on MNIST-1D (4000 samples): test accuracy 0.554-0.611, mean 0.576, training 0.7-4 s on a shared
# CPU; a linear model reaches 0.28-0.32. The threshold 0.48 passes 20/20, and the hidden seed 7505 (0.575).
THRESHOLD = 0.48
MAX_SECONDS = 15.0
HINTS = [
    Hint(lambda o: o.test_accuracy < 0.36,
         "about what a linear model reaches on MNIST-1D (0.32): is there a Maxout layer between the Linears?"),
    Hint(lambda o: True, "are the hidden layers your Maxout layers, and the last layer a Linear to 10 logits?"),
]
OTHER_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh,
                     course_nn.GroupMax, course_nn.Maxout)


@cache
def _data() -> Split:
    return mnist1d(num_samples=4000)


def _inspect_maxouts(Maxout, x_train: torch.Tensor):
    """From the trained model: its Maxout layers; for each, how many training examples each piece won on, as
    (units, k) counts; how often each layer ran in one forward pass; and the other activations it holds."""
    def inspect(model: nn.Module) -> dict:
        layers = {name: m for name, m in model.named_modules() if isinstance(m, Maxout)}
        linears = {name: m.linear for name, m in layers.items() if isinstance(getattr(m, "linear", None), nn.Linear)}
        z = modules.record_forward(model, x_train, linears, "output")
        out = modules.record_forward(model, x_train, layers, "output")
        wins = {}
        for name in linears:
            if not z[name] or not out[name]:
                continue
            zs, units = z[name][0], out[name][0].shape[-1]
            k = zs.shape[-1] // units
            winner = zs.reshape(len(zs), units, k).argmax(axis=-1) + np.arange(units) * k
            wins[name] = np.bincount(winner.reshape(-1), minlength=units * k).reshape(units, k).astype(np.int64)
        return {"maxouts": list(layers), "wins": wins, "calls": {n: len(v) for n, v in out.items()},
                "others": sorted({type(m).__name__ for m in model.modules() if isinstance(m, OTHER_ACTIVATIONS)})}
    return inspect


def judge_maxout_mlp(data: dict, seed: int, hidden: bool = False) -> str | None:
    """data: {"outcome": the TrainingOutcome of build_maxout_mlp(), "seen": what `_inspect_maxouts` read from the
    trained model (None if training failed)}. The accuracy is counted from the predictions against MNIST-1D's
    test labels, re-created here."""
    outcome, seen = data["outcome"], data["seen"]
    if outcome.error:
        return f"build_maxout_mlp: building or training the model failed: {outcome.error}"
    if not seen["maxouts"]:
        return "build_maxout_mlp() holds none of your Maxout layers: use Maxout(in, out, k) for the hidden layers"
    if seen["others"]:
        return (f"build_maxout_mlp() also holds {', '.join(seen['others'])}: the only nonlinearity should be your "
                "Maxout")
    if not all(seen["calls"].values()):
        return "a Maxout layer of the model is never used in its forward pass"
    return accuracy_verdict("build_maxout_mlp", outcome, _data().y_test, THRESHOLD, HINTS, MAX_SECONDS)


def check_maxout_mlp(build_maxout_mlp, Maxout, seed: int, hidden: bool = False) -> None:
    """Train build_maxout_mlp() with the grader's seed, data and budget; it must use the student's Maxout
    layers as its only nonlinearity and reach THRESHOLD test accuracy. Prints accuracy, size, dead pieces."""
    data = _data()
    outcome, seen = modules.train_and_inspect(build_maxout_mlp, data, EPOCHS, LR, seed,
                                              _inspect_maxouts(Maxout, torch.as_tensor(data.x_train)))
    judged.check(judge_maxout_mlp, {"outcome": outcome, "seen": seen}, seed=seed, hidden=hidden)
    lines = [f"Maxout MLP: test accuracy {outcome.test_accuracy:.3f}, {outcome.n_parameters} parameters, "
             f"trained in {outcome.train_seconds:.1f} s"]
    for name, wins in seen["wins"].items():
        lines.append(f"  layer '{name}': {wins.shape[0]} units, {wins.size} pieces, {int((wins == 0).sum())} pieces "
                     "never won on the training set")
    print("\n".join(lines))
