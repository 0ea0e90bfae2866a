"""Plain data and judged checks: what a test cell logs can be read back safely and re-judged outside.

The outside verdict for ex02 is exercised here record by record: the solution's records pass, and forged,
garbled or out-of-place records fail without raising.
"""

import json
from dataclasses import replace

import numpy as np
import pytest

from course_lib import activations as reference
from course_lib.grading import decide, judged, plain
from course_lib.grading.exercises import ex02
from course_lib.grading.probes import Outcome
from course_lib.grading.training import TrainingOutcome
from tests import grading_fixtures as fx

# ---- plain data ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [
    None, True, 3, -2.5, "text", float("nan"), float("inf"), [1, "a", None], (1, (2.0, "b")),
    {"a": [1, 2], "b": {"c": None}},
    np.array([[0.5, np.nan], [-np.inf, 3e38]], dtype=np.float32), np.arange(6, dtype=np.int64).reshape(2, 3),
    np.array([True, False]), np.float32(1.5), np.int16(7),
    Outcome(np.array([1.0, 2.0]), "float32", "ndarray", None, ("overflow",)),
    TrainingOutcome(0.5, 1.0, None, 12, None, np.array([0, 1, 1])),
])
def test_plain_values_survive_a_json_round_trip(value):
    back = plain.decode(json.loads(json.dumps(plain.encode(value))))
    assert _same(back, value)


