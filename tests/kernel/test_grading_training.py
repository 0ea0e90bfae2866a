"""Training probes train the student's builder under the grader's seed and keep the predictions on held-out
inputs; the judge (host side) counts the accuracy itself against labels the probe never saw."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from course_lib.data import moons
from course_lib.diagnostics import dead_fraction
from course_lib.grading.judges.training import (
    Hint,
    accuracy_verdict,
    heldout_mnist1d,
    near_chance,
    scored,
)
from course_lib.grading.kernel.training import TrainingOutcome, train_and_predict
from course_lib.nn import mlp

torch.set_num_threads(1)
DATA = moons(n=400, noise=0.1, seed=0)
LABELS = DATA.numpy().y_test


def _train(build, epochs=20, lr=1e-2, seed=0):
    return train_and_predict(build, DATA.x_train, DATA.y_train, DATA.x_test, epochs, lr, seed)


def test_a_relu_mlp_trains_and_reports_predictions_time_and_size_but_no_accuracy():
    outcome, model = _train(lambda: mlp([2, 32, 32, 2]), epochs=30)
    assert outcome.error is None and outcome.test_accuracy is None and outcome.train_seconds > 0
    assert outcome.predictions.shape == LABELS.shape and outcome.predictions.dtype == np.int64
    assert scored(outcome, LABELS).test_accuracy > 0.9
    assert outcome.n_parameters == 2 * 32 + 32 + 32 * 32 + 32 + 32 * 2 + 2 == sum(p.numel() for p in model.parameters())


def test_same_seed_same_predictions_different_seed_different_model():
    a, b, c = (_train(lambda: mlp([2, 16, 2]), epochs=5, seed=s)[0] for s in (3, 3, 4))
    assert np.array_equal(a.predictions, b.predictions)
    assert scored(a, LABELS).test_accuracy != scored(c, LABELS).test_accuracy


def test_a_builder_that_raises_or_returns_no_module_is_an_error_outcome():
    assert "ZeroDivisionError" in _train(lambda: 1 / 0, epochs=1)[0].error
    assert "not a torch nn.Module" in _train(lambda: "net", epochs=1)[0].error


def test_a_linear_model_fails_with_the_hint_that_applies():
    outcome, _ = _train(lambda: mlp([2, 16, 2], activation="identity"))
    accuracy = scored(outcome, LABELS).test_accuracy
    hint = Hint(lambda o: o.test_accuracy < 0.92, "is the activation applied between the layers?")
    message = accuracy_verdict("moons", outcome, LABELS, 0.95, [hint])
    assert message.startswith(f"moons: test accuracy {accuracy:.3f}, below the required 0.95")
    assert message.endswith("is the activation applied between the layers?")


def test_verdict_passes_at_threshold_and_enforces_the_time_budget():
    outcome, _ = _train(lambda: mlp([2, 32, 2]), epochs=30)
    assert accuracy_verdict("moons", outcome, LABELS, scored(outcome, LABELS).test_accuracy) is None
    assert "over the 0 s budget" in accuracy_verdict("moons", outcome, LABELS, 0.0, max_seconds=0.0)


def test_the_verdict_counts_the_accuracy_from_the_predictions_not_the_reported_figure():
    outcome, _ = _train(lambda: mlp([2, 16, 2], activation="identity"))
    forged = replace(outcome, test_accuracy=0.99)
    message = accuracy_verdict("moons", forged, LABELS, 0.95)
    assert message.startswith(f"moons: test accuracy {scored(outcome, LABELS).test_accuracy:.3f}, below")
    perfect = replace(outcome, predictions=LABELS.copy())
    assert accuracy_verdict("moons", perfect, LABELS, 0.95) is None


@pytest.mark.parametrize("predictions", [None, np.zeros(3, dtype=np.int64), np.zeros((len(LABELS), 2))])
def test_missing_or_misshapen_predictions_fail_with_a_message(predictions):
    message = accuracy_verdict("moons", TrainingOutcome(0.99, 1.0, predictions=predictions), LABELS, 0.5)
    assert message == ("moons: building or training the model failed: the model must give one class per held-out "
                       f"example ({len(LABELS)})")


@pytest.mark.parametrize("data", [None, "passed", 10**400, {"test_accuracy": 1.0}, [1, 2]])
def test_data_that_is_no_training_outcome_fails_with_a_message(data):
    assert accuracy_verdict("moons", data, LABELS, 0.5) == "moons: the check returned no training outcome"


def test_near_chance_is_true_only_near_guessing():
    assert near_chance(2)(TrainingOutcome(test_accuracy=0.55))
    assert not near_chance(2)(TrainingOutcome(test_accuracy=0.8))


def test_the_dead_fraction_is_none_without_rectifiers_and_counts_dead_units_with_them():
    _, tanh_model = _train(lambda: mlp([2, 16, 2], activation="tanh"), epochs=3)
    assert dead_fraction(tanh_model, torch.as_tensor(DATA.x_train)) is None
    relu = mlp([2, 4, 2])
    with torch.no_grad():
        relu[0].weight.zero_()
        relu[0].bias.copy_(torch.tensor([-1.0, -1.0, 1.0, 1.0]))  # two units never fire
    assert dead_fraction(relu, torch.as_tensor(DATA.x_train)) == 0.5


def test_a_held_out_draw_is_fresh_for_each_seed_stable_for_one_and_never_cached_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("RECTIFIED_CACHE", str(tmp_path))
    x, y = heldout_mnist1d(3_456_789_012, 200)
    x2, _ = heldout_mnist1d(3_456_789_013, 200)
    assert x.shape == (200, 40) and y.shape == (200,) and set(np.unique(y)) == set(range(10))
    assert x is heldout_mnist1d(3_456_789_012, 200)[0] and not np.array_equal(x, x2)
    assert list(tmp_path.iterdir()) == []
