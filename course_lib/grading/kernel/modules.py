"""Probing a student's torch nn.Module in the kernel: build it, load the grader's parameters, run forward and
backward, and keep only plain numbers.

    outcomes = [probe_module(PReLU, case, seed) for case in given["cases"]]

`probe_module` constructs the student's class with a case's arguments under the grader's seed, copies the
grader's values into named parameters, runs the module on the grader's input and backpropagates the grader's
upstream gradient `dout`. It returns a `ModuleOutcome` of numpy arrays (output, input and parameter
gradients, the shapes and first values of its parameters), never the student's objects. `loaded_output` does
the same for a whole network without gradients (is it the network asked for?), and `record_forward` keeps
what chosen submodules received or returned in one forward pass (what a trained model learned).

Nothing here compares or judges: the host's course_lib.grading.judges.modules does that, with references
that never enter the sandbox.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from course_lib.diagnostics import hooked_forward
from course_lib.grading import plain
from course_lib.grading.kernel.probes import student_error


@plain.registered
@dataclass(frozen=True)
class ModuleCase:
    """One test: construct with `args` and `kwargs`, load `params` (name -> array), run on `x`, backpropagate
    `dout` (x's dtype; dout has the output's shape)."""

    args: tuple
    x: np.ndarray
    params: Mapping[str, np.ndarray]
    dout: np.ndarray
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@plain.registered
@dataclass(frozen=True)
class ModuleOutcome:
    """Plain data from one case: output, gradients and the module's parameters; or the error it raised.

    param_shapes / initial_params: every registered parameter right after construction (before the grader's
    values were copied in); param_grads: the gradient of each parameter the grader set (None: no gradient).
    Arrays are float64 copies.
    """

    output: np.ndarray | None = None
    output_dtype: str | None = None
    input_grad: np.ndarray | None = None
    param_grads: dict[str, np.ndarray | None] = field(default_factory=dict)
    param_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    initial_params: dict[str, np.ndarray] = field(default_factory=dict)
    error: str | None = None


def _numpy(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().numpy().astype(np.float64)


def _run(module: nn.Module, case: ModuleCase, leaves: dict[str, torch.Tensor]) -> dict:
    """Forward on a fresh copy of case.x, then backward of sum(out * dout); the fields of a ModuleOutcome."""
    x = torch.tensor(case.x, requires_grad=True)
    out = module(x)
    if not isinstance(out, torch.Tensor):
        return {"error": f"forward returned a {type(out).__name__}, not a torch tensor"}
    fields_ = {"output": _numpy(out), "output_dtype": str(out.dtype).removeprefix("torch.")}
    if tuple(out.shape) != case.dout.shape or not out.requires_grad:
        return {**fields_, "param_grads": {name: None for name in leaves}}
    (out * torch.as_tensor(case.dout, dtype=out.dtype)).sum().backward()
    return {**fields_, "input_grad": _numpy(x.grad), "param_grads": {n: _numpy(t.grad) for n, t in leaves.items()}}


def _made_of(module: nn.Module) -> dict:
    named = dict(module.named_parameters())
    return {"param_shapes": {n: tuple(p.shape) for n, p in named.items()},
            "initial_params": {n: _numpy(p) for n, p in named.items()}}


def _load(module: nn.Module, params: Mapping[str, np.ndarray], exact: bool = False) -> str | None:
    """Copy `params` into the module's parameters of those names; why not (None when done). `exact`: the
    module may have no other parameter."""
    named = dict(module.named_parameters())
    listed = ", ".join(f"'{n}' {tuple(p.shape)}" for n, p in named.items()) or "none"
    for name, value in params.items():
        if name not in named:
            return f"it has no nn.Parameter named '{name}' (its parameters: {listed})"
        if tuple(named[name].shape) != value.shape:
            return f"its parameter '{name}' has shape {tuple(named[name].shape)}, expected {value.shape}"
    extra = [n for n in named if n not in params]
    if exact and extra:
        return f"it has parameters the network should not have: {', '.join(extra)} (its parameters: {listed})"
    with torch.no_grad():
        for name, value in params.items():
            named[name].copy_(torch.as_tensor(value))
    return None


class NotAModule(TypeError):
    """The student's class or function built something that is not a torch nn.Module."""


