"""ex03's judges decide from plain data alone: the solution's data passes, forged or garbled data fails, and a
training setting's Measurement is judged from the firing rates and predictions it carries (never from a
figure computed in the student's kernel)."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from course_lib.grading import decide, plain
from course_lib.grading.exercises import ex03
from course_lib.grading.exercises.ex03 import Measurement, RatesProbe
from course_lib.grading.training import TrainingOutcome
from course_lib.nn import mlp
from tests.grading_fixtures import probe_records as _records

torch.set_num_threads(1)


# ---- firing rates -------------------------------------------------------------------------------------


def firing_rates(model, batches, active=lambda z: z > 0, remove=True):
    """The solution's monitor: forward hooks count active examples per unit over every batch."""
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    counts = [0] * len(relus)

    def make_hook(i):
        def hook(module, args, output):
            counts[i] = counts[i] + active(args[0]).sum(dim=0)
        return hook

    handles = [m.register_forward_hook(make_hook(i)) for i, m in enumerate(relus)]
    with torch.no_grad():
        for x in batches:
            model(x)
    if remove:
        for handle in handles:
            handle.remove()
    return [c.double() / sum(len(x) for x in batches) for c in counts]


def _reference_probes(seed: int, hidden: bool = False) -> list[RatesProbe]:
    return [RatesProbe(ex03.reference_rates(build(seed, hidden))) for build in ex03.NETS]


def test_the_solutions_monitor_is_logged_and_passes_inside_and_outside(tmp_path, monkeypatch):
    ex03.check_firing_rates(firing_rates, seed=1)
    [record] = _records(tmp_path, monkeypatch, lambda: ex03.check_firing_rates(firing_rates, seed=7501, hidden=True))
    assert record["judge"] == "course_lib.grading.exercises.ex03.judge_firing_rates"
    assert record["params"] == {"seed": 7501, "hidden": True}
    assert decide.passes(record)
    assert not decide.passes({**record, "params": {"seed": 1, "hidden": False}})


@pytest.mark.parametrize("hidden", [False, True])
def test_rates_judge_decides_from_data_alone(hidden):
    data = {"borrowed": [], "probes": _reference_probes(4, hidden)}
    assert ex03.judge_firing_rates(data, seed=4, hidden=hidden) is None
    kink = [RatesProbe(ex03._wrong_rates(build(4, hidden), ex03._non_negative)) for build in ex03.NETS]
    message = ex03.judge_firing_rates({"borrowed": [], "probes": kink}, seed=4, hidden=hidden)
    assert message.startswith("firing_rates: a pre-activation >= 0 was counted as active")


@pytest.mark.parametrize(("forge", "expected"), [
    (lambda p: p[:1], "firing_rates: 1 probes for 2 test networks"),
    (lambda p: [replace(p[0], hooks_left=2), p[1]], "firing_rates: left 2 hook(s) attached to the network"),
    (lambda p: [RatesProbe(error="raised KeyError: 3"), p[1]], "firing_rates: raised KeyError: 3"),
    (lambda p: [replace(p[0], rates=p[0].rates[:1]), p[1]], "firing_rates: returned 1 rate vectors"),
    (lambda p: [replace(p[0], rates=[p[0].rates[0], p[0].rates[1] + 0.5]), p[1]],
     "firing_rates: wrong rates for 5 of 5 units of ReLU module 1 of the network 3 -> 6 -> 5 -> 2"),
    (lambda p: [p[0], replace(p[1], rates=None)], "firing_rates: must return a list"),
])
def test_forged_or_garbled_rates_fail(forge, expected):
    probes = forge(_reference_probes(1))
    assert ex03.judge_firing_rates({"borrowed": [], "probes": probes}, seed=1).startswith(expected)


