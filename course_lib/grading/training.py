"""Training probes: train the student's model inside the locked test cell, on the grader's data and seed.

A test never reads a number the student computed (`test_acc = 0.99` earns nothing): it calls the student's
model-building function, trains the model with course_lib.train.fit under the grader's seed and budget, and
measures it on held-out data the student's code never saw. What comes back is a `TrainingOutcome` of plain
numbers, including the trained model's predicted class for every held-out example. `accuracy_verdict` turns
it into pass or a teaching message, counting the correct predictions itself against labels the judge
re-creates (so an accuracy computed, or patched, in the student's kernel never decides anything).
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from course_lib.data import Split
from course_lib.diagnostics import MONITORED, DeadUnitMonitor
from course_lib.grading import plain
from course_lib.train import fit


@plain.registered
@dataclass(frozen=True)
class TrainingOutcome:
    """Test accuracy, training seconds, dead-unit fraction and parameter count (None where not measured), or
    an error; `predictions` (N_test,) int64 is the trained model's class for each held-out example, from which
    `scored` re-computes the accuracy outside the student's code."""

    test_accuracy: float | None = None
    train_seconds: float | None = None
    dead_fraction: float | None = None
    n_parameters: int | None = None
    error: str | None = None
    predictions: np.ndarray | None = None


def predicted_classes(scores) -> np.ndarray:
    """Argmax class per row of a scores array or tensor (N, C), as int64 (N,)."""
    scores = scores.detach().cpu().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores)
    return scores.argmax(axis=1).astype(np.int64)


def scored(outcome: TrainingOutcome, labels: np.ndarray) -> TrainingOutcome:
    """The outcome with test_accuracy counted from its predictions against `labels` (N,); predictions of the
    wrong shape or type become an error. Judges call this with labels they re-created themselves."""
    if outcome.error:
        return outcome
    predictions = outcome.predictions
    if not isinstance(predictions, np.ndarray) or predictions.shape != np.shape(labels):
        return replace(outcome, test_accuracy=None,
                       error=f"the model must give one class per held-out example ({len(labels)})")
    return replace(outcome, test_accuracy=float(np.mean(predictions == np.asarray(labels))))


def _build(build_model: Callable[[], torch.nn.Module], seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model()
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"the model-building function returned a {type(model).__name__}, not a torch nn.Module")
    return model


def dead_fraction(model: torch.nn.Module, x: torch.Tensor) -> float | None:
    """DeadUnitMonitor's fraction of dead units over `x`, or None if the model has no ReLU-family or maxout
    layer; ValueError when one activation instance is shared between layers (the monitor refuses to mix them)."""
    if not any(isinstance(m, MONITORED) for m in model.modules()):
        return None
    with DeadUnitMonitor(model) as monitor:
        monitor.observe(x)
        return float(monitor.dead_fraction())


def train_and_measure(build_model: Callable[[], torch.nn.Module], data: Split, epochs: int, lr: float, seed: int,
                      optimizer: str = "adam", batch_size: int = 100, measure_dead: bool = False) -> TrainingOutcome:
    """Build with torch seed `seed`, train on data's training split, measure on its test split.

    Any exception from the student's code becomes `error`, so one bug costs points, never the grading run."""
    data = data.torch()
    try:
        model = _build(build_model, seed)
        start = time.perf_counter()
        fit(model, (data.x_train, data.y_train), epochs, lr, optimizer=optimizer, batch_size=batch_size,
            seed=seed, progress=False)
        seconds = time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            predictions = predicted_classes(model(data.x_test))
        dead = dead_fraction(model, data.x_train) if measure_dead else None
        n_parameters = sum(p.numel() for p in model.parameters())
        outcome = TrainingOutcome(None, seconds, dead, n_parameters, predictions=predictions)
        return scored(outcome, data.y_test.numpy())
    except Exception as err:  # noqa: BLE001 - a student's bug is data here, not a crash of the grader
        return TrainingOutcome(error=f"{type(err).__name__}: {err}")


@dataclass(frozen=True)
class Hint:
    """A message shown when `applies(outcome)` is true, naming the likely cause of a low accuracy."""

    applies: Callable[[TrainingOutcome], bool]
    message: str


def near_chance(n_classes: int, margin: float = 0.1) -> Callable[[TrainingOutcome], bool]:
    """True when the test accuracy is within `margin` of guessing."""
    return lambda outcome: outcome.test_accuracy is not None and outcome.test_accuracy < 1 / n_classes + margin


def accuracy_verdict(name: str, outcome: TrainingOutcome, labels: np.ndarray, threshold: float,
                     hints: Sequence[Hint] = (), max_seconds: float | None = None) -> str | None:
    """None if the trained model's predictions reach `threshold` accuracy against `labels` (within
    `max_seconds` of training, if given); else a message with the measured figure and the first hint that
    applies. The accuracy is always counted here, from the predictions (`scored`)."""
    outcome = scored(outcome, labels)
    if outcome.error:
        return f"{name}: building or training the model failed: {outcome.error}"
    if max_seconds is not None and outcome.train_seconds > max_seconds:
        return f"{name}: training took {outcome.train_seconds:.1f} s, over the {max_seconds:g} s budget"
    if outcome.test_accuracy >= threshold:
        return None
    hint = next((h.message for h in hints if h.applies(outcome)), "")
    return f"{name}: test accuracy {outcome.test_accuracy:.3f}, below the required {threshold:.2f}" + (
        f": {hint}" if hint else "")
