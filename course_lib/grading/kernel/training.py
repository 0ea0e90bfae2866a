"""Training probes: train the student's model inside a test cell, on the grader's data and seed, and keep the
trained model's predicted class for each held-out input.

A test never reads a number the student computed (`test_acc = 0.99` earns nothing): it calls the student's
model-building function, trains the model with course_lib.train.fit under the grader's seed and measures
nothing itself. What comes back is a `TrainingOutcome` of plain numbers, with the predictions on held-out
*inputs* only: under `course grade` their labels never enter the sandbox, and the judge (course_lib.grading.
judges.training) counts the accuracy on the host.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from course_lib.grading import plain
from course_lib.grading.kernel.probes import student_error
from course_lib.train import fit


@plain.registered
@dataclass(frozen=True)
class TrainingOutcome:
    """Training seconds, dead-unit fraction and parameter count (None where not measured), or an error;
    `predictions` (N_test,) int64 is the trained model's class for each held-out input. `test_accuracy` is
    never set here: the judge counts it from the predictions."""

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


def build(build_model: Callable[[], torch.nn.Module], seed: int) -> torch.nn.Module:
    """build_model() with torch seeded by `seed`; TypeError when it returns no nn.Module."""
    torch.manual_seed(seed)
    model = build_model()
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"the model-building function returned a {type(model).__name__}, not a torch nn.Module")
    return model


def train_and_predict(build_model: Callable[[], torch.nn.Module], x_train, y_train, x_test, epochs: int, lr: float,
                      seed: int, optimizer: str = "adam", batch_size: int = 100,
                      model: torch.nn.Module | None = None) -> tuple[TrainingOutcome, torch.nn.Module | None]:
    """Build with torch seed `seed` (or take `model`), train on (x_train, y_train) (N, ...) and (N,), predict
    x_test. Any exception from the student's code becomes `error`, so one bug costs points, never the grading
    run. Returns the outcome and the trained model (None when building failed)."""
    x_train, y_train, x_test = (torch.as_tensor(a) for a in (x_train, y_train, x_test))
    try:
        model = model if model is not None else build(build_model, seed)
    except Exception as err:  # noqa: BLE001 - a student's bug is data here, not a crash of the grader
        return TrainingOutcome(error=student_error(err)), None
    try:
        start = time.perf_counter()
        fit(model, (x_train, y_train), epochs, lr, optimizer=optimizer, batch_size=batch_size, seed=seed,
            progress=False)
        seconds = time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            predictions = predicted_classes(model(x_test))
        n_parameters = sum(p.numel() for p in model.parameters())
        return TrainingOutcome(None, seconds, None, n_parameters, predictions=predictions), model
    except Exception as err:  # noqa: BLE001
        return TrainingOutcome(error=student_error(err)), model