def test_hooks_left_attached_and_a_borrowed_monitor_are_named():
    with pytest.raises(AssertionError, match="firing_rates: left 2 hook"):
        ex03.check_firing_rates(lambda m, b: firing_rates(m, b, remove=False), seed=1)
    borrowed = {"borrowed": ["firing_rates"], "probes": _reference_probes(1)}
    message = ex03.judge_firing_rates(borrowed, seed=1)
    assert message == "firing_rates is course_lib's reference, imported: write your own"


def test_a_monitor_returning_no_list_fails_with_its_type():
    with pytest.raises(AssertionError, match="firing_rates: must return a list .* not a dict"):
        ex03.check_firing_rates(lambda m, b: {"rates": 1}, seed=1)


# ---- dead fraction ------------------------------------------------------------------------------------


def _dead_results(fn, seed: int, hidden: bool = False) -> dict:
    return {"borrowed": [], "results": [(fn(rates), None) for rates in ex03.rate_lists(seed, hidden)]}


def test_dead_fraction_solution_passes_inside_and_outside(tmp_path, monkeypatch):
    def dead_fraction(rates):
        return sum(int((r == 0).sum()) for r in rates) / sum(len(r) for r in rates)

    [record] = _records(tmp_path, monkeypatch, lambda: ex03.check_dead_fraction(dead_fraction, seed=2))
    assert decide.passes(record)
    assert ex03.judge_dead_fraction(_dead_results(dead_fraction, 7502, True), seed=7502, hidden=True) is None


def test_dead_fraction_judge_names_misconceptions_and_refuses_garbled_results():
    averaged = _dead_results(lambda rates: float(np.mean([float((r == 0).double().mean()) for r in rates])), 2)
    assert "per-layer dead fractions were averaged" in ex03.judge_dead_fraction(averaged, seed=2)
    good = _dead_results(ex03._pooled, 2)
    assert ex03.judge_dead_fraction({**good, "results": good["results"][:1]}, seed=2).startswith(
        "dead_fraction: 1 results for 2 lists")
    raised = {**good, "results": [(None, "TypeError: boom"), *good["results"][1:]]}
    assert ex03.judge_dead_fraction(raised, seed=2) == "dead_fraction: TypeError: boom"
    off = {**good, "results": [(0.123, None), *good["results"][1:]]}
    assert ex03.judge_dead_fraction(off, seed=2).startswith("dead_fraction: returned 0.1230 on layers of widths")
    with pytest.raises(AssertionError, match="dead_fraction: ValueError: returned a str, not a number"):
        ex03.check_dead_fraction(lambda rates: "half", seed=2)


# ---- provoking and preventing death -------------------------------------------------------------------

LABELS = ex03.moons_data(6).y_test


def _measurement(dead_at_init: int = 2, dead_trained: int = 60, seconds: float = 1.0, **kw) -> Measurement:
    """Two layers of 64 units with the given numbers of dead units, and perfect predictions."""
    def rates(dead):
        r = np.full(128, 0.5)
        r[:dead] = 0.0
        return (r[:64], r[64:])

    outcome = TrainingOutcome(1.0, seconds, None, 4500, predictions=LABELS.copy())
    return Measurement(rates(dead_at_init), rates(dead_trained), outcome, **kw)


def test_provoke_judge_counts_dead_units_from_the_rates():
    assert ex03.judge_provoke(_measurement(), seed=6, threshold=0.30) is None
    assert ex03.judge_provoke(_measurement(dead_trained=30), seed=6, threshold=0.30) == (
        "provoke_death: 23% of the units are dead after training, fewer than the 30% required: what does one "
        "very large update do to a unit's bias?")
    assert ex03.judge_provoke(_measurement(dead_at_init=60), seed=6, threshold=0.30).startswith(
        "provoke_death: 47% of the units are dead before any training")


