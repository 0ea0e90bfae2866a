"""Grading numpy layers and losses written CS231n-style, and training a student's numpy network.

A layer is a pair `forward(*inputs) -> (out, cache)` and `backward(dout, cache) -> grad or (grad, ...)`; a
network loss is `loss(params, x, y) -> (loss, grads)` with `grads` a dict keyed like `params`, and
`loss(params, x) -> scores` without labels (CS231n's TwoLayerNet convention).

- `probe_layer` / `probe_loss` run the student's code on a grader `Case` and keep only plain data
  (`Probe`: one `Outcome` per named value, e.g. "out", "dx", "dw", "db" or "loss", "W1", ...).
- `expected_layer` / `expected_loss` run a trusted reference the same way; `numerical_layer_grads` and
  `numerical_loss_grads` compute the gradients by central differences instead (course_lib.gradcheck), so a
  backward pass can be judged against its own forward pass too.
- `probe_verdict` compares probes with expected values and names a `GradientMisconception`; hidden inputs
  are described by their shapes and dtype only.
- `train_numpy_classifier` is the grader's fixed minibatch SGD loop: it trains with nothing but the
  student's loss function, under the grader's seed and data, and returns a `TrainingOutcome`.
"""

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from course_lib.data import Split
from course_lib.gradcheck import numerical_gradient, numerical_gradient_array
from course_lib.grading import plain
from course_lib.grading.probes import Outcome, call
from course_lib.grading.training import TrainingOutcome, predicted_classes, scored

# Tolerances by the inputs' dtype: another correct formula differs in the last digits (matmul order).
TOLERANCES = {"float64": (1e-6, 1e-9), "float32": (1e-4, 1e-5)}
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


@plain.registered
@dataclass(frozen=True)
class Probe:
    """Named Outcomes of one run of the student's code (plain data), or the error that stopped it."""

    values: dict[str, Outcome] = field(default_factory=dict)
    error: str | None = None
    warnings: tuple[str, ...] = ()

    def value(self, name: str) -> np.ndarray | None:
        outcome = self.values.get(name)
        return None if outcome is None else outcome.value


def _copy(v):
    return v.copy() if isinstance(v, np.ndarray) else v


def _plain(v) -> Outcome:
    """A plain float64 copy of a returned value (or an error Outcome when it is not an array or number)."""
    return call(lambda: v)


def _run(body: Callable[[], Probe]) -> Probe:
    """body() with numpy floating-point warnings (not underflow) recorded and exceptions kept as data."""
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="warn", under="ignore"):
        warnings.simplefilter("always")
        try:
            probe = body()
        except Exception as err:  # noqa: BLE001 - a student's bug is data here, not a crash of the grader
            probe = Probe(error=f"{type(err).__name__}: {err}")
    found = tuple(sorted({str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)}))
    return Probe(probe.values, probe.error, found)


def _as_tuple(grads) -> tuple:
    return tuple(grads) if isinstance(grads, tuple | list) else (grads,)


def probe_layer(forward: Callable, backward: Callable, case: Case, grad_names: Sequence[str]) -> Probe:
    """Run forward(*copies of the inputs) -> (out, cache), then backward(copy of dout, cache).

    The probe holds "out" and one Outcome per name in `grad_names` (the gradients backward returns, in
    that order), or an error naming the step that failed."""

    def body() -> Probe:
        try:
            result = forward(*(_copy(v) for v in case.inputs.values()))
        except Exception as err:  # noqa: BLE001
            return Probe(error=f"the forward pass raised {type(err).__name__}: {err}")
        if not (isinstance(result, tuple) and len(result) == 2):
            return Probe(error=f"the forward pass must return a pair (out, cache), not a {type(result).__name__}")
        out, cache = result
        values = {"out": _plain(out)}  # copied before backward runs, in case backward writes into it
        try:
            grads = _as_tuple(backward(_copy(case.dout), cache))
        except Exception as err:  # noqa: BLE001
            return Probe(values, f"the backward pass raised {type(err).__name__}: {err}")
        if len(grads) != len(grad_names):
            return Probe(values, f"the backward pass must return {', '.join(grad_names)}: got {len(grads)} value(s)")
        values.update({name: _plain(g) for name, g in zip(grad_names, grads, strict=True)})
        return Probe(values)

    return _run(body)


def expected_layer(forward: Callable, backward: Callable, case: Case, grad_names: Sequence[str]) -> dict:
    """The reference's "out" and gradients (float64 arrays) on `case`."""
    out, cache = forward(*(_copy(v) for v in case.inputs.values()))
    grads = _as_tuple(backward(_copy(case.dout), cache))
    return {"out": np.asarray(out, dtype=np.float64),
            **{n: np.asarray(g, dtype=np.float64) for n, g in zip(grad_names, grads, strict=True)}}


def numerical_layer_grads(forward: Callable, case: Case, wrt: Sequence[str], h: float = 1e-5) -> dict:
    """Gradients of sum(forward(*inputs)[0] * dout) w.r.t. the inputs named in `wrt`, by central
    differences on float64 copies (the forward may be the student's: this judges a backward pass against
    its own forward pass)."""
    inputs = {k: (v.astype(np.float64) if isinstance(v, np.ndarray) else v) for k, v in case.inputs.items()}
    grads = {}
    for name in wrt:
        def f(value, name=name):
            return forward(*({**inputs, name: value}).values())[0]
        grads[name] = numerical_gradient_array(f, inputs[name].copy(), np.asarray(case.dout, np.float64), h)
    return grads


def _loss_call(loss_fn: Callable, params: dict, x: np.ndarray, y: np.ndarray):
    return loss_fn({k: _copy(v) for k, v in params.items()}, _copy(x), _copy(y))


