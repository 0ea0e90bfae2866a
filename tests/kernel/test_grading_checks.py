"""Probes keep only plain data; element-wise judges (ex01) name misconceptions, never reveal hidden inputs,
and decide the same way locally (the notebook's seed) and under `course grade` (a secret seed)."""

import numpy as np
import pytest

from course_lib import activations as reference
from course_lib.grading.checks import ex01
from course_lib.grading.judges.verdict import elementwise_verdict
from course_lib.grading.kernel import probes
from course_lib.grading.kernel.inputs import elementwise_inputs
from tests import grading_fixtures as fx


class AlwaysEqual(np.ndarray):
    def __eq__(self, other):
        return np.ones(np.shape(self), dtype=bool)


def test_probe_copies_inputs_so_a_mutating_function_cannot_change_them():
    x = np.array([-1.0, 2.0])

    def relu_in_place(a):
        a[a < 0] = 0
        return a

    probes.call(relu_in_place, x)
    assert x.tolist() == [-1.0, 2.0]


def test_probe_turns_an_array_subclass_into_a_plain_float64_array():
    outcome = probes.call(lambda a: np.zeros(3).view(AlwaysEqual), np.ones(3))
    assert type(outcome.value) is np.ndarray and outcome.value.dtype == np.float64
    assert outcome.type_name == "AlwaysEqual"


def test_probe_records_a_non_array_return_and_an_exception_as_errors():
    assert "returned a str" in probes.call(lambda a: "yes", np.ones(2)).error
    assert probes.call(lambda a: 1 / 0, np.ones(2)).error.startswith("ZeroDivisionError")


def test_probe_records_overflow_but_not_underflow():
    assert probes.call(lambda a: np.exp(a), np.array([1000.0])).warnings
    assert not probes.call(lambda a: np.exp(-a), np.array([1000.0])).warnings


