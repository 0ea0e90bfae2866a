"""Judges for ex05_maxout: maxout forward/backward in numpy, a gradient check, a torch Maxout layer and an MLP
of them.

Conventions (course_lib.activations.maxout, the reference, called here on the host only): the last axis holds
units * k values and z[..., j*k:(j+1)*k] are unit j's k pieces; the gradient goes only to the winning piece,
on ties the first. The sandbox's course_lib has none of maxout, maxout_grad, maxout_forward, maxout_backward
and nn.Maxout (WRITTEN). course_lib.nn.GroupMax stays: it is a building block the teaching modules
(diagnostics, cnn) are made of, like torch's own max(dim), and the exercise says students may use it.
"""

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from course_lib import activations as reference
from course_lib import nn as course_nn
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
from course_lib.grading.judges.verdict import Misconception, elementwise_verdict
from course_lib.grading.kernel.modules import ModuleCase
from course_lib.grading.kernel.probes import Outcome
from course_lib.grading.kernel.sequential import LayerSpec, seeded_parameters
from course_lib.grading.kernel.training import TrainingOutcome

WRITTEN = {"course_lib.activations": ["maxout", "maxout_grad", "maxout_forward", "maxout_backward"],
           "course_lib.nn": ["Maxout"]}


def _torch_seed(rng) -> int:
    return int(rng.integers(2**31))


def _outcomes(value, n: int) -> list[Outcome] | None:
    """The probe's outcomes, checked to be what probes.call writes (None otherwise)."""
    if not (isinstance(value, list) and len(value) == n and all(isinstance(o, Outcome) for o in value)):
        return None
    for o in value:
        if not isinstance(o.error, str | None) or not isinstance(o.dtype, str | None):
            return None
        if o.error is None and not (isinstance(o.value, np.ndarray) and o.value.dtype == np.float64):
            return None
    return value


# ---- numpy forward and backward ---------------------------------------------------------------------


def _ks(hidden: bool) -> tuple[int, ...]:
    return (2, 3, 1, 4) if hidden else (2, 3)


