"""Training under a CPU budget: the student's training configuration within limits, one thread, CPU seconds.

An exercise that asks for "accuracy A within B seconds" must measure the seconds the same way on every machine:
torch runs on one thread while the probe trains, and the time is the process's CPU time (`time.process_time`),
which other programs sharing the machine inflate far less than wall-clock time. A run that goes far past its
budget is stopped (`stop_after_s`), so one slow submission cannot hold up a whole grading run.

    limits = ConfigLimits(epochs=(1, 60), batch_size=(16, 512))
    config = probe_config(training_config)                               # plain data, whatever it returned
    message = config_verdict("training_config()", config, limits)      # None when within the limits
    run, model = train_on_budget(build_model, data, config.as_dict(), seed=0, stop_after_s=24)
    run.outcome.predictions, run.cpu_seconds, run.stopped                # plain data; model: the trained model
"""

import math
import numbers
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np
import torch

from course_lib.data import Split
from course_lib.grading import plain
from course_lib.grading.training import TrainingOutcome, dead_fraction, train_and_measure
from course_lib.train import one_thread

CONFIG_KEYS = ("epochs", "lr", "optimizer", "batch_size")


@dataclass(frozen=True)
class ConfigLimits:
    """Allowed training settings: inclusive (low, high) ranges and the optimizer names `course_lib.train` knows."""

    epochs: tuple[int, int] = (1, 60)
    batch_size: tuple[int, int] = (16, 512)
    lr: tuple[float, float] = (1e-5, 1.0)
    optimizers: tuple[str, ...] = ("sgd", "adam", "adamw")

    def describe(self) -> str:
        return (f"epochs {self.epochs[0]}..{self.epochs[1]}, lr {self.lr[0]:g}..{self.lr[1]:g}, "
                f"optimizer one of {', '.join(self.optimizers)}, batch_size {self.batch_size[0]}.."
                f"{self.batch_size[1]}")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


@plain.registered
@dataclass(frozen=True, repr=False)
class Shown:
    """A config key or value that is not a plain scalar, kept as its repr: it is within no limit, and messages
    show it as the student wrote it."""

    text: str

    def __repr__(self) -> str:
        return self.text


@plain.registered
@dataclass(frozen=True)
class ConfigProbe:
    """What a training_config() function gave, as plain data: `settings`, the (key, value) pairs of the Mapping
    it returned (see `plain_setting`); else `type_name`, what it returned instead; or `error` when it raised."""

    settings: list | None = None
    type_name: str | None = None
    error: str | None = None

    def as_dict(self) -> dict:
        return dict(self.settings or ())


def plain_setting(value):
    """A config key or value as plain data: builtin scalars as they are, numpy scalars as the builtin they hold,
    anything else as Shown(its repr)."""
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        value = value.item()
    if type(value) in (bool, int, float, str, type(None)):
        return value
    return Shown(repr(value))


def probe_config(training_config: Callable[[], Mapping]) -> ConfigProbe:
    """Call the student's training_config() and keep what it gave as plain data."""
    try:
        config = training_config()
        if not isinstance(config, Mapping):
            return ConfigProbe(type_name=type(config).__name__)
        return ConfigProbe([(plain_setting(k), plain_setting(v)) for k, v in config.items()])
    except Exception as err:  # noqa: BLE001 - a student's bug is data here, not a crash of the grader
        return ConfigProbe(error=f"{type(err).__name__}: {err}")


def _not_a_dict(type_name: str) -> str:
    return f"returned a {type_name}, not a dict with keys {', '.join(CONFIG_KEYS)}"


def config_problems(config, limits: ConfigLimits) -> list[str]:
    """What is wrong with a training config (a dict with exactly CONFIG_KEYS); empty when it is within limits."""
    if not isinstance(config, Mapping):
        return [_not_a_dict(type(config).__name__)]
    problems = []
    missing = [k for k in CONFIG_KEYS if k not in config]
    unknown = [repr(k) for k in config if k not in CONFIG_KEYS]
    if missing:
        problems.append(f"missing key(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown key(s) {', '.join(unknown)}")
    for key, (low, high) in (("epochs", limits.epochs), ("batch_size", limits.batch_size)):
        if key in config and not (_is_int(config[key]) and low <= config[key] <= high):
            problems.append(f"{key}={config[key]!r} (allowed: an integer in {low}..{high})")
    if "lr" in config and not (_is_real(config["lr"]) and limits.lr[0] <= config["lr"] <= limits.lr[1]):
        problems.append(f"lr={config['lr']!r} (allowed: a number in {limits.lr[0]:g}..{limits.lr[1]:g})")
    if "optimizer" in config and config["optimizer"] not in limits.optimizers:
        problems.append(f"optimizer={config['optimizer']!r} (allowed: {', '.join(map(repr, limits.optimizers))})")
    return problems