def test_grader_inputs_contain_the_kink_both_dtypes_and_are_seeded():
    inputs = elementwise_inputs(3)
    assert {x.dtype for x in inputs} == {np.dtype(np.float32), np.dtype(np.float64)}
    assert any((x == 0).any() for x in inputs) and any(x.shape == () for x in inputs)
    assert all(np.array_equal(a, b) for a, b in zip(inputs, elementwise_inputs(3), strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(inputs, elementwise_inputs(4), strict=True))


def _relu(x):
    """A student's ReLU, written independently of the reference."""
    return np.where(x > 0, x, np.zeros_like(x))


@pytest.mark.parametrize("seed", [0, 1, 7301])
def test_a_correct_function_passes_locally_and_graded(seed):
    assert fx.message_of(ex01.check_relu, _relu, seed=seed) is None
    assert fx.graded(ex01.check_relu, _relu, seed=seed, hidden=True) is None


def test_always_equal_object_does_not_pass():
    always_equal = lambda a: np.zeros(a.shape, a.dtype).view(AlwaysEqual)  # noqa: E731
    assert "wrong values" in fx.message_of(ex01.check_relu, always_equal, seed=0)
    assert "wrong values" in fx.graded(ex01.check_relu, always_equal, seed=0)


def test_graded_inputs_come_from_a_secret_seed_not_the_notebooks():
    host = fx.Host()
    fx.graded(ex01.check_relu, _relu, seed=1, host=host)
    given_seed = host.served[0].given["parts"][0]["seed"]
    assert given_seed != 1
    other = fx.Host(student="someone else")
    fx.graded(ex01.check_relu, _relu, seed=1, host=other)
    assert other.served[0].given["parts"][0]["seed"] != given_seed  # every student gets their own inputs


def test_a_function_right_only_on_the_notebooks_inputs_fails_when_graded():
    """The cheat secret inputs stop: answers looked up for the inputs of the printed seed."""
    table = {x.tobytes(): reference.relu(x) for x in elementwise_inputs(1)}
    lookup = lambda x: table.get(np.asarray(x).tobytes(), np.zeros_like(x))  # noqa: E731
    assert fx.message_of(ex01.check_relu, lookup, seed=1) is None
    assert "wrong values" in fx.graded(ex01.check_relu, lookup, seed=1)


def test_the_kink_misconception_is_named_locally_and_graded():
    kink_one = lambda a: (a >= 0).astype(a.dtype)  # noqa: E731
    for message in (fx.message_of(ex01.check_relu_grad, kink_one, seed=0), fx.graded(ex01.check_relu_grad, kink_one,
                                                                                     seed=0, hidden=True)):
        assert "relu_grad(0) returned 1: any value in [0, 1] is a subgradient" in message


def test_a_dtype_change_is_explained():
    with pytest.raises(AssertionError, match="returned dtype float64 for a float32 input"):
        ex01.check_relu(lambda a: np.maximum(a, 0).astype(np.float64), seed=0)


def test_hidden_verdict_describes_an_input_by_shape_and_dtype_only():
    inputs = [np.array([0.123456, -7.654321])]
    outcomes = [probes.call(lambda a: a * 0 + 5, x) for x in inputs]
    message = elementwise_verdict("f", outcomes, inputs, [reference.relu(inputs[0])], hidden=True)
    assert "hidden test input (shape (2,), dtype float64)" in message
    assert "0.123" not in message and "7.65" not in message


def test_a_visible_verdict_shows_the_first_wrong_value_at_full_precision_with_its_dtype():
    inputs = [np.array([0.5, -0.123456789012], dtype=np.float32)]
    outcomes = [probes.call(lambda a: np.where(a > 0, a, np.float32(0.011) * a), x) for x in inputs]
    message = elementwise_verdict("f", outcomes, inputs, [reference.leaky_relu(inputs[0])])
    got, want = float(np.float32(0.011) * inputs[0][1]), float(reference.leaky_relu(inputs[0])[1])
    assert f"first at index [1]: returned {got!r} (float32), expected {want!r}" in message
    hidden = elementwise_verdict("f", outcomes, inputs, [reference.leaky_relu(inputs[0])], hidden=True)
    assert "returned" not in hidden and repr(got) not in hidden


def test_overflowing_sigmoid_fails_even_when_its_values_are_right():
    naive = lambda a: (1 / (1 + np.exp(-a))).astype(a.dtype)  # noqa: E731
    with pytest.raises(AssertionError, match="overflow"):
        ex01.check_sigmoid(naive, reference.sigmoid_grad, seed=0)


def test_a_sigmoid_with_np_where_is_told_that_where_computes_both_branches():
    def where(a):
        with np.errstate(over="warn", invalid="warn", divide="warn"):
            return np.where(a >= 0, 1 / (1 + np.exp(-a)), np.exp(a) / (1 + np.exp(a))).astype(a.dtype)
    with pytest.raises(AssertionError, match="np.where computes both of its branches"):
        ex01.check_sigmoid(where, reference.sigmoid_grad, seed=0)


def _solution(name):
    """The solution's answer cell for `name` from solutions/, run here."""
    from course_lib.grading.authoring.sources import grade_id, read_source

    source = read_source("ex01_activations")
    namespace = {"np": np}
    exec(next(c.source for c in source.cells if grade_id(c) == name), namespace)  # noqa: S102 - our own source
    return namespace


@pytest.mark.parametrize("student", [f"student-{i}" for i in range(25)])
def test_the_solution_passes_every_check_on_any_students_secret_inputs(student):
    """Measured once on 200 secret seeds (all pass, and every mutant fails on each); 25 kept here."""
    relu, grad, leaky, sigmoid, tanh = (_solution(n) for n in ("relu", "relu_grad", "leaky_relu", "sigmoid", "tanh"))
    calls = [(ex01.check_relu, relu["relu"]), (ex01.check_relu_grad, grad["relu_grad"]),
             (ex01.check_leaky_relu, leaky["leaky_relu"], leaky["leaky_relu_grad"]),
             (ex01.check_sigmoid, sigmoid["sigmoid"], sigmoid["sigmoid_grad"]),
             (ex01.check_tanh, tanh["tanh"], tanh["tanh_grad"])]
    for check, *functions in calls:
        assert fx.graded(check, *functions, seed=7301, hidden=True, host=fx.Host(student=student)) is None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("k, passes", [(0.5, True), (3.0, False)])
def test_an_answer_just_inside_the_tolerance_passes_and_just_outside_fails(dtype, k, passes):
    """Off by k times the dtype's tolerance (rtol |v| + atol): half of it passes, three times fails."""
    from course_lib.grading.judges.tolerance import tolerance

    rtol, atol = tolerance(dtype)
    x = np.linspace(-3, 3, 13).astype(dtype)
    want = reference.sigmoid(x.astype(np.float64))
    off = lambda a: (want + k * (rtol * np.abs(want) + atol)).astype(a.dtype)  # noqa: E731
    message = elementwise_verdict("sigmoid", [probes.call(off, x)], [x], [want], hidden=False)
    assert (message is None) is passes, message


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_float32_or_reordered_correct_sigmoid_passes(dtype):
    """Another correct formula (exp(x) / (1 + exp(x)) everywhere where it is stable) and float32 rounding."""
    x = np.linspace(-20, 20, 101).astype(dtype)
    other = lambda a: np.where(a < 0, np.exp(np.minimum(a, 0)) / (1 + np.exp(np.minimum(a, 0))),  # noqa: E731
                               1 / (1 + np.exp(-np.maximum(a, 0)))).astype(a.dtype)
    want = reference.sigmoid(x.astype(np.float64))
    assert elementwise_verdict("sigmoid", [probes.call(other, x)], [x], [want], hidden=False) is None


def test_gelu_by_its_tanh_approximation_is_outside_every_tolerance():
    """The closest plausible mistake in the course: off by up to 4.7e-4, far outside float32's tolerance."""
    import torch

    from course_lib.grading.judges.tolerance import tolerance

    x = torch.linspace(-4, 4, 801, dtype=torch.float64)
    exact, approx = torch.nn.functional.gelu(x).numpy(), torch.nn.functional.gelu(x, approximate="tanh").numpy()
    rtol, atol = tolerance("float32")
    assert not np.allclose(approx, exact, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype, relative", [("float64", 1e-5), ("float32", 1e-3)])
def test_a_small_fixed_error_fails_so_the_tolerance_cannot_silently_grow(dtype, relative):
    """Anchors the table itself: a sigmoid off by 1e-5 (float64) or 1e-3 (float32) relative is wrong."""
    x = np.linspace(-3, 3, 13).astype(dtype)
    want = reference.sigmoid(x.astype(np.float64))
    off = lambda a: (want * (1 + relative)).astype(a.dtype)  # noqa: E731
    assert elementwise_verdict("sigmoid", [probes.call(off, x)], [x], [want], hidden=False)


def test_a_tanh_that_overflows_to_nan_is_told_it_overflows():
    """(e^x - e^-x) / (e^x + e^-x) is inf / inf = nan for |x| ~ 1000: name the overflow, not just wrong values."""
    x = np.array([-1000.0, -1.0, 0.0, 2.0, 1000.0])
    naive = lambda a: (np.exp(a) - np.exp(-a)) / (np.exp(a) + np.exp(-a))  # noqa: E731
    with np.errstate(all="warn"):
        outcome = probes.call(naive, x)
    message = elementwise_verdict("tanh", [outcome], [x], [np.tanh(x)], hidden=False)
    assert message.startswith("tanh: returned nan or inf at 2 of 5 elements: numpy warned") and "overflow" in message
