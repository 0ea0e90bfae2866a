"""What crosses between the sandbox and the host: plain data, protocol messages, secret seeds, and how a test
cell is decided from what the host observed. Every forged, garbled or out-of-place message fails the cell
without raising."""

import json

import numpy as np
import pytest

from course_lib import activations as reference
from course_lib.grading import judges, plain, protocol
from course_lib.grading.checks import ex01
from course_lib.grading.grade.decide import Expected, decide_cell
from course_lib.grading.kernel.layers import Probe
from course_lib.grading.kernel.probes import Outcome
from course_lib.grading.kernel.training import TrainingOutcome
from course_lib.grading.sandbox.session import Asked, CellRun, _cap_outputs, _receive_data
from tests import grading_fixtures as fx

# ---- plain data ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [
    None, True, 3, -2.5, "text", float("nan"), float("inf"), [1, "a", None], (1, (2.0, "b")),
    {"a": [1, 2], "b": {"c": None}},
    np.array([[0.5, np.nan], [-np.inf, 3e38]], dtype=np.float32), np.arange(6, dtype=np.int64).reshape(2, 3),
    np.array([True, False]), np.float32(1.5), np.int16(7),
    Outcome(np.array([1.0, 2.0]), "float32", "ndarray", None, ("overflow",)),
    TrainingOutcome(0.5, 1.0, None, 12, None, np.array([0, 1, 1])),
    Probe({"dx": Outcome(np.array([1.0]), "float32", "ndarray")}, None, ("overflow",)),
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
    {"data": "course_lib.grading.kernel.probes.Outcome", "fields": {"__class__": 1}},   # unknown field
    {"array": {"dtype": "object", "shape": [1], "flat": [1]}},
    {"array": {"dtype": "float64", "shape": [3], "flat": [1.0]}},                # wrong size
    {"array": {"dtype": "float64", "shape": [1], "flat": [[1.0]]}},
    {"float": "not a number"}, {"tuple": 5}, {"unknown": 1}, {"dict": [1]},
])
def test_malformed_or_foreign_json_is_a_plain_data_error(item):
    with pytest.raises(plain.PlainDataError):
        plain.decode(item)


# ---- protocol messages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("line", [b"", b"[1, 2]", b'{"no": "op"}', b'{"op": 5}', b"{" * 100_000, b"\xff\xfe",
                                  b'{"op": "data", "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"])
def test_a_line_that_is_not_one_message_is_a_protocol_error(line):
    with pytest.raises(protocol.ProtocolError):
        protocol.decode(line)


def test_messages_round_trip_and_refuse_nan():
    message = {"op": protocol.ASK, "check": "ex01.relu", "params": plain.encode({"seed": 1, "x": float("nan")})}
    assert protocol.decode(protocol.encode(message)) == message
    with pytest.raises(ValueError):
        protocol.encode({"op": "data", "data": float("nan")})


# ---- secret seeds ----------------------------------------------------------------------------------------


def test_secret_seeds_differ_by_student_check_and_secret_and_are_stable():
    base = judges.secret_params("ex01.relu", {"seed": 1, "hidden": True}, b"k", "ex01_activations", "ann")
    assert base == judges.secret_params("ex01.relu", {"seed": 1, "hidden": True}, b"k", "ex01_activations", "ann")
    assert base["hidden"] is True and base["seed"] not in (1, None) and 0 <= base["seed"] < 2**32
    others = [judges.secret_params("ex01.relu", {"seed": 1}, b"k", "ex01_activations", "bob"),
              judges.secret_params("ex01.relu", {"seed": 2}, b"k", "ex01_activations", "ann"),
              judges.secret_params("ex01.tanh", {"seed": 1}, b"k", "ex01_activations", "ann"),
              judges.secret_params("ex01.relu", {"seed": 1}, b"other", "ex01_activations", "ann")]
    assert len({base["seed"], *(o["seed"] for o in others)}) == 5
    assert others[0]["shared_seed"] == base["shared_seed"]  # one per class: the same for every student


