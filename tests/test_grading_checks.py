"""Probes keep only plain data; verdicts name misconceptions and never reveal hidden inputs."""

import numpy as np
import pytest

from course_lib import activations as reference
from course_lib.grading import checks, probes
from course_lib.grading.exercises import ex01
from course_lib.grading.inputs import elementwise_inputs
from course_lib.grading.verdict import elementwise_verdict


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


def test_a_correct_function_passes():
    checks.elementwise("relu", reference.relu, reference.relu, seed=0)


def test_always_equal_object_does_not_pass():
    with pytest.raises(AssertionError, match="wrong values"):
        checks.elementwise("relu", lambda a: np.zeros(a.shape, a.dtype).view(AlwaysEqual), reference.relu, seed=0)


def test_the_kink_misconception_is_named():
    with pytest.raises(AssertionError, match=r"relu_grad\(0\) returned 1: any value in \[0, 1\] is a subgradient"):
        ex01.check_relu_grad(lambda a: (a >= 0).astype(a.dtype), seed=0)


def test_a_dtype_change_is_explained():
    with pytest.raises(AssertionError, match="returned dtype float64 for a float32 input"):
        ex01.check_relu(lambda a: np.maximum(a, 0).astype(np.float64), seed=0)


def test_hidden_verdict_describes_an_input_by_shape_and_dtype_only():
    inputs = [np.array([0.123456, -7.654321])]
    outcomes = [probes.call(lambda a: a * 0 + 5, x) for x in inputs]
    message = elementwise_verdict("f", outcomes, inputs, [reference.relu(inputs[0])], hidden=True)
    assert "hidden test input (shape (2,), dtype float64)" in message
    assert "0.123" not in message and "7.65" not in message


def test_overflowing_sigmoid_fails_even_when_its_values_are_right():
    naive = lambda a: (1 / (1 + np.exp(-a))).astype(a.dtype)  # noqa: E731
    with pytest.raises(AssertionError, match="overflow"):
        ex01.check_sigmoid(naive, reference.sigmoid_grad, seed=0)
