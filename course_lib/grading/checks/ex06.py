"""Checks for ex06_capstone (what its test cells call): a network for MNIST-1D within a CPU budget, and a
dead_fraction(model, x) function. Each runs the student's code on the grader's inputs and hands back plain
data (course_lib.grading.kernel); the verdict comes from course_lib.grading.judges.ex06.

The grader trains the design itself, on one thread: on the public draw of MNIST-1D, under the grader's torch
seed, predicting held-out inputs whose labels only the judge holds. One run per (inputs, configuration,
built model) is kept in this module, so the test cells of one seed share one training. Under `course grade`
the CPU budget is measured by the grader from outside the notebook (see judges.ex06).
"""

import copy
import hashlib
import numbers
import types

import numpy as np
import torch
from torch import nn

from course_lib import cnn as course_cnn
from course_lib import diagnostics
from course_lib.data import Split, mnist1d
from course_lib.grading.kernel import channel, planted
from course_lib.grading.kernel.budget import (
    BudgetedRun,
    ConfigLimits,
    ConfigProbe,
    config_problems,
    config_verdict,
    probe_config,
    train_on_budget,
)
from course_lib.grading.kernel.probes import student_error

NUM_SAMPLES = 4000  # 3200 training and 800 test signals (the package's own split, 80/20)
TRAIN_DRAW = 1  # the public draw every graded training uses (the held-out signals are the secret part)
LIMITS = ConfigLimits(epochs=(1, 60), batch_size=(16, 512), lr=(1e-5, 1.0))
# The budget's calibration (the solution's CPU seconds, a 3x margin) is in solutions/ex06_capstone's test cells.
BUDGET_S = 12.0
STOP_AFTER_S = 2 * BUDGET_S  # a run this long is stopped: it fails every training test
# The thresholds' calibration (the solution and a ReLU MLP over 20 seeds) is in solutions/ex06_capstone's test cells.
THRESHOLD_A = 0.50  # the MLP level
THRESHOLD_B = 0.82  # the bonus tier, reached by a small CNN within the budget
MAX_OUTPUTS = 10_000  # a model output larger than this is handed back by its shape only

_RUNS: dict[tuple, tuple[BudgetedRun, nn.Module | None]] = {}


def data(seed: int) -> Split:
    """MNIST-1D's draw `seed`: x (N, 40) float32 signals, y (N,) labels 0..9, 3200 training and 800 test."""
    return mnist1d(num_samples=NUM_SAMPLES, seed=seed, val=0)


def _small_array(out) -> np.ndarray | None:
    """A float64 copy of an output tensor of at most MAX_OUTPUTS values; None for anything else."""
    if not isinstance(out, torch.Tensor) or out.numel() > MAX_OUTPUTS:
        return None
    try:
        return out.detach().cpu().double().numpy().copy()
    except Exception:  # noqa: BLE001 - an output numpy cannot hold is no output
        return None


def _names_used(fn) -> set[str]:
    """The global names fn's code (and the code nested in it) refers to."""
    def used(code) -> set[str]:
        found = set(code.co_names)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                found |= used(const)
        return found
    code = getattr(fn, "__code__", None)
    return used(code) if code is not None else set()


def _refers_to(fn, module, name: str) -> bool:
    """True when fn uses `name` or a global bound to module.name. Read from the module's namespace: where the
    grader removed the name (course grade's sandbox), looking it up would report the student."""
    target, names = vars(module).get(name), _names_used(fn)
    globals_ = getattr(fn, "__globals__", {})
    return name in names or (target is not None and any(globals_.get(n) is target for n in names))


# ---- the design -------------------------------------------------------------------------------------


