"""Judging numpy layers and losses on the host: the probes' plain data against references computed here, a
failure explained by the misconception it shows.

- `Case`: one grader input (named arrays and, for a layer, the upstream gradient `dout`); `Case.given` is
  what the sandbox receives of it.
- `expected_layer` / `expected_loss` run a trusted reference on a case (host side only).
- `probes` checks that data is what a kernel probe (course_lib.grading.kernel.layers) writes, so a forged
  or garbled record fails cleanly; `probe_verdict` compares probes with expected values and names a
  `GradientMisconception`; hidden inputs are described by their shapes and dtype only.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from course_lib.grading.judges.tolerance import tolerance as dtype_tolerance
from course_lib.grading.judges.verdict import first_difference
from course_lib.grading.kernel.layers import Probe
from course_lib.grading.kernel.probes import Outcome

# Central differences (h = 1e-5, float64) of a smooth function agree with the truth to about 1e-8.
NUMERICAL_TOLERANCE = (1e-4, 1e-7)


@dataclass(frozen=True)
class Case:
    """One grader input: named arrays (the first is x, whose dtype outputs must keep) and, for a layer,
    the upstream gradient `dout` of the output's shape."""

    inputs: dict[str, np.ndarray]
    dout: np.ndarray | None = None

    @property
    def dtype(self) -> str:
        return str(next(iter(self.inputs.values())).dtype)

    def describe(self, hidden: bool) -> str:
        """The shapes and dtype of the inputs (never their values)."""
        shapes = ", ".join(f"{k} {v.shape}" for k, v in self.inputs.items() if isinstance(v, np.ndarray))
        if hidden:
            return f"a hidden test input ({shapes}, dtype {self.dtype})"
        return f"input {shapes}, dtype {self.dtype}"

    def layer_given(self) -> dict:
        """What a layer probe receives: the forward pass's positional arguments and dout."""
        return {"args": list(self.inputs.values()), "dout": self.dout}


def _copy(v):
    return v.copy() if isinstance(v, np.ndarray) else v


def _as_tuple(grads) -> tuple:
    return tuple(grads) if isinstance(grads, tuple | list) else (grads,)


def expected_layer(forward: Callable, backward: Callable, case: Case, grad_names: Sequence[str]) -> dict:
    """The reference's "out" and gradients (float64 arrays) on `case`."""
    out, cache = forward(*(_copy(v) for v in case.inputs.values()))
    grads = _as_tuple(backward(_copy(case.dout), cache))
    return {"out": np.asarray(out, dtype=np.float64),
            **{n: np.asarray(g, dtype=np.float64) for n, g in zip(grad_names, grads, strict=True)}}


def expected_loss(loss_fn: Callable, case: Case, param_names: Sequence[str]) -> dict:
    """The reference loss_fn(params, x, y)'s "loss" and gradients (float64) on `case`."""
    params = {k: _copy(case.inputs[k]) for k in param_names}
    loss, grads = loss_fn(params, _copy(case.inputs["x"]), _copy(case.inputs["y"]))
    return {"loss": np.asarray(loss, dtype=np.float64), **{k: np.asarray(grads[k], np.float64) for k in param_names}}


# ---- what came back ---------------------------------------------------------------------------------------


def _outcome_ok(o) -> bool:
    if not isinstance(o, Outcome):
        return False
    if o.error is not None:
        return isinstance(o.error, str)
    return isinstance(o.value, np.ndarray) and o.value.dtype == np.float64 and isinstance(o.dtype, str)


def _probe_ok(p) -> bool:
    return (isinstance(p, Probe) and isinstance(p.values, dict)
            and all(isinstance(k, str) and _outcome_ok(o) for k, o in p.values.items())
            and (p.error is None or isinstance(p.error, str))
            and isinstance(p.warnings, tuple) and all(isinstance(w, str) for w in p.warnings))


