"""Judging training checks on the host: the accuracy counted from the sandbox's predictions against labels
that never left this side, with a hint naming the likely cause of a low one.

Also the held-out data: `heldout_mnist1d` draws fresh MNIST-1D examples for a secret seed, never cached on
disk (a sandbox is shown the data cache) and kept in this process for the checks that share them.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from course_lib.data import mnist1d, mnist1d_uncached
from course_lib.grading.kernel.training import TrainingOutcome


def scored(outcome: TrainingOutcome, labels: np.ndarray) -> TrainingOutcome:
    """The outcome with test_accuracy counted from its predictions against `labels` (N,); predictions of the
    wrong shape or type become an error."""
    if outcome.error:
        return outcome
    predictions = outcome.predictions
    if not isinstance(predictions, np.ndarray) or predictions.shape != np.shape(labels):
        return replace(outcome, test_accuracy=None,
                       error=f"the model must give one class per held-out example ({len(labels)})")
    return replace(outcome, test_accuracy=float(np.mean(predictions == np.asarray(labels))))


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
    if not isinstance(outcome, TrainingOutcome):
        return f"{name}: the check returned no training outcome"
    outcome = scored(outcome, labels)
    if outcome.error:
        return f"{name}: building or training the model failed: {outcome.error}"
    if max_seconds is not None and (outcome.train_seconds or 0.0) > max_seconds:
        return f"{name}: training took {outcome.train_seconds:.1f} s, over the {max_seconds:g} s budget"
    if outcome.test_accuracy >= threshold:
        return None
    hint = next((h.message for h in hints if h.applies(outcome)), "")
    return f"{name}: test accuracy {outcome.test_accuracy:.3f}, below the required {threshold:.2f}" + (
        f": {hint}" if hint else "")


@lru_cache(maxsize=8)
def heldout_mnist1d(seed: int, num_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """A held-out MNIST-1D draw for a (secret) seed: x (N, 40) float32 and y (N,) int64, never on disk."""
    x, y = mnist1d_uncached(num_samples, seed)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def heldout_or_public_test(params: dict, num_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Held-out MNIST-1D for the class's secret seed under `course grade` (`num_samples` of them); locally (no
    shared seed) the public test split of the 4000-sample draw, as the notebooks' own numbers use."""
    if params.get("shared_seed") is None:
        data = mnist1d(num_samples=4000)
        return data.x_test, data.y_test
    return heldout_mnist1d(params["shared_seed"], num_samples)
