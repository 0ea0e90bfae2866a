"""Probing a student's torch nn.Module: build it, load the grader's parameters, run forward and backward.

    outcomes = [probe_module(PReLU, c, seed=0) for c in cases]        # in the student's kernel: plain data
    message = compare_module("PReLU", cases, outcomes, reference)      # in a judge: None, or what is wrong

`probe_module` constructs the student's class with a case's arguments under the grader's seed, copies the
grader's values into named parameters, runs the module on the grader's input and backpropagates the grader's
upstream gradient `dout`. It returns a `ModuleOutcome` of plain numpy data (output, input and parameter
gradients, what the module is made of), never the student's objects: it can travel to a judge
(course_lib.grading.judged). `function_outcome` runs a torch function of the grader (the reference, or a
misconception) on the same case the same way, so the two are compared array by array; `compare_module` and
`module_verdict` do that (from plain outcomes only, so judges call them) and name the misconception that
reproduces the student's outcomes, describing hidden cases only by their arguments and shapes.

`train_and_inspect` trains a student's model like `training.train_and_measure` and lets grader code look at
the trained model (learned slopes, winning pieces) before it is thrown away; `record_forward` keeps what
chosen submodules received and returned in one forward pass.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from course_lib.data import Split
from course_lib.diagnostics import hooked_forward
from course_lib.grading import plain
from course_lib.grading.training import TrainingOutcome, train_and_measure

# Tolerances by input dtype: another correct float32 formula (or summation order) differs in the 6th digit.
TOLERANCES = {"float64": (1e-6, 1e-9), "float32": (1e-4, 1e-5)}


@plain.registered
@dataclass(frozen=True)
class ModuleCase:
    """One test: construct with `args`, load `params` (name -> array), run on `x`, backpropagate `dout`."""

    args: tuple
    x: np.ndarray
    params: Mapping[str, np.ndarray]
    dout: np.ndarray


@plain.registered
@dataclass(frozen=True)
class ModuleOutcome:
    """Plain data from one case: output, gradients, and the module's make-up; or the error it raised.

    param_shapes / initial_params: every registered parameter right after construction (before the grader's
    values were copied in); param_grads: the gradient of each parameter the grader set (None: no gradient);
    classes: "module.QualName" of the module and each submodule; operations: the names of the autograd nodes
    behind the output, sorted.
    """

    output: np.ndarray | None = None
    output_dtype: str | None = None
    input_grad: np.ndarray | None = None
    param_grads: dict[str, np.ndarray | None] = field(default_factory=dict)
    param_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    initial_params: dict[str, np.ndarray] = field(default_factory=dict)
    classes: tuple[str, ...] = ()
    operations: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class ModuleMisconception:
    """A plausible wrong module, as a torch function wrong(x, params, *args), and the message naming it."""

    wrong: Callable[..., torch.Tensor]
    message: str


def _numpy(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().numpy().astype(np.float64)


def _qualname(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _operations(out: torch.Tensor) -> tuple[str, ...]:
    """Names of every autograd node behind `out` (e.g. "PreluKernelBackward0"), sorted."""
    seen, stack, names = set(), [out.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        names.add(node.name())
        stack.extend(next_node for next_node, _ in node.next_functions)
    return tuple(sorted(names))


def _error(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _run(forward: Callable[[torch.Tensor], Any], case: ModuleCase, leaves: dict[str, torch.Tensor]) -> dict:
    """Forward on a fresh copy of case.x, then backward of sum(out * dout); the fields of a ModuleOutcome."""
    x = torch.tensor(case.x, requires_grad=True)
    out = forward(x)
    if not isinstance(out, torch.Tensor):
        return {"error": f"forward returned a {type(out).__name__}, not a torch tensor"}
    fields_ = {"output": _numpy(out), "output_dtype": str(out.dtype).removeprefix("torch."),
               "operations": _operations(out)}
    if tuple(out.shape) != case.dout.shape or not out.requires_grad:
        return {**fields_, "param_grads": {name: None for name in leaves}}
    (out * torch.as_tensor(case.dout, dtype=out.dtype)).sum().backward()
    return {**fields_, "input_grad": _numpy(x.grad), "param_grads": {n: _numpy(t.grad) for n, t in leaves.items()}}


def probe_module(cls: Callable[..., nn.Module], case: ModuleCase, seed: int = 0) -> ModuleOutcome:
    """Build cls(*case.args) with torch seed `seed`, load case.params, run forward and backward.

    Any exception from the student's code becomes `error` (with whatever was learned before it), so one bug
    costs points, never the grading run."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            module = cls(*case.args)
        except Exception as err:  # noqa: BLE001 - a student's bug is data here, not a crash of the grader
            return ModuleOutcome(error=f"constructing it failed: {_error(err)}")
    if not isinstance(module, nn.Module):
        return ModuleOutcome(error=f"it built a {type(module).__name__}, not a torch nn.Module")
    if case.x.dtype == np.float64:
        module = module.double()  # as a user would for a float64 input
    named = dict(module.named_parameters())
    made_of = {"param_shapes": {n: tuple(p.shape) for n, p in named.items()},
               "initial_params": {n: _numpy(p) for n, p in named.items()},
               "classes": tuple(_qualname(m) for m in module.modules())}
    for name, value in case.params.items():
        if name not in named:
            listed = ", ".join(f"'{n}' {tuple(p.shape)}" for n, p in named.items()) or "none"
            return ModuleOutcome(**made_of, error=f"it has no nn.Parameter named '{name}' (its parameters: {listed})")
        if tuple(named[name].shape) != value.shape:
            return ModuleOutcome(**made_of, error=f"its parameter '{name}' has shape {tuple(named[name].shape)}, "
                                                  f"expected {value.shape}")
    try:
        with torch.no_grad():
            for name, value in case.params.items():
                named[name].copy_(torch.as_tensor(value))
        module.zero_grad(set_to_none=True)
        ran = _run(module, case, {n: named[n] for n in case.params})
    except Exception as err:  # noqa: BLE001 - a student's bug is data here, not a crash of the grader
        return ModuleOutcome(**made_of, error=_error(err))
    # submodules created during forward count too
    made_of["classes"] = tuple(dict.fromkeys(made_of["classes"] + tuple(_qualname(m) for m in module.modules())))
    return ModuleOutcome(**made_of, **ran)