def probes(data, n: int) -> list[Probe]:
    """`data` checked to be n Probes as a kernel probe writes them; ValueError otherwise."""
    if not (isinstance(data, list) and len(data) == n and all(_probe_ok(p) for p in data)):
        raise ValueError(f"not one probe per test input ({n})")
    return data


def gradients(value, shapes: dict[str, tuple]) -> dict[str, np.ndarray] | None:
    """`value` checked to be None or a dict of float64 arrays of `shapes`; ValueError otherwise."""
    if value is None:
        return None
    if not (isinstance(value, dict) and set(value) == set(shapes)
            and all(isinstance(value[k], np.ndarray) and value[k].dtype == np.float64 and value[k].shape == s
                    for k, s in shapes.items())):
        raise ValueError("not a gradient per parameter")
    return value


# ---- verdicts ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GradientMisconception:
    """A plausible wrong answer, recognised by `applies(probe, expected, case)`, and the message naming it."""

    applies: Callable[[Probe, dict, Case], bool]
    message: str


def matches(probe: Probe, name: str, target: np.ndarray, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    """True when the probe's value `name` has target's shape and values (for misconception tests)."""
    value = probe.value(name)
    target = np.asarray(target, dtype=np.float64)
    return value is not None and value.shape == target.shape and bool(
        np.allclose(value, target, rtol=rtol, atol=atol, equal_nan=True))


def _first_problem(probe: Probe, expected: dict, case: Case, tolerance: tuple[float, float] | None,
                   warn_free: bool, hidden: bool) -> str | None:
    rtol, atol = tolerance or dtype_tolerance(case.dtype)
    if probe.error:
        return probe.error
    for name, want in expected.items():
        got = probe.values.get(name)
        if got is None:
            return f"{name} was not returned"
        if got.error:
            return f"{name}: {got.error}"
        if got.value.shape != want.shape:
            return f"{name} has shape {got.value.shape}, expected {want.shape}"
        if tolerance is None and got.dtype != case.dtype:
            return f"{name} has dtype {got.dtype} for {case.dtype} inputs: keep the inputs' dtype"
        if not np.allclose(got.value, want, rtol=rtol, atol=atol, equal_nan=True):
            bad = ~np.isclose(got.value, want, rtol=rtol, atol=atol, equal_nan=True)
            shown = "" if hidden else f" ({first_difference(got.value, want, bad, got.dtype)})"
            return f"{name} has wrong values at {int(bad.sum())} of {bad.size} elements{shown}"
    if warn_free and probe.warnings:
        return f"numpy warned '{probe.warnings[0]}'"
    return None


def probe_verdict(name: str, probes: Sequence[Probe], cases: Sequence[Case], expected: Sequence[dict],
                  misconceptions: Sequence[GradientMisconception] = (), hidden: bool = False,
                  tolerance: tuple[float, float] | None = None, warn_free: bool = False) -> str | None:
    """None if every probe matches its expected values; else one message for the student.

    A misconception that applies to every failing case is named first; otherwise the first problem is
    described with the failing case's shapes and dtype. `tolerance` (rtol, atol) replaces the per-dtype
    tolerances and skips the dtype check (for comparisons with finite differences); `warn_free` also fails
    a probe during which numpy warned (overflow, invalid value)."""
    failing = [(p, e, c, problem) for p, e, c in zip(probes, expected, cases, strict=True)
               if (problem := _first_problem(p, e, c, tolerance, warn_free, hidden))]
    if not failing:
        return None
    wrong_values = [(p, e, c) for p, e, c, _ in failing if not all(matches(p, k, v) for k, v in e.items())]
    for m in misconceptions:  # a misconception explains wrong values, not a wrong dtype with right values
        if wrong_values and len(wrong_values) == len(failing) and all(m.applies(p, e, c) for p, e, c in wrong_values):
            return f"{name}: {m.message}"
    _, _, case, problem = failing[0]
    return f"{name}: {problem} on {case.describe(hidden)} ({len(failing)} of {len(probes)} test inputs fail)"
