"""ex06_capstone's judged checks: the solution's records pass outside the sandbox; forged data fails.

The solution's design and dead_fraction come from the assignment's own source notebook. One training of it
(seed 1, about 3 CPU seconds) is shared by every test through the module's run cache; every other case is
judged from edited plain data, so nothing else trains.
"""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from course_lib.grading import decide, plain, probelog
from course_lib.grading.exercises import ex06
from course_lib.grading.sources import read_source
from tests import grading_fixtures as fx
from tests.conftest import ROOT

SEED = 1


@pytest.fixture(scope="module")
def solution() -> dict:
    """The solution cells' build_model, training_config and dead_fraction, defined as in a notebook."""
    nb = read_source("ex06_capstone", ROOT)
    namespace = {"__name__": "__main__", "torch": torch, "nn": nn}
    for gid in ("design", "dead_fraction"):
        exec(fx.cell(nb, gid).source, namespace)  # noqa: S102 - the course's own solution
    return namespace


@pytest.fixture(scope="module")
def records(solution, tmp_path_factory) -> dict[str, dict]:
    """Judge name -> the solution's logged record, for each check a test cell of ex06 makes (seed 1)."""
    log = tmp_path_factory.mktemp("ex06") / "probes.jsonl"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(probelog.LOG_VARIABLE, str(log))
        build, config, dead = solution["build_model"], solution["training_config"], solution["dead_fraction"]
        ex06.check_design(build, config)
        ex06.check_accuracy(build, config, seed=SEED)
        ex06.check_budget(build, config, seed=SEED)
        ex06.check_bonus(build, config, seed=SEED)
        ex06.check_dead_fraction(dead, seed=SEED)
        ex06.check_dead_fraction_trained(dead, build, config, seed=SEED)
    return {r["judge"].rpartition(".")[2]: r for r in decide.read_log(log.read_text())}


def _data(record: dict):
    return plain.decode(json.loads(json.dumps(record["data"])))


def _judge(record: dict, data) -> str | None:
    return getattr(ex06, record["judge"].rpartition(".")[2])(data, **record["params"])


def test_the_solutions_records_pass_outside_and_carry_plain_data_only(records):
    assert set(records) == {"judge_design", "judge_accuracy", "judge_budget", "judge_bonus", "judge_dead_fraction",
                            "judge_dead_fraction_trained"}
    assert all(decide.passes(r) for r in records.values())
    assert records["judge_accuracy"]["params"] == {"seed": SEED, "hidden": False}
    assert sum(len(json.dumps(r)) for r in records.values()) < 100_000


# ---- the design -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("forge, message", [
    (lambda d: {**d, "shape": (7, 10, 1)}, "the model maps a (7, 40) batch to (7, 10, 1); expected (7, 10)"),
    (lambda d: {**d, "shape": "tuple"}, "the model maps a (7, 40) batch to tuple; expected (7, 10)"),
    (lambda d: {**d, "output": np.full((7, 10), 0.1)}, ex06.SOFTMAX_OUTPUT),
    (lambda d: {**d, "uses_cnn1d": True}, ex06.USES_CNN1D),
    (lambda d: {**d, "failed": ("forward", "RuntimeError: shapes")},
     "the model fails on a batch of MNIST-1D signals, shape (7, 40): RuntimeError: shapes. Check the input size"),
    (lambda d: {**d, "config": replace(d["config"], settings=[*d["config"].settings[:3], ("batch_size", 8)])},
     "training_config(): the training configuration is outside the allowed limits: batch_size=8 (allowed: an "
     "integer in 16..512). Allowed: epochs 1..60"),
])
def test_the_design_judge_decides_from_the_probed_shape_output_and_config(records, forge, message):
    record = records["judge_design"]
    assert _judge(record, forge(_data(record))).startswith(message)


def test_a_softmax_design_fails_inside_with_the_judges_message():
    def softmax_model():
        return nn.Sequential(nn.Linear(40, 10), nn.Softmax(dim=1))

    def config():
        return {"epochs": 15, "lr": 1e-2, "optimizer": "adam", "batch_size": 32}

    with pytest.raises(AssertionError, match="the model's outputs are probabilities"):
        ex06.check_design(softmax_model, config)
    with pytest.raises(AssertionError, match="build_model\\(\\) returned a int, not a torch nn.Module"):
        ex06.check_design(lambda: 3, config)


# ---- training: accuracy, budget, bonus ---------------------------------------------------------------------


def _run_forged(record: dict, **changes) -> dict:
    data = _data(record)
    outcome = replace(data["run"].outcome, **changes.pop("outcome", {}))
    return {**data, "run": replace(data["run"], outcome=outcome, **changes)}