def function_outcome(fn: Callable[..., torch.Tensor], case: ModuleCase) -> ModuleOutcome:
    """The grader's torch function fn(x, params, *case.args) on `case`, run like `probe_module` runs a module."""
    leaves = {name: torch.tensor(value, requires_grad=True) for name, value in case.params.items()}
    try:
        return ModuleOutcome(**_run(lambda x: fn(x, leaves, *case.args), case, leaves))
    except Exception as err:  # noqa: BLE001 - a misconception may not fit every case; that is data too
        return ModuleOutcome(error=_error(err))


def _mismatch(what: str, got: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> str | None:
    if got.shape != expected.shape:
        return f"{what} has shape {got.shape}, expected {expected.shape}"
    bad = ~np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    return f"wrong {what} at {int(bad.sum())} of {bad.size} elements" if bad.any() else None


def module_problem(outcome: ModuleOutcome, expected: ModuleOutcome, dtype: str = "float32") -> str | None:
    """What is wrong with one outcome compared with the expected one (None when it matches)."""
    rtol, atol = TOLERANCES.get(dtype, TOLERANCES["float32"])
    if outcome.error:
        return outcome.error
    problem = _mismatch("output", outcome.output, expected.output, rtol, atol)
    if problem:
        return problem
    if outcome.output_dtype != expected.output_dtype:
        return f"the output has dtype {outcome.output_dtype}, expected {expected.output_dtype} (the input's)"
    if expected.input_grad is not None:
        if outcome.input_grad is None:
            return ("no gradient reached the input: compute the output from x with torch operations "
                    "(no numpy, no .detach(), no .data)")
        problem = _mismatch("gradient with respect to the input", outcome.input_grad, expected.input_grad,
                            rtol, atol)
        if problem:
            return problem
    for name, grad in expected.param_grads.items():
        got = outcome.param_grads.get(name)
        if grad is not None and got is None:
            return f"the parameter '{name}' got no gradient: is it used in forward, with torch operations?"
        problem = grad is not None and _mismatch(f"gradient with respect to '{name}'", got, grad, rtol, atol)
        if problem:
            return problem
    return None


def _reproduces(outcomes: Sequence[ModuleOutcome], wrong: Sequence[ModuleOutcome], dtypes: Sequence[str]) -> bool:
    """True when the wrong module explains every outcome: the same values, or an error where it errs too."""
    if all(w.error for w in wrong):
        return False
    return all((o.error is not None) if w.error else module_problem(o, w, d) is None
               for o, w, d in zip(outcomes, wrong, dtypes, strict=True))


def call_text(name: str, args: tuple) -> str:
    """How the grader constructed the module, e.g. "PReLU(5)"."""
    return f"{name}({', '.join(repr(a) for a in args)})"


def describe_case(name: str, case: ModuleCase, hidden: bool) -> str:
    """The case in words: constructor call and input shape and dtype (never values: they may be hidden)."""
    where = f"{call_text(name, case.args)} on an input of shape {case.x.shape}, dtype {case.x.dtype}"
    return f"a hidden test case, {where}" if hidden else where


def module_verdict(name: str, cases: Sequence[ModuleCase], outcomes: Sequence[ModuleOutcome],
                   expected: Sequence[ModuleOutcome],
                   misconceptions: Sequence[tuple[str, Sequence[ModuleOutcome]]] = (),
                   hidden: bool = False) -> str | None:
    """None if every outcome matches; else one message: a named misconception first (given as its message
    and its outcomes on the same cases), or the first failing case and what is wrong there."""
    dtypes = [str(c.x.dtype) for c in cases]
    problems = [module_problem(o, e, d) for o, e, d in zip(outcomes, expected, dtypes, strict=True)]
    failing = [(c, p) for c, p in zip(cases, problems, strict=True) if p]
    if not failing:
        return None
    for message, wrong in misconceptions:
        if _reproduces(outcomes, wrong, dtypes):
            return f"{name}: {message}"
    case, problem = failing[0]
    return (f"{name}: {problem} (first failing case: {describe_case(name, case, hidden)}; "
            f"{len(failing)} of {len(cases)} test cases fail)")


def compare_module(name: str, cases: Sequence[ModuleCase], outcomes: Sequence[ModuleOutcome],
                   reference: Callable[..., torch.Tensor], misconceptions: Sequence[ModuleMisconception] = (),
                   hidden: bool = False) -> str | None:
    """The verdict on the student's outcomes against reference(x, params, *args), naming misconceptions."""
    expected = [function_outcome(reference, c) for c in cases]
    wrong = [(m.message, [function_outcome(m.wrong, c) for c in cases]) for m in misconceptions]
    return module_verdict(name, cases, outcomes, expected, wrong, hidden)


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


def train_and_inspect(build_model: Callable[[], nn.Module], data: Split, epochs: int, lr: float, seed: int,
                      inspect: Callable[[nn.Module], Any], **train_kw) -> tuple[TrainingOutcome, Any]:
    """`train_and_measure`, then inspect(trained model) -> plain data (grader code, e.g. the learned slopes).

    The second value is None when building or training failed; an exception in `inspect` (raised by the
    student's modules) becomes an error outcome."""
    built: list[nn.Module] = []

    def build() -> nn.Module:
        model = build_model()
        built.append(model)
        return model

    outcome = train_and_measure(build, data, epochs, lr, seed, **train_kw)
    if outcome.error or not built:
        return outcome, None
    try:
        return outcome, inspect(built[-1])
    except Exception as err:  # noqa: BLE001 - a student's bug is data here, not a crash of the grader
        return TrainingOutcome(error=f"inspecting the trained model failed: {_error(err)}"), None