def test_unknown_checks_have_no_judge():
    for name in ("ex01.nope", "ex99.relu", "os.system", "ex01", "../ex01.relu", "ex01_activations.relu"):
        with pytest.raises(judges.UnknownCheck):
            judges.lookup(name)


# ---- deciding a test cell from what the host saw ---------------------------------------------------------


def _cell_run(data_for=lambda served: None, checks=("ex01.relu",), ok=True, **run) -> CellRun:
    """A test cell's run in which each check got secret inputs and handed back data_for(served)."""
    cell = CellRun(index=4, done=True, ok=ok, **run)
    for check in checks:
        served = judges.serve(check, judges.secret_params(check, {"seed": 1}, b"k", "ex01_activations", "ann"))
        cell.asks.append(Asked(check, served, data=judges.roundtrip(data_for(served)), answered=True))
    return cell


def _honest(served):
    return judges.roundtrip(ex01_probe(served.given))


def ex01_probe(given):
    from course_lib.grading.kernel.probes import elementwise

    return elementwise(relu=reference.relu)(given)


EXPECTED = [Expected("ex01.relu", {"seed": 1})]


def test_a_cell_with_its_check_answered_rightly_passes():
    assert decide_cell(EXPECTED, _cell_run(_honest)).passed


@pytest.mark.parametrize("why, run", [
    ("never ran", None),
    ("did not finish", CellRun(index=4)),
    ("timed out", _cell_run(_honest, timed_out=True)),
    ("raised after its check", _cell_run(_honest, ok=False)),
    ("made no check", _cell_run(_honest, checks=())),
    ("made an extra check", _cell_run(_honest, checks=("ex01.relu", "ex01.relu"))),
    ("forged data", _cell_run(lambda s: [[Outcome(np.zeros(7))] * 8])),
    ("an integer too large for a float", _cell_run(lambda s: 10**400)),
    ("data that is no outcome", _cell_run(lambda s: "all tests passed")),
])
def test_a_cell_fails_when(why, run):
    assert not decide_cell(EXPECTED, run).passed, why


def test_data_sent_twice_or_out_of_turn_is_a_problem_and_malformed_data_is_not_a_crash():
    run = _cell_run(_honest)
    _receive_data(run, {"op": "data", "check": "ex01.relu", "data": None})
    assert run.asks[0].problem and not decide_cell(EXPECTED, run).passed
    fresh = CellRun(index=4, done=True, ok=True)
    _receive_data(fresh, {"op": "data", "check": "ex01.relu", "data": None})  # nothing was asked
    assert fresh.asks == []
    asked = _cell_run(_honest)
    asked.asks[0].answered = False
    _receive_data(asked, {"op": "data", "check": "ex01.relu", "data": {"array": {"dtype": "object"}}})
    assert "could not be read" in asked.asks[0].problem


def test_outputs_are_cleaned_and_capped_as_they_are_read():
    outputs = [{"output_type": "stream", "name": "stdout", "text": "x" * 50},
               {"output_type": "stream", "name": "stdout", "text": 5},                       # not text
               {"output_type": "execute_result", "data": {"text/plain": "1", "bad": "no slash"}, "execution_count": 3},
               {"output_type": "display_data", "data": {"image/png": ["aGk="]}, "metadata": {"x": object()}},
               {"output_type": "mystery"}, "not a dict",
               {"output_type": "stream", "name": "stdout", "text": "y" * 10_000}]
    kept = _cap_outputs(outputs, limit=1000)
    assert [o["output_type"] for o in kept] == ["stream", "execute_result", "display_data", "stream"]
    assert kept[1]["data"] == {"text/plain": "1"} and kept[2]["metadata"] == {}
    assert kept[-1]["text"].startswith("[output truncated by the grader")


def test_a_misconception_gets_the_same_message_locally_and_graded():
    assert fx.message_of(ex01.check_relu, np.abs, seed=1) == fx.graded(ex01.check_relu, np.abs, seed=1) == (
        "relu: relu returned |x|: negative inputs must become 0, not flip sign")