def _probe_forward(build_model, x: np.ndarray, torch_seed: int) -> dict:
    """build_model() on the grader's batch x (7, 40): {"failed": (step, detail) or None, "shape": the output's
    shape (its type name when it is not a tensor), "output": _small_array of it}."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_seed)
        try:
            model = build_model()
        except Exception as err:  # noqa: BLE001 - a student's bug is a failed test, not a crash of the grader
            return {"failed": ["build", student_error(err)], "shape": None, "output": None}
        if not isinstance(model, nn.Module):
            return {"failed": ["type", type(model).__name__], "shape": None, "output": None}
        try:
            with torch.no_grad():
                out = model(torch.as_tensor(x))
        except Exception as err:  # noqa: BLE001
            return {"failed": ["forward", student_error(err)], "shape": None, "output": None}
    shape = [int(n) for n in out.shape] if isinstance(out, torch.Tensor) else type(out).__name__
    return {"failed": None, "shape": shape, "output": _small_array(out)}


# ---- one training run per seed, shared by the cells -------------------------------------------------


def _fingerprint(build_model, given: dict, config: dict) -> tuple | None:
    """What identifies a run: the inputs, the config, the built model's classes, layout and initial weights."""
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(given["train_seed"])
            model = build_model()
            digest = hashlib.sha256(repr(model).encode() + np.ascontiguousarray(given["heldout"]).tobytes())
            for tensor in model.state_dict().values():
                digest.update(tensor.detach().cpu().numpy().tobytes())
            classes = tuple(type(m) for m in model.modules())
    except Exception:  # noqa: BLE001 - no fingerprint: train without keeping the run
        return None
    return tuple(sorted(config.items())), given["draw"], given["train_seed"], classes, digest.hexdigest()


def _run(build_model, config: ConfigProbe, given: dict) -> tuple[BudgetedRun | None, nn.Module | None]:
    """The grader's training run of the design on `given` (trained once, then kept); (None, None) when the
    config is outside LIMITS (nothing trains)."""
    if config.settings is None or config_problems(config.as_dict(), LIMITS):
        return None, None
    settings = config.as_dict()
    key = _fingerprint(build_model, given, settings)
    if key is not None and key in _RUNS:
        return _RUNS[key]
    train = data(given["draw"])
    trained = train_on_budget(build_model, train.x_train, train.y_train, given["heldout"], settings,
                              given["train_seed"], stop_after_s=STOP_AFTER_S)
    if key is not None:
        _RUNS.clear()  # one run kept: a notebook trains at most two seeds, one after the other
        _RUNS[key] = trained
    return trained


def _trained_outputs(model: nn.Module | None) -> np.ndarray | None:
    """The trained model's outputs on 16 fixed random signals (_small_array), None when it fails on them."""
    try:
        with torch.no_grad():
            return _small_array(model(torch.randn(16, 40, generator=torch.Generator().manual_seed(0))))
    except Exception:  # noqa: BLE001 - no diagnosis; the accuracy message stands alone
        return None


def _training_probe(build_model, training_config):
    """given: {"draw", "train_seed", "heldout" (N, 40)} -> {"config": ConfigProbe, "run": BudgetedRun (None when
    the config is outside LIMITS), "outputs": the trained model's _trained_outputs}."""
    def probe(given) -> dict:
        config = probe_config(training_config)
        run, model = _run(build_model, config, given)
        trained = run is not None and run.outcome.error is None
        return {"config": config, "run": run, "outputs": _trained_outputs(model) if trained else None}
    return probe


def check_design(build_model, training_config) -> None:
    """The config is within the limits; the model maps a (N, 40) batch to (N, 10) float logits; and the
    grader's training of it (seed 1's run, shared with the tests after it) does better than chance."""
    training = _training_probe(build_model, training_config)

    def probe(given) -> dict:
        return {**training(given), "uses_cnn1d": _refers_to(build_model, course_cnn, "cnn1d"),
                **_probe_forward(build_model, given["x"], given["torch_seed"])}
    channel.check("ex06.design", probe, seed=1)


def check_accuracy(build_model, training_config, seed: int, hidden: bool = False) -> None:
    """The grader's training of the design reaches THRESHOLD_A test accuracy on held-out signals."""
    channel.check("ex06.accuracy", _training_probe(build_model, training_config), seed=seed, hidden=hidden)


def check_budget(build_model, training_config, seed: int) -> None:
    """The design reaches THRESHOLD_A within the CPU budget."""
    channel.check("ex06.budget", _training_probe(build_model, training_config), seed=seed)


def check_bonus(build_model, training_config, seed: int, hidden: bool = False) -> None:
    """The bonus tier: THRESHOLD_B test accuracy within the CPU budget."""
    channel.check("ex06.bonus", _training_probe(build_model, training_config), seed=seed, hidden=hidden)


