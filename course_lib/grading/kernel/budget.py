"""Training under a CPU budget, the kernel's half: the student's training configuration as plain data, checked
against public limits, and one training run on one thread that stops itself far past the budget.

    config = probe_config(training_config)          # plain data, whatever the student's function returned
    config_problems(config.as_dict(), limits)       # [] when within the limits (the judge asks again)
    run, model = train_on_budget(build_model, data, heldout_x, config.as_dict(), seed, stop_after_s=24)
    run.outcome.predictions, run.cpu_seconds, run.stopped

The CPU seconds measured here (`time.process_time`, this process only) are what a student sees locally.
Under `course grade` they decide nothing: the host reads the whole submission's CPU time from outside the
sandbox (every cell, thread and child process), so a patched clock, a fork or pretraining in another cell
changes nothing; see course_lib.grading.judges.ex06.
"""

import math
import numbers
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from course_lib.grading import plain
from course_lib.grading.kernel.probes import student_error
from course_lib.grading.kernel.training import TrainingOutcome, train_and_predict
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
        return ConfigProbe(error=student_error(err))


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
    """One training run as plain data: its outcome (with the held-out predictions), the CPU seconds this
    process spent building, training and predicting, and whether it was stopped past `stop_after_s`."""

    outcome: TrainingOutcome
    cpu_seconds: float
    stopped: bool = False


def train_on_budget(build_model: Callable[[], torch.nn.Module], x_train, y_train, x_test, config: Mapping,
                    seed: int, stop_after_s: float) -> tuple[BudgetedRun, torch.nn.Module | None]:
    """train_and_predict with `config` (CONFIG_KEYS, within limits) on one thread, timed in CPU seconds: the
    run, and the trained model (None when building failed). Training stops with an error outcome once it has
    used `stop_after_s` CPU seconds: a forward pre-hook checks the clock on every training-mode forward pass."""
    start = time.process_time()

    def check_clock(module, args):
        if module.training and time.process_time() - start > stop_after_s:
            raise OverBudget(f"training stopped after {stop_after_s:g} CPU seconds")

    def build_and_watch():
        model = build_model()
        if isinstance(model, torch.nn.Module):
            model.register_forward_pre_hook(check_clock)
        return model

    with one_thread():
        outcome, model = train_and_predict(build_and_watch, x_train, y_train, x_test, epochs=config["epochs"],
                                           lr=config["lr"], seed=seed, optimizer=config["optimizer"],
                                           batch_size=config["batch_size"])
    seconds = time.process_time() - start
    stopped = outcome.error is not None and outcome.error.startswith(OverBudget.__name__)
    return BudgetedRun(outcome, seconds, stopped), model