def config_verdict(name: str, config: ConfigProbe, limits: ConfigLimits) -> str | None:
    """None if the probed config is within `limits`; else one message: what the function raised, or every
    problem with what it returned."""
    if config.error:
        return f"{name} raised {config.error}"
    problems = (config_problems(config.as_dict(), limits) if config.settings is not None
                else [_not_a_dict(config.type_name)])
    if not problems:
        return None
    return f"{name}: the training configuration is outside the allowed limits: {'; '.join(problems)}"


class OverBudget(Exception):
    """Raised inside training (from a forward pre-hook) once the CPU time passes the stop limit."""


@plain.registered
@dataclass(frozen=True)
class BudgetedRun:
    """One training run as plain data: its outcome (with the held-out predictions), the CPU seconds it took
    (build, train, evaluate) and whether it was stopped for running past `stop_after_s`."""

    outcome: TrainingOutcome
    cpu_seconds: float
    stopped: bool = False


def dead_fraction_or_none(model: torch.nn.Module, x: torch.Tensor) -> float | None:
    """training.dead_fraction of `model` over x, and None where that has none to give: no ReLU-family or maxout
    layer, or one activation instance shared between layers."""
    try:
        return dead_fraction(model, x)
    except ValueError:
        return None


def train_on_budget(build_model: Callable[[], torch.nn.Module], data: Split, config: Mapping, seed: int,
                    stop_after_s: float, measure_dead: bool = True) -> tuple[BudgetedRun, torch.nn.Module | None]:
    """train_and_measure(build_model, data, seed=seed, **config) on one thread, timed in CPU seconds: the run,
    and the trained model (None when building failed).

    `config` holds CONFIG_KEYS (check it with `config_verdict` first). Training stops with an error outcome once
    it has used `stop_after_s` CPU seconds: a forward pre-hook on the built model checks the clock on every
    training-mode forward pass (evaluation is never stopped). The dead fraction (over the training inputs) is
    measured after the clock stops, with `dead_fraction_or_none`, so a model without ReLU-family layers (tanh,
    GELU, a linear baseline) trains and is judged like any other."""
    built: list[torch.nn.Module] = []
    start = time.process_time()

    def check_clock(module, args):
        if module.training and time.process_time() - start > stop_after_s:
            raise OverBudget(f"training stopped after {stop_after_s:g} CPU seconds")

    def build_and_watch():
        model = build_model()
        if isinstance(model, torch.nn.Module):
            built.append(model)
            built.append(model.register_forward_pre_hook(check_clock))
        return model

    with one_thread():
        outcome = train_and_measure(build_and_watch, data, epochs=config["epochs"], lr=config["lr"], seed=seed,
                                    optimizer=config["optimizer"], batch_size=config["batch_size"],
                                    measure_dead=False)
    seconds = time.process_time() - start
    if built:
        built[1].remove()
        if measure_dead and outcome.error is None:
            with one_thread():
                dead = dead_fraction_or_none(built[0], torch.as_tensor(data.x_train))
            outcome = replace(outcome, dead_fraction=dead)
    stopped = outcome.error is not None and outcome.error.startswith(OverBudget.__name__)
    return BudgetedRun(outcome, seconds, stopped), built[0] if built else None


def budget_verdict(name: str, run: BudgetedRun, budget_s: float, hint: str = "") -> str | None:
    """None if the run finished within `budget_s` CPU seconds; else a message with the measured time and `hint`."""
    if run.outcome.error and not run.stopped:
        return f"{name}: building or training the model failed: {run.outcome.error}"
    if run.cpu_seconds <= budget_s and not run.stopped:
        return None
    took = f"was stopped after {run.cpu_seconds:.1f}" if run.stopped else f"took {run.cpu_seconds:.1f}"
    return f"{name}: training {took} CPU seconds, over the {budget_s:g} s budget" + (f": {hint}" if hint else "")