def _printed_dead_fraction(model: nn.Module, x: torch.Tensor) -> str:
    try:
        return f"{diagnostics.dead_fraction(model, x, diagnostics.RELU_FAMILY) or 0.0:.3f}"
    except Exception as err:  # noqa: BLE001 - only printed
        return f"cannot be measured ({student_error(err)})"


def measure(build_model, training_config, seed: int) -> None:
    """Print what the tests measure for the design on MNIST-1D's draw `seed` (the numbers for the report).
    Under `course grade` nothing trains here: the test cells train with the grader's seed."""
    if channel.graded():
        print("Graded: the test cells below train your design with the grader's seed and held-out signals.")
        return
    config = probe_config(training_config)
    problem = config_verdict("training_config()", config, LIMITS)
    if problem:
        print(f"{problem}. Allowed: {LIMITS.describe()}")
        return
    d = data(seed)
    run, model = _run(build_model, config, {"draw": seed, "train_seed": seed, "heldout": d.x_test})
    o = run.outcome
    print(f"MNIST-1D draw {seed}: {len(d.y_train)} training and {len(d.y_test)} test signals")
    if o.error:
        print(f"training failed: {o.error}")
        return
    print(f"test accuracy  {float(np.mean(o.predictions == d.y_test)):.3f}   (required {THRESHOLD_A:.2f}, bonus "
          f"{THRESHOLD_B:.2f})")
    print(f"CPU seconds    {run.cpu_seconds:.1f}     (budget {BUDGET_S:g} s on one thread)")
    print(f"dead fraction  {_printed_dead_fraction(model, torch.as_tensor(d.x_train))}   (ReLU-family units "
          "silent on every training signal)")
    print(f"parameters     {o.n_parameters:,}")


# ---- dead_fraction(model, x) ------------------------------------------------------------------------


def probe_mlp(seed: int) -> tuple[nn.Module, torch.Tensor]:
    """An MLP with planted dead units (widths and counts vary with the seed) and x (1100, 6): see
    course_lib.grading.kernel.planted.mlp."""
    spec, x = planted.mlp(seed)
    return planted.build(spec), torch.as_tensor(x)


def _as_number(value) -> float | str:
    """What dead_fraction returned, as a float; else what went wrong, as a message."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, numbers.Real | np.floating | np.integer) and not isinstance(value, bool):
        value = float(value)
        return value if np.isfinite(value) else f"returned {value}"
    return f"returned a {type(value).__name__}, not a number"


def _returned(dead_fraction, model: nn.Module, x: torch.Tensor) -> float | str:
    """dead_fraction(model, x) as a float, or the error it raised as a message."""
    try:
        return _as_number(dead_fraction(copy.deepcopy(model), x.clone()))
    except Exception as err:  # noqa: BLE001 - a student's bug is a failed test, not a crash of the grader
        return f"raised {student_error(err)}"


def _borrows_monitor(dead_fraction) -> bool:
    """True when dead_fraction is imported (not defined in the notebook) or uses DeadUnitMonitor."""
    imported = getattr(dead_fraction, "__module__", "__main__") != "__main__"
    return imported or _refers_to(dead_fraction, diagnostics, "DeadUnitMonitor")


def _dead_fraction_probe(dead_fraction):
    """given: [{"spec", "x"}] planted models -> {"borrows": bool, "returned": [float or message]}."""
    def probe(given) -> dict:
        if _borrows_monitor(dead_fraction):
            return {"borrows": True, "returned": []}
        with torch.random.fork_rng(devices=[]):
            returned = [_returned(dead_fraction, planted.build(m["spec"]), torch.as_tensor(m["x"])) for m in given]
        return {"borrows": False, "returned": returned}
    return probe


def check_dead_fraction(dead_fraction, seed: int, hidden: bool = False) -> None:
    """dead_fraction(model, x) on hand-built models with planted dead units (an MLP; hidden: a CNN too)."""
    channel.check("ex06.dead_fraction", _dead_fraction_probe(dead_fraction), seed=seed, hidden=hidden)


def check_dead_fraction_cnn(dead_fraction, seed: int, hidden: bool = False) -> None:
    """dead_fraction on a 1-D CNN the size of the solution's, with planted dead channels, over MNIST-1D."""
    channel.check("ex06.dead_fraction_cnn", _dead_fraction_probe(dead_fraction), seed=seed, hidden=hidden)