def test_accuracy_is_counted_from_the_predictions_not_the_kernels_figure(records):
    record = records["judge_accuracy"]
    poor = _run_forged(record, outcome={"test_accuracy": 0.99, "predictions": np.zeros(800, np.int64)})
    assert _judge(record, poor).startswith("MNIST-1D (seed 1): test accuracy 0.1")
    assert _judge(records["judge_bonus"], poor).startswith("bonus tier (seed 1): test accuracy 0.1")
    short = _run_forged(record, outcome={"predictions": _data(record)["run"].outcome.predictions[:-1]})
    assert "one class per held-out example (800)" in _judge(record, short)
    softmax = {**poor, "outputs": np.full((16, 10), 0.1)}
    assert _judge(record, softmax).endswith(ex06.SOFTMAX_OUTPUT)


def test_the_budget_is_judged_from_the_recorded_cpu_seconds(records):
    for name in ("judge_budget", "judge_bonus"):
        record = records[name]
        assert _judge(record, _data(record)) is None
        message = _judge(record, _run_forged(record, cpu_seconds=12.5))
        assert message.endswith("training took 12.5 CPU seconds, over the 12 s budget: " + ex06.OVER_BUDGET)
    stopped = _run_forged(records["judge_accuracy"], cpu_seconds=24.1, stopped=True,
                          outcome={"error": "OverBudget: training stopped after 24 CPU seconds"})
    assert _judge(records["judge_accuracy"], stopped) == (
        "MNIST-1D (seed 1): training was stopped after 24.1 CPU seconds, twice the 12 s budget: "
        + ex06.OVER_BUDGET)


def test_a_config_outside_the_limits_fails_every_training_check_without_training(records):
    def config():
        return {"epochs": 100, "lr": 1e-2, "optimizer": "adam", "batch_size": 32}

    with pytest.raises(AssertionError, match="epochs=100 \\(allowed: an integer in 1..60\\). Allowed: epochs"):
        ex06.check_accuracy(lambda: pytest.fail("trained"), config, seed=SEED)
    record = records["judge_accuracy"]
    garbled = {**record, "data": {"dict": {k: v for k, v in record["data"]["dict"].items() if k != "run"}}}
    assert not decide.passes(garbled)


# ---- dead_fraction -----------------------------------------------------------------------------------------


def test_the_hand_built_models_are_re_created_by_the_judge_from_the_seed():
    # no model, no tensor: the plain numbers alone pass or fail (4 of 20 units are dead in seed 1's MLP)
    assert ex06.judge_dead_fraction({"borrows": False, "returned": [{"value": 0.2, "type_name": "float",
                                                                     "error": None}]}, seed=SEED) is None
    wrong = ex06.judge_dead_fraction({"borrows": False, "returned": [{"value": 0.35, "type_name": "float",
                                                                      "error": None}]}, seed=SEED)
    assert wrong == ("dead_fraction (seed 1): dead fraction 0.3500 on a hand-built MLP with 1100 examples, "
                     "expected 0.2000")


def test_dead_fraction_records_fail_when_forged(records):
    record = records["judge_dead_fraction"]
    model, x = ex06.probe_mlp(SEED)
    ge_zero = ex06._measured(model, x)["alternatives"][">= 0"]
    data = _data(record)
    named = _judge(record, {**data, "returned": [{**data["returned"][0], "value": ge_zero}]})
    assert named.endswith(ex06.MISTAKES[">= 0"])
    assert not decide.passes({**record, "params": {"seed": SEED, "hidden": True}})  # one result, two models
    assert _judge(record, {**data, "borrows": True}) == ex06.BORROWS_MONITOR


def test_the_trained_models_dead_units_travel_as_masks(records):
    record = records["judge_dead_fraction_trained"]
    data = _data(record)
    dead = data["measured"]["dead"]
    assert [d.dtype for d in dead] == [np.bool_] * 3 and sum(d.size for d in dead) == 75
    assert data["returned"]["value"] == ex06._fraction(dead)
    alive = {**data, "measured": {**data["measured"], "dead": [np.zeros_like(d) for d in dead]}}
    assert _judge(record, alive).startswith("dead_fraction on your trained model (seed 1): dead fraction 0.1")
    assert _judge(record, {**data, "returned": {"value": None, "type_name": "str", "error": None}}) == (
        "dead_fraction on your trained model (seed 1): dead_fraction returned a str, not a number")


def test_borrowing_the_monitor_fails_inside_and_outside(solution, tmp_path, monkeypatch):
    def dead_fraction(model, x):
        from course_lib.diagnostics import DeadUnitMonitor
        with DeadUnitMonitor(model) as monitor:
            return monitor.observe(x).dead_fraction()

    log = tmp_path / "probes.jsonl"
    monkeypatch.setenv(probelog.LOG_VARIABLE, str(log))
    for check, args in ((ex06.check_dead_fraction, ()),
                        (ex06.check_dead_fraction_trained, (solution["build_model"], solution["training_config"]))):
        with pytest.raises(AssertionError, match="dead_fraction uses course_lib.diagnostics"):
            check(dead_fraction, *args, seed=SEED)
    assert [decide.passes(r) for r in decide.read_log(log.read_text())] == [False, False]
