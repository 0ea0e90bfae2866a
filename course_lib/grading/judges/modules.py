"""Judging a student's torch module on the host: its plain outcomes (kernel.modules.probe_module) against a
reference run here, naming the misconception that explains a failure.

    message = compare_module("PReLU", cases, outcomes, reference, misconceptions, hidden)

`function_outcome` runs a torch function of the grader (the reference, or a misconception) on a case the way
the probe runs the student's module, so the two are compared array by array. Outcomes come from the sandbox
and may be forged or malformed: `readable` refuses anything a probe would not write, and a case is described
to the student by its constructor call and input shape only when hidden.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from course_lib.grading.judges.tolerance import tolerance
from course_lib.grading.kernel.modules import ModuleCase, ModuleOutcome

MALFORMED = "the check returned malformed data"


@dataclass(frozen=True)
class ModuleMisconception:
    """A plausible wrong module, as a torch function wrong(x, params, *args, **kwargs), and its message."""

    wrong: Callable[..., torch.Tensor]
    message: str


def _array(value, optional: bool = True) -> bool:
    if value is None:
        return optional
    return isinstance(value, np.ndarray) and value.dtype == np.float64


def _shape(value) -> bool:
    return isinstance(value, tuple) and all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**31
                                            for n in value)


def _str_keyed(value, check: Callable) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and check(v) for k, v in value.items())


def readable(outcome) -> bool:
    """True when `outcome` is a ModuleOutcome as a probe writes it: float64 arrays, str keys, int shapes."""
    return (isinstance(outcome, ModuleOutcome) and _array(outcome.output) and _array(outcome.input_grad)
            and isinstance(outcome.output_dtype, str | None) and isinstance(outcome.error, str | None)
            and _str_keyed(outcome.param_grads, _array) and _str_keyed(outcome.param_shapes, _shape)
            and _str_keyed(outcome.initial_params, lambda v: _array(v, optional=False)))


def outcomes_of(data, n: int) -> list[ModuleOutcome]:
    """`data` as n outcomes, each unreadable one replaced by an error outcome (MALFORMED)."""
    if not isinstance(data, list) or len(data) != n:
        return [ModuleOutcome(error=MALFORMED)] * n
    return [o if readable(o) else ModuleOutcome(error=MALFORMED) for o in data]


def _numpy(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().numpy().astype(np.float64)


def function_outcome(fn: Callable[..., torch.Tensor], case: ModuleCase) -> ModuleOutcome:
    """The grader's torch function fn(x, params, *case.args, **case.kwargs) on `case`, run like the probe runs
    a module: forward on x, backward of sum(out * dout); an error becomes the outcome's error."""
    leaves = {name: torch.tensor(value, requires_grad=True) for name, value in case.params.items()}
    x = torch.tensor(case.x, requires_grad=True)
    try:
        out = fn(x, leaves, *case.args, **dict(case.kwargs))
        if tuple(out.shape) != case.dout.shape:
            return ModuleOutcome(output=_numpy(out), output_dtype=str(out.dtype).removeprefix("torch."))
        (out * torch.as_tensor(case.dout, dtype=out.dtype)).sum().backward()
    except Exception as err:  # noqa: BLE001 - a misconception may not fit every case; that is data too
        return ModuleOutcome(error=f"{type(err).__name__}: {err}")
    return ModuleOutcome(output=_numpy(out), output_dtype=str(out.dtype).removeprefix("torch."),
                         input_grad=_numpy(x.grad), param_grads={n: _numpy(t.grad) for n, t in leaves.items()})


def _mismatch(what: str, got, expected: np.ndarray, rtol: float, atol: float) -> str | None:
    if not isinstance(got, np.ndarray) or got.shape != expected.shape:
        shape = got.shape if isinstance(got, np.ndarray) else None
        return f"{what} has shape {shape}, expected {expected.shape}"
    bad = ~np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    return f"wrong {what} at {int(bad.sum())} of {bad.size} elements" if bad.any() else None


def output_problem(outcome: ModuleOutcome, expected: np.ndarray, dtype: str = "float32") -> str | None:
    """What is wrong with an outcome's output and its dtype (None when they match `expected`)."""
    rtol, atol = tolerance(dtype)
    if outcome.error:
        return outcome.error
    if outcome.output is None:
        return "it returned no output"
    problem = _mismatch("output", outcome.output, expected, rtol, atol)
    if problem:
        return problem
    if outcome.output_dtype != dtype:
        return f"the output has dtype {outcome.output_dtype}, expected {dtype} (the input's)"
    return None


def module_problem(outcome: ModuleOutcome, expected: ModuleOutcome, dtype: str = "float32") -> str | None:
    """What is wrong with one outcome compared with the expected one (None when it matches)."""
    rtol, atol = tolerance(dtype)
    if outcome.error or expected.output is None:
        return outcome.error or "the reference has no output here"
    problem = output_problem(outcome, expected.output, expected.output_dtype or dtype)
    if problem:
        return problem
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


def call_text(name: str, args: tuple, kwargs: Mapping | None = None) -> str:
    """How the grader constructed the module, e.g. "PReLU(5)" or "PReLU(4, dim=-1)"."""
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in (kwargs or {}).items()]
    return f"{name}({', '.join(parts)})"


def describe_case(name: str, case: ModuleCase, hidden: bool) -> str:
    """The case in words: constructor call and input shape and dtype (never values: they may be hidden)."""
    where = f"{call_text(name, case.args, case.kwargs)} on an input of shape {case.x.shape}, dtype {case.x.dtype}"
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
    """The verdict on the student's outcomes (read with `outcomes_of`) against reference(x, params, *args,
    **kwargs), naming misconceptions."""
    outcomes = outcomes_of(outcomes, len(cases))
    expected = [function_outcome(reference, c) for c in cases]
    wrong = [(m.message, [function_outcome(m.wrong, c) for c in cases]) for m in misconceptions]
    return module_verdict(name, cases, outcomes, expected, wrong, hidden)