def _pieces(z: np.ndarray, k: int) -> np.ndarray:
    return z.reshape(*z.shape[:-1], z.shape[-1] // k, k)


def _strided(z: np.ndarray, k: int) -> np.ndarray:
    """The wrong grouping z[..., j::units]: piece i of unit j is z[..., i*units + j]."""
    return np.swapaxes(z.reshape(*z.shape[:-1], k, z.shape[-1] // k), -1, -2)


def _maxout_inputs(rng, k: int, hidden: bool) -> list[np.ndarray]:
    """z of shapes (N, units*k), (N, L, units*k) and (units*k,), float64 and float32, with exact ties: a unit
    whose k pieces are all equal and units whose first two pieces share the maximum."""
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


def _indivisible(rng, hidden: bool) -> list[dict]:
    """z and k where k does not divide z's width: maxout_forward must raise ValueError."""
    return [{"z": rng.normal(size=(3, width)), "k": k}
            for width, k in (((7, 2), (10, 3), (9, 4)) if hidden else ((7, 2),))]


def prepare_forward(params: dict) -> Prepared:
    hidden = bool(params.get("hidden"))
    rng = np.random.default_rng([params["seed"], 51])
    return Prepared({"parts": [{"k": k, "inputs": _maxout_inputs(rng, k, hidden)} for k in _ks(hidden)],
                     "indivisible": _indivisible(rng, hidden)})


INDIVISIBLE = "the last pieces belong to no unit; raise ValueError (with a message saying so)"


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


def _per_k_verdict(name: str, data, parts: list[dict], hidden: bool,
                   expected: Callable[[dict, int], np.ndarray],
                   misconceptions: Callable[[int, dict], list[Misconception]]) -> str | None:
    """The first failing k's elementwise verdict: data[i] holds one Outcome per input of parts[i], judged
    against expected(parts[i], index of the input); `name` is formatted with k."""
    if not isinstance(data, list) or len(data) != len(parts):
        return f"{name.format(k=parts[0]['k'])}: {MALFORMED}"
    for part, outcomes in zip(parts, data, strict=True):
        k, inputs = part["k"], part["inputs"]
        outcomes = _outcomes(outcomes, len(inputs))
        if outcomes is None:
            return f"{name.format(k=k)}: {MALFORMED}"
        message = elementwise_verdict(name.format(k=k), outcomes, inputs,
                                      [np.asarray(expected(part, i), dtype=np.float64) for i in range(len(inputs))],
                                      misconceptions(k, part), hidden)
        if message:
            return message
    return None


def _indivisible_problem(cases: list[dict], data) -> str | None:
    outcomes = _outcomes(data, len(cases))
    if outcomes is None:
        return f"maxout_forward: {MALFORMED}"
    for case, outcome in zip(cases, outcomes, strict=True):
        if not (outcome.error or "").startswith("ValueError"):
            got = f"raised {outcome.error}" if outcome.error else "returned without an error"
            width, k = case["z"].shape[-1], case["k"]
            return (f"maxout_forward(z, k={k}) on z of width {width} {got}: {width} is not divisible by k={k}, so "
                    f"{INDIVISIBLE}")
    return None


def decide_forward(data, prepared: Prepared, params: dict) -> str | None:
    """data: {"outcomes": for each part (one k), an Outcome of the forward's out per input, "indivisible": an
    Outcome per indivisible case}."""
    given = prepared.given
    if not (isinstance(data, dict) and set(data) == {"outcomes", "indivisible"}):
        return f"maxout_forward: {MALFORMED}"
    return (_per_k_verdict("maxout_forward(z, k={k})", data["outcomes"], given["parts"], bool(params.get("hidden")),
                           lambda part, i: reference.maxout(part["inputs"][i], part["k"]),
                           lambda k, part: _forward_misconceptions(k))
            or _indivisible_problem(given["indivisible"], data["indivisible"]))


def prepare_backward(params: dict) -> Prepared:
    """Inputs with ties and, for each, an upstream gradient dout (..., units) in its dtype."""
    hidden = bool(params.get("hidden"))
    rng = np.random.default_rng([params["seed"], 52])
    parts = []
    for k in _ks(hidden):
        inputs = _maxout_inputs(rng, k, hidden)
        douts = [rng.normal(size=(*z.shape[:-1], z.shape[-1] // k)).astype(z.dtype) for z in inputs]
        parts.append({"k": k, "inputs": inputs, "douts": douts})
    return Prepared({"parts": parts})


def _first_winners(pieces: np.ndarray) -> np.ndarray:
    winners = pieces == pieces.max(axis=-1, keepdims=True)
    return winners & (np.cumsum(winners, axis=-1) == 1)


def _backward_wrongs() -> dict[str, Callable[[np.ndarray, int, np.ndarray], np.ndarray]]:
    """Each misconception as dz = wrong(z, k, dout), and its message."""
    def every_piece(z, k, dout):
        return np.repeat(dout, k, axis=-1)

    def strided(z, k, dout):
        return np.swapaxes(_first_winners(_strided(z, k)) * dout[..., None], -1, -2).reshape(z.shape)

    def split_ties(z, k, dout):
        piece = _pieces(z, k)
        winners = piece == piece.max(axis=-1, keepdims=True)
        return (winners * dout[..., None] / winners.sum(axis=-1, keepdims=True)).reshape(z.shape)

    def last_tie(z, k, dout):
        piece = _pieces(z, k)
        grad = np.zeros_like(piece)
        np.put_along_axis(grad, (k - 1 - piece[..., ::-1].argmax(axis=-1))[..., None], dout[..., None], axis=-1)
        return grad.reshape(z.shape)

    def every_tie(z, k, dout):
        piece = _pieces(z, k)
        return ((piece == piece.max(axis=-1, keepdims=True)) * dout[..., None]).reshape(z.shape)

    def no_dout(z, k, dout):
        return reference.maxout_grad(z, k)

    return {
        "the gradient reached every maxout piece, not only the winner: the max passes dout to the piece that "
        "won and 0 to the others": every_piece,
        "the pieces were grouped with stride (z[..., j::units]): unit j's pieces are the contiguous block "
        "z[..., j*k:(j+1)*k]": strided,
        "ties split the gradient between the tied pieces: route all of dout to the first maximum (as "
        "np.argmax picks it), never split": split_ties,
        "on ties every tied piece got the whole dout: route it to the first maximum only (as np.argmax "
        "picks it), or the gradient counts twice": every_tie,
        "on ties the gradient went to the last maximum: route it to the first (as np.argmax picks it)": last_tie,
        "the winner got 1 instead of dout: multiply by the upstream gradient": no_dout,
    }


def _backward_misconceptions(k: int, part: dict) -> list[Misconception]:
    """The wrongs as functions of z alone, as elementwise_verdict calls them: each input's dout is found by
    the input itself (the same array object the verdict is given)."""
    dout_of = {id(z): dout for z, dout in zip(part["inputs"], part["douts"], strict=True)}
    return [Misconception(lambda z, wrong=wrong: wrong(z, k, dout_of[id(z)]), message)
            for message, wrong in _backward_wrongs().items()]


def decide_backward(data, prepared: Prepared, params: dict) -> str | None:
    """data: for each part (one k), an Outcome of maxout_backward(dout, cache of the student's forward) per
    input."""
    parts = prepared.given["parts"]
    return _per_k_verdict("maxout_backward (k={k})", data, parts, bool(params.get("hidden")),
                          lambda part, i: reference.maxout_grad(part["inputs"][i], part["k"], part["douts"][i]),
                          _backward_misconceptions)


# ---- the gradient check -----------------------------------------------------------------------------
# The student's maxout_grad_error(forward, backward, z, k, dout) is handed the grader's layers: maxout ones
# (near z, whose winners lead by at least 1, each unit outputs its winning piece) and smooth ones,
# out_j = sum_i w[j, i] * tanh(z_j,i); for each, the correct backward and five wrong ones, in an order drawn
# from the secret seed. Every backward is dz = dout[..., None] * scale + const (kernel side), so nothing but
# the numbers says which one is right: telling them apart takes a gradient. Guessing the right one of six in
# each of the 3 visible setups passes with probability 1/216, in the 6 hidden ones 1/46656.

# A gradient check that fails the correct backward: the end of its message (the error and setup come before).
CHECK_FAILS_CORRECT = "compare backward(dout, cache) with the numerical gradient of sum(forward(z, k)[0] * dout)"
WRONG_BACKWARDS = {
    "every piece": "sends the gradient to every piece",
    "no dout": "ignores dout (the winner gets 1)",
    "half": "returns half the gradient",
    "one element": "is wrong in one element only (report the largest relative error, not an average)",
    "sign": "returns minus the gradient",
}
LAYERS = {"maxout": "maxout_backward", "tanh": "backward of the grader's tanh layer"}


def _separated(rng, shape: tuple, k: int) -> np.ndarray:
    """float64 z whose winning piece leads each unit by at least 1, so no step of 1e-5 changes a winner."""
    z = rng.normal(size=shape)
    pieces = _pieces(z, k)
    np.put_along_axis(pieces, pieces.argmax(axis=-1)[..., None], pieces.max(axis=-1, keepdims=True) + 1.0, axis=-1)
    return pieces.reshape(shape)


def _layer(rng, shape: tuple, k: int, kind: str) -> tuple[np.ndarray, dict, np.ndarray]:
    """(z, the layer as the sandbox builds it, its Jacobian per piece (..., units, k)) for one kind."""
    units = shape[-1] // k
    if kind == "maxout":
        z = _separated(rng, shape, k)
        winners = _pieces(z, k).argmax(axis=-1)
        jacobian = np.zeros(_pieces(z, k).shape)
        np.put_along_axis(jacobian, winners[..., None], 1.0, axis=-1)
        return z, {"kind": "maxout", "winners": winners.astype(np.int64)}, jacobian
    z = np.clip(rng.normal(size=shape), -2.0, 2.0)
    w = rng.uniform(0.5, 1.5, size=(units, k)) * rng.choice([-1.0, 1.0], size=(units, k))
    return z, {"kind": "tanh", "w": w}, w * (1 - np.tanh(_pieces(z, k)) ** 2)


def _one_element_off(rng, jacobian: np.ndarray, kind: str) -> np.ndarray:
    """The Jacobian with one entry wrong: a losing maxout piece that gets dout, or one tanh entry x1.5."""
    wrong = jacobian.copy().reshape(-1)
    candidates = np.flatnonzero(wrong == 0) if kind == "maxout" else np.arange(wrong.size)
    index = rng.choice(candidates)
    wrong[index] = 1.0 if kind == "maxout" else 1.5 * wrong[index]
    return wrong.reshape(jacobian.shape)


def _setup(rng, shape: tuple, k: int, kind: str) -> tuple[dict, list[str]]:
    """One problem for the student's gradient check: (what the sandbox is given, the kind of each backward)."""
    z, layer, jacobian = _layer(rng, shape, k, kind)
    dout = rng.normal(size=(*shape[:-1], shape[-1] // k))
    zero = np.zeros_like(jacobian)
    backwards = {"correct": (jacobian, zero), "every piece": (np.ones_like(jacobian), zero),
                 "no dout": (zero, jacobian), "half": (0.5 * jacobian, zero),
                 "one element": (_one_element_off(rng, jacobian, kind), zero), "sign": (-jacobian, zero)}
    kinds = [list(backwards)[i] for i in rng.permutation(len(backwards))]
    candidates = [{"scale": backwards[kind][0], "const": backwards[kind][1]} for kind in kinds]
    return {"z": z, "k": k, "dout": dout, "layer": layer, "candidates": candidates}, kinds


GRAD_SETUPS = [((4, 6), 2, "maxout"), ((3, 9), 3, "tanh"), ((2, 5, 6), 3, "maxout")]
GRAD_SETUPS_HIDDEN = [((2, 3, 8), 4, "maxout"), ((5, 4), 2, "tanh"), ((3, 2, 6), 2, "tanh")]


def prepare_gradient_check(params: dict) -> Prepared:
    rng = np.random.default_rng([params["seed"], 53])
    setups = GRAD_SETUPS + (GRAD_SETUPS_HIDDEN if params.get("hidden") else [])
    made = [_setup(rng, shape, k, kind) for shape, k, kind in setups]
    return Prepared({"setups": [given for given, _ in made]}, [kinds for _, kinds in made])


def _number(outcome: Outcome) -> float | None:
    """The one finite, non-negative float an outcome holds, or None."""
    if outcome.value is None or outcome.value.shape != () or not np.isfinite(outcome.value) or outcome.value < 0:
        return None
    return float(outcome.value)


def _grad_check_problem(outcomes: list[Outcome], kinds: list[str], layer: str, where: str) -> str | None:
    """What is wrong with the errors reported for the correct backward and each wrong one of one setup."""
    by_kind = dict(zip(kinds, outcomes, strict=True))
    right, value = by_kind["correct"], _number(by_kind["correct"])
    if right.error:
        return f"maxout_grad_error failed on {where}: {right.error}"
    if value is None:
        return (f"maxout_grad_error returned {right.value!r} on {where}: return one non-negative float, the "
                "largest relative error")
    if value > 1e-6:
        return f"maxout_grad_error returned {value:.1e} for a CORRECT {LAYERS[layer]} on {where}: {CHECK_FAILS_CORRECT}"
    for kind, what in WRONG_BACKWARDS.items():
        outcome = by_kind[kind]
        wrong = _number(outcome)
        if wrong is None or wrong < 1e-2:
            got = outcome.error or (f"{wrong:.1e}" if wrong is not None else "no number")
            return (f"maxout_grad_error returned {got} for a WRONG {LAYERS[layer]} that {what} on {where}: a "
                    "gradient check that passes a wrong gradient checks nothing; compare the analytic gradient "
                    "with an independent numerical one")
    return None


def decide_gradient_check(data, prepared: Prepared, params: dict) -> str | None:
    """data: for each setup, an Outcome of maxout_grad_error per candidate backward, in the order given."""
    setups, kinds = prepared.given["setups"], prepared.private
    if not isinstance(data, list) or len(data) != len(setups):
        return f"maxout_grad_error: {MALFORMED}"
    for setup, setup_kinds, errors in zip(setups, kinds, data, strict=True):
        outcomes = _outcomes(errors, len(setup_kinds))
        if outcomes is None:
            return f"maxout_grad_error: {MALFORMED}"
        where = "a hidden test case" if params.get("hidden") else f"z of shape {setup['z'].shape}, k={setup['k']}"
        message = _grad_check_problem(outcomes, setup_kinds, setup["layer"]["kind"], where)
        if message:
            return message
    return None


# ---- the torch Maxout layer -------------------------------------------------------------------------


def reference_layer(x, p, in_features, out_features, k):
    layer = course_nn.Maxout(in_features, out_features, k).to(x.dtype)
    return torch.func.functional_call(layer, p, (x,))


def _z(x, p):
    return torch.nn.functional.linear(x, p["linear.weight"], p["linear.bias"])


LINEAR_TOO_NARROW = "so it needs out_features * k"  # a Linear with one output per unit, not k pieces each
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

LAYER_SETUPS = [(5, 3, 2, 7), (4, 2, 3, 6)]
LAYER_SETUPS_HIDDEN = [(6, 4, 4, 9), (3, 5, 1, 4), (8, 2, 2, 1)]


def prepare_layer(params: dict) -> Prepared:
    """Maxout(in, out, k) with the grader's weights; unit 0's pieces have zero weights and one bias (an exact
    tie on every input)."""
    rng = np.random.default_rng([params["seed"], 54])
    cases = []
    for n_in, n_out, k, n in LAYER_SETUPS + (LAYER_SETUPS_HIDDEN if params.get("hidden") else []):
        weight = rng.normal(size=(n_out * k, n_in))
        bias = rng.normal(size=n_out * k)
        weight[:k], bias[:k] = 0.0, 0.3
        params_ = {"linear.weight": weight.astype(np.float32), "linear.bias": bias.astype(np.float32)}
        cases.append(ModuleCase((n_in, n_out, k), rng.normal(size=(n, n_in)).astype(np.float32), params_,
                                rng.normal(size=(n, n_out)).astype(np.float32)))
    return Prepared({"cases": cases, "torch_seed": _torch_seed(rng)})


def decide_layer(data, prepared: Prepared, params: dict) -> str | None:
    """A Linear too narrow for k pieces per unit first, then forward and gradients against course_lib's
    Maxout, run here."""
    cases = prepared.given["cases"]
    outcomes = outcomes_of(data, len(cases))
    for case, outcome in zip(cases, outcomes, strict=True):
        shapes, (n_in, n_out, k) = outcome.param_shapes, case.args
        if outcome.error and shapes.get("linear.weight") == (n_out, n_in) and k > 1:
            return (f"{call_text('Maxout', case.args)}: self.linear has {n_out} outputs: each of the {n_out} units "
                    f"needs k={k} pieces, {LINEAR_TOO_NARROW} = {n_out * k}")
    return compare_module("Maxout", cases, outcomes, reference_layer, LAYER_MISCONCEPTIONS,
                          bool(params.get("hidden")))


# ---- the MLP ----------------------------------------------------------------------------------------

EPOCHS, LR = 15, 1e-2
N_HELDOUT = 1000
# Calibrated with tools/pass_rates.py on 60 course secrets: figures in solutions/ex05_maxout's test_build_maxout_mlp.
THRESHOLD = 0.48
# The MLP's misconceptions about its layers: the end of a message that names the layers found.
NO_MAXOUT = "use Maxout(in, out, k) for the hidden layers"
OTHER_NONLINEARITY = "the only nonlinearity should be your Maxout"
HINTS = [
    Hint(lambda o: o.test_accuracy < 0.36,
         "about what a linear model reaches on MNIST-1D (0.32): is there a Maxout layer between the Linears?"),
    Hint(lambda o: True, "are the hidden layers your Maxout layers, and the last layer a Linear to 10 logits?"),
]
SHAPE = ("is it an nn.Sequential of your Maxout layers and a last nn.Linear to 10 logits, each used once, in "
         "order?")


def prepare_mlp(params: dict) -> Prepared:
    """Training under a torch seed from the (secret) seed and predictions on held-out inputs whose labels stay
    here; and a batch and a seed for the grader's weights, to run the untrained network on."""
    rng = np.random.default_rng([params["seed"], 55])
    x, y = heldout_or_public_test(params, N_HELDOUT)
    return Prepared({"train_seed": _torch_seed(rng), "heldout": x, "param_seed": _torch_seed(rng),
                     "x": rng.normal(size=(16, 40)).astype(np.float32)}, y)


def _readable_layers(layers) -> bool:
    return isinstance(layers, list) and all(isinstance(s, LayerSpec) and s.readable() for s in layers)


def _layers_problem(layers: list[LayerSpec]) -> str | None:
    """What the description of the model's layers says is wrong with it."""
    if not any(s.kind == "Maxout" for s in layers):
        return f"build_maxout_mlp() holds none of your Maxout layers: {NO_MAXOUT}"
    others = [s.name for s in layers if s.kind == "Other"]
    if others:
        return f"build_maxout_mlp() also holds {', '.join(others)}: {OTHER_NONLINEARITY}"
    if layers[-1].kind != "Linear" or layers[-1].sizes[-1] != 10 or layers[0].sizes[0] != 40:
        return ("build_maxout_mlp() must map 40 inputs to 10 logits, with a last nn.Linear(..., 10): "
                f"its layers are {', '.join(s.text() for s in layers)}")
    return None


def _expected_output(layers: list[LayerSpec], param_seed: int, x: np.ndarray) -> np.ndarray:
    """The described network, built here from course_lib.nn.Maxout and nn.Linear with the grader's weights."""
    modules = [course_nn.Maxout(*s.sizes) if s.kind == "Maxout" else nn.Linear(*s.sizes) for s in layers]
    model = nn.Sequential(*modules)
    with torch.no_grad():
        for param, value in zip(model.parameters(), seeded_parameters(param_seed, layers), strict=True):
            param.copy_(torch.as_tensor(value))
        return model(torch.as_tensor(x)).numpy().astype(np.float64)


def _function_problem(data: dict, given: dict) -> str | None:
    """Is the untrained network, with the grader's weights loaded by the kernel, the one it describes?"""
    layers, outcome = data["layers"], data["loaded"]
    if not readable(outcome):
        return f"build_maxout_mlp(): {MALFORMED}"
    if outcome.error:
        return f"build_maxout_mlp() with the grader's weights loaded: {outcome.error}: {SHAPE}"
    try:
        expected = _expected_output(layers, given["param_seed"], given["x"])
    except (ValueError, RuntimeError) as err:
        return (f"build_maxout_mlp(): its layers do not fit together ({', '.join(s.text() for s in layers)}): "
                f"{type(err).__name__}")
    problem = output_problem(outcome, expected)
    return f"build_maxout_mlp() with the grader's weights loaded: {problem}: {SHAPE}" if problem else None


MLP_KEYS = {"outcome", "layers", "loaded", "calls"}


def decide_mlp(data, prepared: Prepared, params: dict) -> str | None:
    """data: {"outcome": the TrainingOutcome of build_maxout_mlp(), "layers": its layers described (a list of
    LayerSpec; None when it is not an nn.Sequential), "loaded": the untrained network's ModuleOutcome on the
    grader's batch with the grader's weights, "calls": how often each Maxout layer ran in one forward pass of
    the trained model}. The accuracy is counted here, against held-out labels that never left the host."""
    if not (isinstance(data, dict) and set(data) == MLP_KEYS and isinstance(data["outcome"], TrainingOutcome)):
        return f"build_maxout_mlp: {MALFORMED}"
    outcome, layers, calls = data["outcome"], data["layers"], data["calls"]
    if outcome.error:
        return f"build_maxout_mlp: building or training the model failed: {outcome.error}"
    if layers is None:
        return "build_maxout_mlp() must return an nn.Sequential of your Maxout layers and a last nn.Linear"
    if not (_readable_layers(layers) and layers and isinstance(calls, list)
            and all(type(n) is int for n in calls)):
        return f"build_maxout_mlp: {MALFORMED}"
    message = _layers_problem(layers)
    if message:
        return message
    if not all(calls):
        return "a Maxout layer of the model is never used in its forward pass"
    return _function_problem(data, prepared.given) or accuracy_verdict(
        "build_maxout_mlp", outcome, prepared.private, THRESHOLD, HINTS)


JUDGES = {
    "maxout_forward": Judge(prepare_forward, decide_forward),
    "maxout_backward": Judge(prepare_backward, decide_backward),
    "gradient_check": Judge(prepare_gradient_check, decide_gradient_check),
    "maxout_layer": Judge(prepare_layer, decide_layer),
    "maxout_mlp": Judge(prepare_mlp, decide_mlp),
}
