"""Training probes train the student's builder under the grader's seed and judge plain numbers."""

from dataclasses import replace

import numpy as np
import torch

from course_lib.data import moons
from course_lib.grading.training import Hint, TrainingOutcome, accuracy_verdict, near_chance, train_and_measure
from course_lib.nn import mlp

torch.set_num_threads(1)
DATA = moons(n=400, noise=0.1, seed=0)
LABELS = DATA.numpy().y_test


def test_a_relu_mlp_trains_and_reports_accuracy_time_dead_fraction_and_size():
    outcome = train_and_measure(lambda: mlp([2, 32, 32, 2]), DATA, epochs=30, lr=1e-2, seed=0, measure_dead=True)
    assert outcome.error is None and outcome.test_accuracy > 0.9
    assert 0 <= outcome.dead_fraction <= 1 and outcome.train_seconds > 0
    assert outcome.n_parameters == 2 * 32 + 32 + 32 * 32 + 32 + 32 * 2 + 2


def test_same_seed_same_outcome_different_seed_different_model():
    a = train_and_measure(lambda: mlp([2, 16, 2]), DATA, epochs=5, lr=1e-2, seed=3)
    b = train_and_measure(lambda: mlp([2, 16, 2]), DATA, epochs=5, lr=1e-2, seed=3)
    c = train_and_measure(lambda: mlp([2, 16, 2]), DATA, epochs=5, lr=1e-2, seed=4)
    assert a.test_accuracy == b.test_accuracy and a.test_accuracy != c.test_accuracy


def test_a_builder_that_raises_or_returns_no_module_is_an_error_outcome():
    assert "ZeroDivisionError" in train_and_measure(lambda: 1 / 0, DATA, 1, 1e-2, seed=0).error
    assert "not a torch nn.Module" in train_and_measure(lambda: "net", DATA, 1, 1e-2, seed=0).error


def test_a_linear_model_fails_with_the_hint_that_applies():
    outcome = train_and_measure(lambda: mlp([2, 16, 2], activation="identity"), DATA, 20, 1e-2, seed=0)
    hint = Hint(lambda o: o.test_accuracy < 0.92, "is the activation applied between the layers?")
    message = accuracy_verdict("moons", outcome, LABELS, 0.95, [hint])
    assert message.startswith(f"moons: test accuracy {outcome.test_accuracy:.3f}, below the required 0.95")
    assert message.endswith("is the activation applied between the layers?")


def test_verdict_passes_at_threshold_and_enforces_the_time_budget():
    outcome = train_and_measure(lambda: mlp([2, 32, 2]), DATA, 30, 1e-2, seed=0)
    assert accuracy_verdict("moons", outcome, LABELS, outcome.test_accuracy) is None
    assert "over the 0 s budget" in accuracy_verdict("moons", outcome, LABELS, 0.0, max_seconds=0.0)


def test_the_verdict_counts_the_accuracy_from_the_predictions_not_the_reported_figure():
    outcome = train_and_measure(lambda: mlp([2, 16, 2], activation="identity"), DATA, 20, 1e-2, seed=0)
    forged = replace(outcome, test_accuracy=0.99)
    message = accuracy_verdict("moons", forged, LABELS, 0.95)
    assert message.startswith(f"moons: test accuracy {outcome.test_accuracy:.3f}, below")
    perfect = replace(outcome, predictions=LABELS.copy())
    assert accuracy_verdict("moons", perfect, LABELS, 0.95) is None


def test_missing_or_misshapen_predictions_fail_with_a_message():
    for predictions in (None, np.zeros(3, dtype=np.int64), np.zeros((len(LABELS), 2))):
        message = accuracy_verdict("moons", TrainingOutcome(0.99, 1.0, predictions=predictions), LABELS, 0.5)
        assert message == f"moons: building or training the model failed: the model must give one class per " \
                          f"held-out example ({len(LABELS)})"


def test_near_chance_is_true_only_near_guessing():
    assert near_chance(2)(TrainingOutcome(test_accuracy=0.55))
    assert not near_chance(2)(TrainingOutcome(test_accuracy=0.8))


def test_a_model_without_rectifiers_trains_and_reports_no_dead_fraction():
    outcome = train_and_measure(lambda: mlp([2, 16, 2], activation="tanh"), DATA, 3, 1e-2, seed=0, measure_dead=True)
    assert outcome.error is None and outcome.dead_fraction is None