def construct(cls: Callable[..., nn.Module], args: tuple = (), kwargs: Mapping | None = None,
              seed: int = 0) -> nn.Module:
    """cls(*args, **kwargs) with torch seeded by `seed` (the global generator restored afterwards);
    NotAModule when it is not a torch nn.Module."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = cls(*args, **dict(kwargs or {}))
    if not isinstance(module, nn.Module):
        raise NotAModule(f"it built a {type(module).__name__}, not a torch nn.Module")
    return module


def probe_module(cls: Callable[..., nn.Module], case: ModuleCase, seed: int = 0) -> ModuleOutcome:
    """Build cls(*case.args, **case.kwargs) with torch seed `seed`, load case.params, run forward and backward.

    Any exception from the student's code becomes `error` (with whatever was learned before it), so one bug
    costs points, never the grading run."""
    try:
        module = construct(cls, case.args, case.kwargs, seed)
    except NotAModule as err:
        return ModuleOutcome(error=str(err))
    except Exception as err:  # noqa: BLE001 - a student's bug is data here, not a crash of the grader
        return ModuleOutcome(error=f"constructing it failed: {student_error(err)}")
    if case.x.dtype == np.float64:
        module = module.double()  # as a user would for a float64 input
    made_of = _made_of(module)
    try:
        problem = _load(module, case.params)
        if problem:
            return ModuleOutcome(**made_of, error=problem)
        module.zero_grad(set_to_none=True)
        named = dict(module.named_parameters())
        return ModuleOutcome(**made_of, **_run(module, case, {n: named[n] for n in case.params}))
    except Exception as err:  # noqa: BLE001 - a student's bug is data here, not a crash of the grader
        return ModuleOutcome(**made_of, error=student_error(err))


def loaded_output(build: Callable[[], nn.Module], params: Mapping[str, np.ndarray], x: np.ndarray,
                  seed: int = 0) -> ModuleOutcome:
    """The network build() makes, with exactly the grader's `params` loaded (by name), run on `x` without
    gradients: output and parameter shapes, or the error. Tells whether it is the network asked for."""
    try:
        model = construct(build, seed=seed)
        made_of = _made_of(model)
        problem = _load(model, params, exact=True)
        if problem:
            return ModuleOutcome(param_shapes=made_of["param_shapes"], error=problem)
        with torch.no_grad():
            out = model(torch.as_tensor(x))
        if not isinstance(out, torch.Tensor):
            return ModuleOutcome(error=f"the network returned a {type(out).__name__}, not a torch tensor")
        return ModuleOutcome(output=_numpy(out), output_dtype=str(out.dtype).removeprefix("torch."),
                             param_shapes=made_of["param_shapes"])
    except NotAModule as err:
        return ModuleOutcome(error=str(err))
    except Exception as err:  # noqa: BLE001 - a student's bug is data here, not a crash of the grader
        return ModuleOutcome(error=student_error(err))


def record_forward(model: nn.Module, x: torch.Tensor, modules: Mapping[str, nn.Module],
                   what: str = "input") -> dict[str, list[np.ndarray]]:
    """One forward pass of model(x) without gradients; for each named module, the first input (or the output)
    of every call it received, as numpy arrays (a list: a module shared by several layers is called more
    than once)."""
    if what not in ("input", "output"):
        raise ValueError(f"what must be 'input' or 'output', got {what!r}")
    seen: dict[str, list[np.ndarray]] = {name: [] for name in modules}

    def record(name, module, args, out):
        seen[name].append(_numpy(args[0] if what == "input" else out))

    hooked_forward(model, x, modules, record)
    return seen
