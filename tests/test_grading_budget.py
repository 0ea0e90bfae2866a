"""Training under a CPU budget: limits on the config, one thread, CPU seconds, runs stopped past the limit."""

import json
import time

import numpy as np
import pytest
import torch

from course_lib.data import moons
from course_lib.grading import plain
from course_lib.grading.budget import (
    BudgetedRun,
    ConfigLimits,
    ConfigProbe,
    Shown,
    budget_verdict,
    config_problems,
    config_verdict,
    dead_fraction_or_none,
    one_thread,
    probe_config,
    train_on_budget,
)
from course_lib.grading.training import TrainingOutcome
from course_lib.nn import mlp
from course_lib.train import evaluate

DATA = moons(n=400, noise=0.1, seed=0)
LIMITS = ConfigLimits(epochs=(1, 60), batch_size=(16, 512), lr=(1e-5, 1.0))
GOOD = {"epochs": 20, "lr": 1e-2, "optimizer": "adam", "batch_size": 32}


def test_a_config_within_the_limits_has_no_problem():
    assert config_problems(GOOD, LIMITS) == []
    assert config_problems({**GOOD, "epochs": 60, "batch_size": 16, "lr": 1}, LIMITS) == []
    assert config_verdict("cfg", probe_config(lambda: GOOD), LIMITS) is None


@pytest.mark.parametrize("change, named", [
    ({"epochs": 61}, "epochs=61"), ({"epochs": 0}, "epochs=0"), ({"epochs": 20.0}, "epochs=20.0"),
    ({"epochs": True}, "epochs=True"), ({"batch_size": 8}, "batch_size=8"), ({"batch_size": 1024}, "batch_size=1024"),
    ({"lr": 5.0}, "lr=5.0"), ({"lr": float("nan")}, "lr=nan"), ({"lr": "0.01"}, "lr='0.01'"),
    ({"optimizer": "rmsprop"}, "optimizer='rmsprop'"), ({"momentum": 0.9}, "unknown key(s) 'momentum'"),
])
def test_each_setting_outside_the_limits_is_named(change, named):
    problems = config_problems({**GOOD, **change}, LIMITS)
    assert len(problems) == 1 and named in problems[0]


def test_missing_keys_and_a_non_dict_are_problems():
    assert config_problems({"epochs": 5}, LIMITS) == ["missing key(s) lr, optimizer, batch_size"]
    assert "not a dict" in config_problems([("epochs", 5)], LIMITS)[0]
    message = config_verdict("cfg", probe_config(lambda: {**GOOD, "epochs": 100, "batch_size": 2}), LIMITS)
    assert message.startswith("cfg: the training configuration is outside the allowed limits")
    assert "epochs=100" in message and "batch_size=2" in message
    assert config_verdict("cfg", probe_config(lambda: [("epochs", 5)]), LIMITS).endswith(
        "limits: returned a list, not a dict with keys epochs, lr, optimizer, batch_size")
    raised = config_verdict("cfg", probe_config(lambda: 1 / 0), LIMITS)
    assert raised == "cfg raised ZeroDivisionError: division by zero"


def _round_trip(value):
    return plain.decode(json.loads(json.dumps(plain.encode(value))))


def test_a_probed_config_is_plain_data_that_keeps_what_the_limits_and_messages_need():
    config = {**GOOD, "epochs": np.int64(20), "lr": np.float32(0.5), 3: "x", "momentum": torch.tensor(0.9)}
    probed = _round_trip(probe_config(lambda: config))
    assert probed == ConfigProbe([("epochs", 20), ("lr", 0.5), ("optimizer", "adam"), ("batch_size", 32),
                                  (3, "x"), ("momentum", Shown("tensor(0.9000)"))])
    assert type(probed.as_dict()["epochs"]) is int and type(probed.as_dict()["lr"]) is float
    message = config_verdict("cfg", probed, LIMITS)
    assert message.endswith("unknown key(s) 3, 'momentum'")  # numpy numbers are within the limits like builtins
    tensor_lr = config_verdict("cfg", _round_trip(probe_config(lambda: {**GOOD, "lr": torch.tensor(0.01)})), LIMITS)
    assert tensor_lr.endswith("lr=tensor(0.0100) (allowed: a number in 1e-05..1)")  # a repr is within no limit