def _same(a, b) -> bool:
    if isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    if isinstance(b, float) and np.isnan(b):
        return np.isnan(a)
    if isinstance(b, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(b, dict):
        return isinstance(a, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in b)
    if hasattr(b, "__dataclass_fields__"):
        return type(a) is type(b) and all(_same(getattr(a, f), getattr(b, f)) for f in b.__dataclass_fields__)
    return a == b and type(a) is type(b.item() if isinstance(b, np.generic) else b)


class Unregistered:
    pass


@pytest.mark.parametrize("value", [
    object(), Unregistered(), {1: "int key"}, np.array(["a", "b"]), np.array([object()]), lambda: 1, {1.5},
])
def test_anything_else_is_refused_when_encoding(value):
    with pytest.raises(plain.PlainDataError):
        plain.encode(value)


@pytest.mark.parametrize("item", [
    {"data": "builtins.object", "fields": {}},                                   # not registered: never built
    {"data": "course_lib.grading.probes.Outcome", "fields": {"__class__": 1}},   # unknown field
    {"array": {"dtype": "object", "shape": [1], "flat": [1]}},
    {"array": {"dtype": "float64", "shape": [3], "flat": [1.0]}},                # wrong size
    {"array": {"dtype": "float64", "shape": [1], "flat": [[1.0]]}},
    {"float": "not a number"}, {"tuple": 5}, {"unknown": 1}, {"dict": [1]},
])
def test_malformed_or_foreign_json_is_a_plain_data_error(item):
    with pytest.raises(plain.PlainDataError):
        plain.decode(item)


# ---- judged checks ------------------------------------------------------------------------------------


_records = fx.probe_records


def _copy_of(fn):
    """The reference under the student's module name (so it is not refused as borrowed)."""
    def student(*args):
        return fn(*args)
    student.__module__ = "__main__"
    return student


def test_a_correct_layer_is_logged_and_passes_outside(tmp_path, monkeypatch):
    def run():
        ex02.check_affine(_copy_of(reference.affine_forward), _copy_of(reference.affine_backward), seed=1)

    [record] = _records(tmp_path, monkeypatch, run)
    assert record["kind"] == "judged" and record["judge"] == "course_lib.grading.exercises.ex02.judge_affine"
    assert record["params"] == {"seed": 1, "hidden": False}
    assert decide.passes(record)


def test_a_wrong_layer_fails_inside_with_the_message_and_outside_on_the_same_record(tmp_path, monkeypatch):
    def wrong_backward(dout, cache):
        dx, dw, db = reference.affine_backward(dout, cache)
        return dx, dw.T if dw.shape[0] == dw.shape[1] else dw * 2, db

    with pytest.raises(AssertionError, match="affine_forward/affine_backward: dw has wrong values"):
        ex02.check_affine(_copy_of(reference.affine_forward), wrong_backward, seed=1)
    [record] = _records(tmp_path, monkeypatch,
                        lambda: ex02.check_affine(_copy_of(reference.affine_forward), wrong_backward, seed=1))
    assert not decide.passes(record)


def test_the_borrowed_reference_fails_both_inside_and_outside(tmp_path, monkeypatch):
    def run():
        ex02.check_affine(reference.affine_forward, reference.affine_backward, seed=1)

    with pytest.raises(AssertionError, match="affine_forward is course_lib's reference, imported"):
        run()
    [record] = _records(tmp_path, monkeypatch, run)
    assert not decide.passes(record)


def _good_record(tmp_path, monkeypatch) -> dict:
    def run():
        ex02.check_affine(_copy_of(reference.affine_forward), _copy_of(reference.affine_backward), seed=1)

    return _records(tmp_path, monkeypatch, run)[0]


@pytest.mark.parametrize("forge", [
    lambda r: {**r, "judge": "course_lib.activations.relu"},                    # not a judge
    lambda r: {**r, "judge": "os.system"},
    lambda r: {**r, "judge": "course_lib.grading.exercises.ex02.two_layer_loss"},  # not named judge_*
    lambda r: {**r, "judge": "course_lib.grading.exercises.ex02.judge_relu_layer"},  # another judge's data
    lambda r: {**r, "params": {"seed": 2, "hidden": False}},                   # other inputs than the data's
    lambda r: {**r, "params": {"seed": [1]}},
    lambda r: {**r, "data": {"dict": {"borrowed": [], "probes": r["data"]["dict"]["probes"][:-1]}}},
    lambda r: {**r, "data": {"data": "builtins.object", "fields": {}}},
    lambda r: {**r, "data": "all tests passed"},
    lambda r: {k: v for k, v in r.items() if k != "data"},
])
def test_forged_or_garbled_records_fail_outside_without_raising(tmp_path, monkeypatch, forge):
    record = _good_record(tmp_path, monkeypatch)
    assert decide.passes(record)
    assert not decide.passes(forge(record))


def test_a_cell_is_decided_by_its_expected_checks_not_by_records_of_other_checks(tmp_path, monkeypatch):
    good = _good_record(tmp_path, monkeypatch)
    expected = decide.expected_checks({"test_affine": [good]})
    assert decide.decide(expected, [good]) == {"test_affine": True}
    other_seed = {**good, "params": {"seed": 9, "hidden": False}}
    assert decide.decide(expected, [other_seed]) == {"test_affine": False}   # the cell's own check is missing
    assert decide.decide(expected, []) == {"test_affine": False}


def test_training_is_judged_from_predictions_against_labels_the_judge_recreates():
    labels = ex02.spiral_data(5).y_test
    honest_but_poor = TrainingOutcome(0.99, 1.0, None, 100, None, np.zeros_like(labels))
    assert ex02.judge_training(honest_but_poor, seed=5, threshold=0.93).startswith("spirals: test accuracy 0.3")
    assert ex02.judge_training(replace(honest_but_poor, predictions=labels.copy()), seed=5, threshold=0.93) is None
    assert "one class per held-out example" in ex02.judge_training(
        replace(honest_but_poor, predictions=labels[:-1].copy()), seed=5, threshold=0.93)


def test_params_must_be_scalars_and_judges_must_live_in_the_exercise_modules():
    with pytest.raises(TypeError, match="plain scalars"):
        judged.check(ex02.judge_affine, {}, seed=[1])
    with pytest.raises(ValueError, match="not a judge"):
        judged.resolve("course_lib.grading.judged.check")