@pytest.mark.parametrize(("measurement", "expected"), [
    (Measurement(error="TypeError: nope"), "provoke_death: TypeError: nope"),
    (Measurement(), "provoke_death: ValueError: the model has no ReLU-family layer"),
    (_measurement(finite=False), "provoke_death: training diverged"),
    (_measurement(seconds=12.0), "provoke_death: training took 12.0 s, over the 10 s budget"),
    (replace(_measurement(), trained=()), "provoke_death: build_model built a different network"),
    (replace(_measurement(), at_init=(np.full(4, 0.5),), trained=(np.zeros(4),)),
     "provoke_death: the network has 4 ReLU units; use at least 64"),
    (replace(_measurement(), outcome=TrainingOutcome(error="RuntimeError: x")),
     "provoke_death: building or training the model failed: RuntimeError: x"),
])
def test_provoke_judge_names_each_common_problem(measurement, expected):
    assert ex03.judge_provoke(measurement, seed=6, threshold=0.30).startswith(expected)


def test_prevent_judge_counts_accuracy_from_predictions_against_recreated_labels():
    alive = _measurement(dead_at_init=0, dead_trained=0)
    assert ex03.judge_prevent(alive, seed=6, max_dead=0.01, threshold=0.92) is None
    forged = replace(alive, outcome=replace(alive.outcome, test_accuracy=0.99, predictions=np.zeros_like(LABELS)))
    assert ex03.judge_prevent(forged, seed=6, max_dead=0.01, threshold=0.92).startswith(
        "prevent_death: test accuracy 0.500, below the required 0.92: near chance")
    assert ex03.judge_prevent(alive, seed=7, max_dead=0.01, threshold=0.92).startswith(
        "prevent_death: test accuracy")  # other labels than the predictions were made for
    born = _measurement(dead_at_init=4, dead_trained=4)
    assert ex03.judge_prevent(born, seed=6, max_dead=0.01, threshold=0.92) == (
        "prevent_death: 3.1% of the units are dead after training, more than the 1% allowed (3.1% were dead "
        "already at initialisation: born dead, their pre-activation is <= 0 on all of the data, they get no "
        "gradient)")


def provoke_death():
    return lambda: mlp([2, 64, 64, 2]), 0.3


def prevent_death():
    def build_model():
        return nn.Sequential(nn.Linear(2, 64), nn.BatchNorm1d(64), nn.ReLU(),
                             nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 2))
    return build_model, 1e-2


def test_the_solutions_settings_are_measured_logged_and_pass_outside(tmp_path, monkeypatch, capsys):
    records = _records(tmp_path, monkeypatch, lambda: (
        ex03.check_provoke(provoke_death, seed=6, threshold=0.30),
        ex03.check_prevent(prevent_death, seed=6, max_dead=0.01, threshold=0.92)))
    assert [r["judge"].rsplit(".", 1)[1] for r in records] == ["judge_provoke", "judge_prevent"]
    records = [_within_budget(r) for r in records]
    assert all(decide.passes(r) for r in records)
    assert "provoke_death: 128 units, dead at initialisation" in capsys.readouterr().out
    assert not decide.passes({**records[1], "params": {**records[1]["params"], "seed": 7}})


def _within_budget(record: dict) -> dict:
    """The record with its training time put inside the budget: on a loaded machine the time measures the
    load; everything else in the record measures the code under test."""
    measured = plain.decode(record["data"])
    seconds = min(measured.outcome.train_seconds, ex03.MAX_SECONDS / 2)
    return {**record, "data": plain.encode(replace(measured, outcome=replace(measured.outcome, train_seconds=seconds)))}


def test_a_setting_without_relu_or_with_a_bad_lr_fails_before_training():
    assert ex03.measure(lambda: (lambda: mlp([2, 64, 2], activation="tanh"), 0.01), seed=6) == Measurement()
    with pytest.raises(AssertionError, match="provoke_death: ValueError: the learning rate must be a positive"):
        ex03.check_provoke(lambda: (provoke_death()[0], -1.0), seed=6, threshold=0.30)
