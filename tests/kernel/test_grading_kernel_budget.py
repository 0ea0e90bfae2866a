"""The kernel's half of a CPU budget: limits on the config, one thread, CPU seconds, runs stopped past the limit.
(The budget itself is judged on the host: tests/integration/test_grading_ex06.py.)"""

import json
import time

import numpy as np
import pytest
import torch

from course_lib.data import moons
from course_lib.grading import plain
from course_lib.grading.kernel.budget import (
    ConfigLimits,
    ConfigProbe,
    Shown,
    config_problems,
    config_verdict,
    probe_config,
    train_on_budget,
)
from course_lib.nn import mlp
from course_lib.train import evaluate, one_thread

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


def _train(build, config=GOOD, stop_after_s=60.0):
    return train_on_budget(build, DATA.x_train, DATA.y_train, DATA.x_test, config, seed=0, stop_after_s=stop_after_s)


def test_a_run_trains_on_one_thread_and_returns_the_trained_model_with_its_cpu_seconds():
    threads = []

    def build():
        threads.append(torch.get_num_threads())
        return mlp([2, 32, 2])

    run, model = _train(build)
    assert threads == [1] and run.outcome.error is None and not run.stopped and run.cpu_seconds > 0
    _, accuracy = evaluate(model, DATA.x_test, DATA.y_test)
    assert accuracy > 0.9 and np.mean(run.outcome.predictions == DATA.y_test) == pytest.approx(accuracy)
    assert run.outcome.test_accuracy is None  # the judge counts it, from the predictions
    back = _round_trip(run)  # the run is plain data: what the host reads
    assert back.cpu_seconds == run.cpu_seconds and np.array_equal(back.outcome.predictions, run.outcome.predictions)


def test_the_time_is_cpu_time_so_waiting_does_not_count():
    def build_slowly():
        time.sleep(0.5)
        return mlp([2, 8, 2])

    run, _ = _train(build_slowly, {**GOOD, "epochs": 1})
    assert run.outcome.error is None and run.cpu_seconds < 0.5


def test_a_run_past_the_stop_limit_is_stopped():
    run, _ = _train(lambda: mlp([2, 64, 64, 2]), {**GOOD, "epochs": 60}, stop_after_s=0.0)
    assert run.stopped and run.outcome.error.startswith("OverBudget") and run.outcome.predictions is None


def test_a_build_error_is_an_error_not_a_stop():
    run, model = _train(lambda: 1 / 0)
    assert model is None and not run.stopped and "ZeroDivisionError" in run.outcome.error
