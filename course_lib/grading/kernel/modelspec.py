"""A torch model as plain data: an `nn.Sequential` (nested allowed) of whitelisted layers, each with its
constructor arguments and its initial state, so the grading host can rebuild and train it itself.

    spec = export(model)    # in the kernel: plain data (dicts, lists, numbers, numpy arrays)
    model = build(spec)     # on the host: a fresh model, equal to `model` in every parameter and buffer

A node of the spec is either

    {"layer": "Sequential", "children": [node, ...]}
    {"layer": "Linear", "args": {"in_features": 2, "out_features": 64, "bias": True},
     "state": {"weight": float32 (64, 2), "bias": float32 (64,)}}

Only what the layer's type, its constructor arguments and its `state_dict` say travels: hooks, replaced
methods, subclasses and extra attributes do not (a subclass or any other module is refused). So a rebuilt
model computes what a freshly built layer of that type computes, whatever the kernel did to its copy.

`build` trusts nothing in a spec (it may be forged): every layer, argument, key, dtype and shape is checked
against a layer built on torch's "meta" device (no memory) before anything is allocated, and the caps below
bound the host's work on any spec that passes: at most MAX_LAYERS nodes, Sequentials nested at most
MAX_DEPTH deep, every width at most MAX_WIDTH, at most MAX_STATE numbers in all parameters and buffers, and
at most MAX_ACTIVATIONS numbers computed per example (each layer's output width, in forward order; a layer
without a width of its own, such as ReLU, keeps the width of the layer before it). Training cost grows with
the last two. Anything else is refused with a one-line `SpecError`.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

import course_lib.nn as course_nn
from course_lib.nn import GroupMax

# Read from the module's namespace, not looked up by name: in the sandbox of an assignment that asks students
# to write Maxout (ex05) it is cut out, and a lookup would flag the student for the grader's own import.
Maxout = vars(course_nn).get("Maxout")

MAX_LAYERS = 16  # nodes of the tree, Sequentials included
MAX_DEPTH = 4  # Sequentials inside Sequentials
MAX_WIDTH = 1024  # every feature count (in, out, normalised features, PReLU slopes, maxout pieces)
MAX_STATE = 20_000  # numbers in all parameters and buffers together
MAX_ACTIVATIONS = 1536  # numbers the layers compute per example, all layers together


class SpecError(ValueError):
    """A model (or spec) the grader does not rebuild; the message is one line for the student."""


# ---- arguments: each a check that raises SpecError ---------------------------------------------------


def _width(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WIDTH:
        raise SpecError(f"{name} must be a whole number from 1 to {MAX_WIDTH}, got {value!r}")


def _number(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpecError(f"{name} must be a finite number, got {value!r}")


def _positive(name: str, value) -> None:
    _number(name, value)
    if value <= 0:
        raise SpecError(f"{name} must be > 0, got {value!r}")


def _fraction(name: str, value) -> None:
    _number(name, value)
    if not 0 <= value <= 1:
        raise SpecError(f"{name} must be between 0 and 1, got {value!r}")


def _fraction_or_none(name: str, value) -> None:
    if value is not None:
        _fraction(name, value)


def _flag(name: str, value) -> None:
    if not isinstance(value, bool):
        raise SpecError(f"{name} must be True or False, got {value!r}")


def _one_of(*options) -> Callable:
    def check(name: str, value) -> None:
        if value not in options or isinstance(value, bool):
            raise SpecError(f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")
    return check


def _group(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 16:
        raise SpecError(f"{name} must be a whole number from 1 to 16, got {value!r}")


@dataclass(frozen=True)
class Layer:
    """An allowed layer type: its constructor's arguments (name -> check), how to read them back from a
    built module (`read(module) -> args`) and the width of its output (`width(args)`, None: the width of
    its input)."""

    cls: type
    checks: dict[str, Callable]
    read: Callable[[nn.Module], dict]
    width: Callable[[dict], int | None] = lambda args: None


def _no_args(cls: type) -> Layer:
    return Layer(cls, {}, lambda m: {})


def _arg(name: str) -> Callable[[dict], int]:
    return lambda args: args[name]


LAYERS: dict[str, Layer] = {
    "Linear": Layer(nn.Linear, {"in_features": _width, "out_features": _width, "bias": _flag},
                    lambda m: {"in_features": m.in_features, "out_features": m.out_features,
                               "bias": m.bias is not None}, _arg("out_features")),
    "ReLU": _no_args(nn.ReLU),
    "LeakyReLU": Layer(nn.LeakyReLU, {"negative_slope": _number}, lambda m: {"negative_slope": m.negative_slope}),
    "PReLU": Layer(nn.PReLU, {"num_parameters": _width}, lambda m: {"num_parameters": m.num_parameters},
                   _arg("num_parameters")),
    "ELU": Layer(nn.ELU, {"alpha": _number}, lambda m: {"alpha": m.alpha}),
    "GELU": Layer(nn.GELU, {"approximate": _one_of("none", "tanh")}, lambda m: {"approximate": m.approximate}),
    "SiLU": _no_args(nn.SiLU),
    "Tanh": _no_args(nn.Tanh),
    "Sigmoid": _no_args(nn.Sigmoid),
    "Identity": _no_args(nn.Identity),
    "Dropout": Layer(nn.Dropout, {"p": _fraction}, lambda m: {"p": m.p}),
    "BatchNorm1d": Layer(nn.BatchNorm1d, {"num_features": _width, "eps": _positive, "momentum": _fraction_or_none,
                                          "affine": _flag, "track_running_stats": _flag},
                         lambda m: {"num_features": m.num_features, "eps": m.eps, "momentum": m.momentum,
                                    "affine": m.affine, "track_running_stats": m.track_running_stats},
                         _arg("num_features")),
    "LayerNorm": Layer(nn.LayerNorm, {"normalized_shape": _width, "eps": _positive, "elementwise_affine": _flag,
                                      "bias": _flag},
                       lambda m: {"normalized_shape": m.normalized_shape[0] if len(m.normalized_shape) == 1
                                  else m.normalized_shape, "eps": m.eps,
                                  "elementwise_affine": m.elementwise_affine, "bias": m.bias is not None},
                       _arg("normalized_shape")),
    "GroupMax": Layer(GroupMax, {"k": _group, "dim": _one_of(-1, 1)}, lambda m: {"k": m.k, "dim": m.dim}),
}
if Maxout is not None:
    LAYERS["Maxout"] = Layer(Maxout, {"in_features": _width, "out_features": _width, "k": _group},
                             lambda m: {"in_features": m.in_features, "out_features": m.out_features, "k": m.k},
                             lambda args: args["out_features"] * args["k"])
ALLOWED = ("Sequential", *LAYERS)
_NAMES = {layer.cls: name for name, layer in LAYERS.items()} | {nn.Sequential: "Sequential"}


def allowed_layers() -> str:
    """The allowed layer names, for messages and the exercise text."""
    return ", ".join(ALLOWED)


# ---- the budget a spec may use ------------------------------------------------------------------------


class _Budget:
    """Counts nodes, state numbers and activations per example as a model or spec is walked in forward
    order; SpecError past a cap."""

    def __init__(self):
        self.layers, self.state, self.activations, self.width = 0, 0, 0, 0

    def node(self, depth: int) -> None:
        self.layers += 1
        if self.layers > MAX_LAYERS:
            raise SpecError(f"the model has more than {MAX_LAYERS} layers (Sequentials included): the grader "
                            "trains smaller ones")
        if depth > MAX_DEPTH:
            raise SpecError(f"Sequentials are nested more than {MAX_DEPTH} deep: the grader trains flatter models")

    def numbers(self, count: int) -> None:
        self.state += count
        if self.state > MAX_STATE:
            raise SpecError(f"the model has more than {MAX_STATE:,} parameters and buffers: the grader trains "
                            "smaller ones")

    def output(self, width: int | None) -> None:
        """A layer whose output has `width` numbers per example (None: as many as its input)."""
        self.width = width if width is not None else self.width
        self.activations += self.width
        if self.activations > MAX_ACTIVATIONS:
            raise SpecError(f"the model's layers compute more than {MAX_ACTIVATIONS:,} numbers per example: the "
                            "grader trains smaller ones")


def _meta(name: str, args) -> nn.Module:
    """Layer `name` built from `args` on the meta device (nothing allocated), after checking every argument."""
    layer = LAYERS[name]
    if not isinstance(args, dict) or set(args) != set(layer.checks):
        raise SpecError(f"{name} takes the arguments {sorted(layer.checks)}, got {_keys(args)}")
    for arg, check in layer.checks.items():
        check(f"{name}.{arg}", args[arg])
    if name == "Maxout" and args["out_features"] * args["k"] > MAX_WIDTH:
        raise SpecError(f"Maxout.out_features * k must be at most {MAX_WIDTH}")
    with torch.device("meta"):
        return layer.cls(**args)


def _leaf(name: str, args, budget: _Budget) -> nn.Module:
    """The meta-device layer of `name` and `args` (checked), its output charged to `budget`."""
    meta = _meta(name, args)
    budget.output(LAYERS[name].width(args))
    return meta


def _keys(value) -> str:
    return str(sorted(map(str, value))[:6]) if isinstance(value, dict) else f"a {type(value).__name__}"


# ---- export: in the kernel ----------------------------------------------------------------------------


def export(model: nn.Module) -> dict:
    """`model` as a spec (plain data); SpecError for anything but an nn.Sequential (nested allowed) of the
    allowed layers within the caps, with float32 parameters that all train, no layer used twice and every
    value finite."""
    if not isinstance(model, nn.Module):
        raise SpecError(f"the model must be a torch nn.Module, not a {type(model).__name__}")
    return _export(model, 1, _Budget(), set())


def _export(module: nn.Module, depth: int, budget: _Budget, seen: set) -> dict:
    name = _NAMES.get(type(module))
    if name is None:
        raise SpecError(f"the grader rebuilds only an nn.Sequential of these torch layers: {allowed_layers()}; "
                        f"found a {type(module).__name__}")
    if id(module) in seen:
        raise SpecError(f"one {name} object is used at two places in the model: build a new one for each place")
    seen.add(id(module))
    budget.node(depth)
    if name == "Sequential":
        return {"layer": name, "children": [_export(child, depth + 1, budget, seen)
                                            for child in module._modules.values()]}
    for p in module.parameters():
        if id(p) in seen:
            raise SpecError(f"a parameter of a {name} is shared with another layer: give each layer its own")
        seen.add(id(p))
        if not p.requires_grad:
            raise SpecError(f"a parameter of a {name} is frozen (requires_grad=False): the grader trains them all")
    args = LAYERS[name].read(module)
    meta = _leaf(name, args, budget)  # every width checked before anything is copied
    state = {key: value.detach().cpu().numpy().copy() for key, value in module.state_dict().items()}
    _check_state(name, meta, state, budget)
    return {"layer": name, "args": args, "state": state}


# ---- build: on the host (any spec) ---------------------------------------------------------------------


def build(spec) -> nn.Module:
    """A fresh model from `spec` (plain data, perhaps forged); SpecError when it is not one `export` writes
    within the caps."""
    return _build(spec, 1, _Budget())


def _build(node, depth: int, budget: _Budget) -> nn.Module:
    if not isinstance(node, dict) or node.get("layer") not in ALLOWED:
        layer = node.get("layer") if isinstance(node, dict) else node
        raise SpecError(f"the grader rebuilds only these torch layers: {allowed_layers()}; got {str(layer)[:40]!r}")
    budget.node(depth)
    name = node["layer"]
    if name == "Sequential":
        if set(node) != {"layer", "children"} or not isinstance(node["children"], list):
            raise SpecError("a Sequential must be {'layer', 'children': [...]}")
        if len(node["children"]) > MAX_LAYERS:
            raise SpecError(f"the model has more than {MAX_LAYERS} layers (Sequentials included)")
        return nn.Sequential(*(_build(child, depth + 1, budget) for child in node["children"]))
    if set(node) != {"layer", "args", "state"}:
        raise SpecError(f"a {name} must be {{'layer', 'args', 'state'}}, got {_keys(node)}")
    meta = _leaf(name, node["args"], budget)
    state = _check_state(name, meta, node["state"], budget)
    module = meta.to_empty(device="cpu")
    module.load_state_dict({key: torch.from_numpy(value.copy()) for key, value in state.items()}, strict=True)
    return module


def _check_state(name: str, meta: nn.Module, state, budget: _Budget) -> dict:
    """`state` if it has exactly the keys, dtypes and shapes of `meta`'s state_dict, with finite values and
    within the budget; SpecError otherwise."""
    want = meta.state_dict()
    budget.numbers(sum(t.numel() for t in want.values()))
    if not isinstance(state, dict) or set(state) != set(want):
        raise SpecError(f"a {name} has the state {sorted(want)}, got {_keys(state)}")
    for key, expected in want.items():
        value = state[key]
        dtype = str(expected.dtype).removeprefix("torch.")
        if not isinstance(value, np.ndarray) or str(value.dtype) != dtype or value.shape != tuple(expected.shape):
            got = f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
            raise SpecError(f"{name}.{key} must be {dtype} of shape {tuple(expected.shape)}, got {got}"
                            + (" (keep torch's default float32)" if dtype == "float32" else ""))
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise SpecError(f"{name}.{key} holds nan or inf: initial parameters must be finite")
    return state