def test_one_thread_sets_one_thread_and_restores_the_setting():
    before = torch.get_num_threads()
    with one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_a_run_trains_on_one_thread_and_returns_the_trained_model_with_its_cpu_seconds():
    threads = []

    def build():
        threads.append(torch.get_num_threads())
        return mlp([2, 32, 2])

    run, model = train_on_budget(build, DATA, GOOD, seed=0, stop_after_s=60)
    assert threads == [1] and run.outcome.error is None and not run.stopped
    assert run.cpu_seconds > 0 and run.outcome.dead_fraction is not None
    _, accuracy = evaluate(model, DATA.x_test, DATA.y_test)
    assert accuracy == pytest.approx(run.outcome.test_accuracy) and accuracy > 0.9
    assert np.mean(run.outcome.predictions == DATA.y_test) == run.outcome.test_accuracy
    assert not model._forward_pre_hooks  # the clock is detached from the model the caller gets
    back = _round_trip(run)  # the run is plain data: what a judge outside the sandbox reads
    assert back.cpu_seconds == run.cpu_seconds and np.array_equal(back.outcome.predictions, run.outcome.predictions)


def test_the_time_is_cpu_time_so_waiting_does_not_count():
    def build_slowly():
        time.sleep(0.5)
        return mlp([2, 8, 2])

    run, _ = train_on_budget(build_slowly, DATA, {**GOOD, "epochs": 1}, seed=0, stop_after_s=60)
    assert run.outcome.error is None and run.cpu_seconds < 0.5


def test_a_run_past_the_stop_limit_is_stopped_and_fails_the_budget():
    run, _ = train_on_budget(lambda: mlp([2, 64, 64, 2]), DATA, {**GOOD, "epochs": 60}, seed=0, stop_after_s=0.0)
    assert run.stopped and run.outcome.error.startswith("OverBudget") and run.outcome.test_accuracy is None
    message = budget_verdict("fit", run, budget_s=10, hint="fewer epochs")
    assert message.startswith("fit: training was stopped after") and message.endswith("budget: fewer epochs")


def test_budget_verdict_passes_within_the_budget_and_reports_the_seconds_over_it():
    run = BudgetedRun(TrainingOutcome(test_accuracy=0.9), cpu_seconds=3.0)
    assert budget_verdict("fit", run, budget_s=3.0) is None
    assert budget_verdict("fit", run, budget_s=2.0) == "fit: training took 3.0 CPU seconds, over the 2 s budget"


def test_a_build_error_is_reported_as_such_not_as_time():
    run, model = train_on_budget(lambda: 1 / 0, DATA, GOOD, seed=0, stop_after_s=60)
    assert model is None and not run.stopped
    assert "ZeroDivisionError" in budget_verdict("fit", run, budget_s=10)


def test_a_model_without_relu_family_layers_trains_and_has_no_dead_fraction():
    run, _ = train_on_budget(lambda: mlp([2, 16, 2], activation="tanh"), DATA, GOOD, seed=0, stop_after_s=60)
    assert run.outcome.error is None and run.outcome.test_accuracy > 0.8 and run.outcome.dead_fraction is None


def test_dead_fraction_or_none_matches_a_unit_count_by_hand():
    model = torch.nn.Sequential(torch.nn.Linear(1, 4), torch.nn.ReLU())
    with torch.no_grad():
        model[0].weight[:] = torch.tensor([[1.0], [-1.0], [0.0], [0.0]])
        model[0].bias[:] = torch.tensor([0.0, 0.0, 0.0, -1.0])  # units 2 (always 0) and 3 (always -1) are dead
    x = torch.linspace(-1, 1, 11).unsqueeze(1)
    assert dead_fraction_or_none(model, x) == 0.5
    assert dead_fraction_or_none(torch.nn.Sequential(torch.nn.Linear(1, 4), torch.nn.Tanh()), x) is None
    shared = torch.nn.ReLU()
    assert dead_fraction_or_none(torch.nn.Sequential(torch.nn.Linear(1, 4), shared, torch.nn.Linear(4, 4), shared),
                                 x) is None