def probe_loss(loss_fn: Callable, case: Case, param_names: Sequence[str]) -> Probe:
    """Run loss_fn(params, x, y) -> (loss, grads) on case.inputs = {"x", "y", *param_names}.

    The probe holds "loss" and one Outcome per parameter gradient; a missing key is an error."""
    params = {k: case.inputs[k] for k in param_names}

    def body() -> Probe:
        result = _loss_call(loss_fn, params, case.inputs["x"], case.inputs["y"])
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
            return Probe(error=f"it must return a pair (loss, grads) with grads a dict, not a {type(result).__name__}")
        loss, grads = result
        missing = [k for k in param_names if k not in grads]
        if missing:
            return Probe({"loss": _plain(loss)}, f"grads has no entry for {', '.join(missing)}")
        return Probe({"loss": _plain(loss), **{k: _plain(grads[k]) for k in param_names}})

    return _run(body)


def expected_loss(loss_fn: Callable, case: Case, param_names: Sequence[str]) -> dict:
    """The reference's "loss" and gradients (float64) on `case`."""
    params = {k: case.inputs[k] for k in param_names}
    loss, grads = _loss_call(loss_fn, params, case.inputs["x"], case.inputs["y"])
    return {"loss": np.asarray(loss, dtype=np.float64), **{k: np.asarray(grads[k], np.float64) for k in param_names}}


def numerical_loss_grads(loss_fn: Callable, case: Case, param_names: Sequence[str], h: float = 1e-5) -> dict:
    """Central-difference gradients of loss_fn(params, x, y)[0] w.r.t. each parameter (float64)."""
    params = {k: np.asarray(case.inputs[k], dtype=np.float64) for k in param_names}
    grads = {}
    for name in param_names:
        def f(value, name=name):
            return float(loss_fn({**params, name: value}, case.inputs["x"], case.inputs["y"])[0])
        grads[name] = numerical_gradient(f, params[name].copy(), h)
    return grads


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
                   warn_free: bool) -> str | None:
    rtol, atol = tolerance or TOLERANCES.get(case.dtype, TOLERANCES["float32"])
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
            return f"{name} has wrong values at {int(bad.sum())} of {bad.size} elements"
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
               if (problem := _first_problem(p, e, c, tolerance, warn_free))]
    if not failing:
        return None
    for m in misconceptions:
        if all(m.applies(p, e, c) for p, e, c, _ in failing):
            return f"{name}: {m.message}"
    _, _, case, problem = failing[0]
    return f"{name}: {problem} on {case.describe(hidden)} ({len(failing)} of {len(probes)} test inputs fail)"


# ---- the grader's training loop ---------------------------------------------------------------------


def _checked_grads(grads, params: dict) -> dict:
    if not isinstance(grads, dict) or set(grads) != set(params):
        raise ValueError(f"the loss must return grads with the keys {sorted(params)}")
    out = {}
    for k, p in params.items():
        g = np.asarray(grads[k], dtype=np.float64)
        if g.shape != p.shape:
            raise ValueError(f"grads[{k!r}] has shape {g.shape}, but {k} has shape {p.shape}")
        out[k] = g
    return out


def train_numpy_classifier(loss_fn: Callable, params: dict, data: Split, epochs: int, lr: float, seed: int,
                           batch_size: int = 50) -> TrainingOutcome:
    """Train a numpy classifier with plain minibatch SGD, using nothing but the student's loss function.

    Every step calls loss_fn(copies of params, x_batch, y_batch) -> (loss, grads) and sets
    params[k] -= lr * grads[k]; the batches are a permutation drawn from `seed` each epoch. Test accuracy is
    the argmax of loss_fn(params, x_test) (scores, no labels) against y_test. Any exception, a gradient of
    the wrong shape, or a loss that stops being finite becomes `error`. The outcome's `predictions` are the
    argmax classes on x_test (its accuracy is counted from them)."""
    d = data.numpy()
    x, y = d.x_train.astype(np.float64), d.y_train
    params = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    rng = np.random.default_rng(seed)
    start, step = time.perf_counter(), 0
    try:
        with np.errstate(all="ignore"):
            for _ in range(epochs):
                order = rng.permutation(len(y))
                for i in range(0, len(y), batch_size):
                    idx = order[i:i + batch_size]
                    loss, grads = _loss_call(loss_fn, params, x[idx], y[idx])
                    step += 1
                    if not np.isfinite(loss):
                        raise FloatingPointError(f"the loss became {float(loss)} at SGD step {step}: the updates blew "
                                                 "up; are the gradients those of the mean loss?")
                    for k, g in _checked_grads(grads, params).items():
                        params[k] -= lr * g
        seconds = time.perf_counter() - start
    except Exception as err:  # noqa: BLE001 - a student's bug is data here, not a crash of the grader
        return TrainingOutcome(error=f"{type(err).__name__}: {err}")
    try:
        with np.errstate(all="ignore"):
            scores = np.asarray(loss_fn({k: v.copy() for k, v in params.items()}, d.x_test.astype(np.float64)))
        if scores.shape != (len(d.y_test), d.n_classes):
            raise ValueError(f"got an array of shape {scores.shape}, expected {(len(d.y_test), d.n_classes)}")
    except Exception as err:  # noqa: BLE001
        return TrainingOutcome(error=f"called without labels, loss(params, x) must return the scores (N, C): "
                                     f"{type(err).__name__}: {err}")
    outcome = TrainingOutcome(None, seconds, None, sum(v.size for v in params.values()),
                              predictions=predicted_classes(scores))
    return scored(outcome, d.y_test)
