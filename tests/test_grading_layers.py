"""Grading numpy layers: probes keep plain data, references agree with torch autograd and finite differences,
verdicts name misconceptions without revealing hidden inputs, and the grader's SGD loop trains only with the
student's loss."""

import numpy as np
import pytest
import torch

from course_lib import activations as reference
from course_lib.data import moons
from course_lib.grading.exercises import ex02
from course_lib.grading.layers import (
    NUMERICAL_TOLERANCE,
    Case,
    GradientMisconception,
    expected_layer,
    expected_loss,
    matches,
    numerical_layer_grads,
    numerical_loss_grads,
    probe_layer,
    probe_loss,
    probe_verdict,
    train_numpy_classifier,
)

torch.set_num_threads(1)
AFFINE = (reference.affine_forward, reference.affine_backward)
NAMES = ("dx", "dw", "db")


def affine_case(seed=0, x_shape=(4, 3, 2), m=5, dtype=np.float64) -> Case:
    rng = np.random.default_rng(seed)
    d = int(np.prod(x_shape[1:]))
    inputs = {"x": rng.normal(size=x_shape), "w": rng.normal(size=(d, m)), "b": rng.normal(size=m)}
    return Case({k: v.astype(dtype) for k, v in inputs.items()}, rng.normal(size=(x_shape[0], m)).astype(dtype))


def test_probe_layer_keeps_float64_copies_of_out_and_each_named_gradient():
    probe = probe_layer(*AFFINE, affine_case(dtype=np.float32), NAMES)
    assert probe.error is None and set(probe.values) == {"out", "dx", "dw", "db"}
    assert all(o.value.dtype == np.float64 and o.dtype == "float32" for o in probe.values.values())
    assert probe.value("dx").shape == (4, 3, 2) and probe.value("db").shape == (5,)


def test_a_backward_that_writes_into_dout_or_x_cannot_change_the_grader_case():
    case = Case({"x": np.array([-1.0, 0.0, 2.0])}, np.array([5.0, 6.0, 7.0]))

    def forward(x):
        return np.maximum(x, 0), x

    def backward(dout, x):
        dout[x <= 0] = 0
        x[:] = 99
        return dout

    probe = probe_layer(forward, backward, case, ("dx",))
    assert probe.value("dx").tolist() == [0.0, 0.0, 7.0]
    assert case.inputs["x"].tolist() == [-1.0, 0.0, 2.0] and case.dout.tolist() == [5.0, 6.0, 7.0]


@pytest.mark.parametrize("forward, backward, message", [
    (lambda x, w, b: x, AFFINE[1], "the forward pass must return a pair (out, cache)"),
    (lambda x, w, b: 1 / 0, AFFINE[1], "the forward pass raised ZeroDivisionError"),
    (AFFINE[0], lambda dout, cache: 1 / 0, "the backward pass raised ZeroDivisionError"),
    (AFFINE[0], lambda dout, cache: (dout, dout), "the backward pass must return dx, dw, db: got 2 value(s)"),
])
def test_a_broken_layer_becomes_an_error_naming_the_step_that_failed(forward, backward, message):
    assert probe_layer(forward, backward, affine_case(), NAMES).error.startswith(message)


@pytest.mark.parametrize("x_shape", [(4, 6), (3, 2, 5)])
def test_the_reference_affine_gradients_equal_torch_autograd_and_finite_differences(x_shape):
    case = affine_case(1, x_shape)
    expected = expected_layer(*AFFINE, case, NAMES)
    x, w, b = (torch.tensor(v, requires_grad=True) for v in case.inputs.values())
    out = x.reshape(x.shape[0], -1) @ w + b
    out.backward(torch.tensor(case.dout))
    for name, t in {"out": out, "dx": x.grad, "dw": w.grad, "db": b.grad}.items():
        np.testing.assert_allclose(expected[name], t.detach().numpy(), rtol=1e-12, atol=1e-12)
    numerical = numerical_layer_grads(AFFINE[0], case, ("x", "w", "b"))
    for name, key in zip(NAMES, ("x", "w", "b"), strict=True):
        np.testing.assert_allclose(numerical[key], expected[name], rtol=1e-7, atol=1e-8)


def test_verdict_passes_a_correct_layer_and_fails_a_changed_dtype():
    cases = [affine_case(2), affine_case(3, dtype=np.float32)]
    expected = [expected_layer(*AFFINE, c, NAMES) for c in cases]
    assert probe_verdict("affine", [probe_layer(*AFFINE, c, NAMES) for c in cases], cases, expected) is None

    def upcast_backward(dout, cache):
        return tuple(g.astype(np.float64) for g in reference.affine_backward(dout, cache))

    probes = [probe_layer(AFFINE[0], upcast_backward, c, NAMES) for c in cases]
    message = probe_verdict("affine", probes, cases, expected)
    assert "dx has dtype float64 for float32 inputs" in message and "(1 of 2 test inputs fail)" in message


def wrong_db_backward(dout, cache):
    dx, dw, _ = reference.affine_backward(dout, cache)
    return dx, dw, dout.sum(axis=1)


WRONG_AXIS = GradientMisconception(lambda p, e, c: matches(p, "db", c.dout.sum(axis=1)), "db over the wrong axis")


def test_a_misconception_is_named_only_when_it_explains_every_failing_case():
    cases = [affine_case(4), affine_case(5, (2, 7), 3)]
    expected = [expected_layer(*AFFINE, c, NAMES) for c in cases]
    probes = [probe_layer(AFFINE[0], wrong_db_backward, c, NAMES) for c in cases]
    assert probe_verdict("affine", probes, cases, expected, [WRONG_AXIS]) == "affine: db over the wrong axis"
    unexplained = GradientMisconception(lambda p, e, c: c is cases[0], "only the first case")
    assert "db has shape (4,), expected (5,)" in probe_verdict("affine", probes, cases, expected, [unexplained])


def test_a_hidden_verdict_shows_shapes_and_dtype_but_no_value():
    case = Case({"x": np.array([[0.123456, -7.654321]])}, np.array([[1.0, 1.0]]))

    def forward(x):
        return x * 0 + 5, x

    probe = probe_layer(forward, lambda dout, x: dout, case, ("dx",))
    message = probe_verdict("relu", [probe], [case], [expected_layer(*_relu(), case, ("dx",))], hidden=True)
    assert "a hidden test input (x (1, 2), dtype float64)" in message
    assert "0.123" not in message and "7.65" not in message


def _relu():
    return reference.relu_forward, reference.relu_backward


def naive_loss(params, x, y):
    """ex02's net with an unstabilised softmax (exp of raw scores)."""
    h = np.maximum(x @ params["W1"] + params["b1"], 0)
    scores = h @ params["W2"] + params["b2"]
    p = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    return -np.log(p[np.arange(len(y)), y]).mean(), ex02.two_layer_loss(params, x, y)[1]


def test_the_reference_two_layer_loss_and_gradients_equal_torch_autograd():
    case = ex02.net_cases(0, hidden=True)[0]
    expected = expected_loss(ex02.two_layer_loss, case, ex02.PARAMS)
    t = {k: torch.tensor(case.inputs[k], requires_grad=True) for k in ex02.PARAMS}
    scores = torch.relu(torch.tensor(case.inputs["x"]) @ t["W1"] + t["b1"]) @ t["W2"] + t["b2"]
    loss = torch.nn.functional.cross_entropy(scores, torch.tensor(case.inputs["y"]))
    loss.backward()
    np.testing.assert_allclose(expected["loss"], loss.item(), rtol=1e-12)
    for k in ex02.PARAMS:
        np.testing.assert_allclose(expected[k], t[k].grad.numpy(), rtol=1e-10, atol=1e-12)


def test_finite_differences_of_a_loss_match_its_gradients_away_from_the_kink():
    case = ex02.net_cases(1)[0]
    numerical = numerical_loss_grads(ex02.two_layer_loss, case, ex02.PARAMS)
    probe = probe_loss(ex02.two_layer_loss, case, ex02.PARAMS)
    assert probe_verdict("net", [probe], [case], [numerical], tolerance=NUMERICAL_TOLERANCE) is None


def test_an_overflowing_softmax_is_caught_by_its_warning_although_the_gradients_are_right():
    large = ex02.net_cases(0)[1]
    assert large.inputs["b2"].min() > 700  # np.exp overflows above 709.8
    probe = probe_loss(naive_loss, large, ex02.PARAMS)
    assert any("overflow" in w for w in probe.warnings)
    expected = [expected_loss(ex02.two_layer_loss, large, ex02.PARAMS)]
    assert "two_layer_loss: softmax not stabilised" in _assertion(ex02.check_two_layer_loss, naive_loss)
    assert probe_verdict("net", [probe], [large], expected, warn_free=True)


def _assertion(check, *args, **kwargs) -> str:
    with pytest.raises(AssertionError) as info:
        check(*args, seed=3, **kwargs)
    return str(info.value)


def test_ex02_names_the_relu_kink_and_the_gradient_check_that_always_passes():
    def relu_forward(x):
        return np.maximum(x, 0), x

    def relu_backward_ge(dout, x):
        return dout * (x >= 0)

    assert "passes gradient at x == 0" in _assertion(ex02.check_relu_layer, relu_forward, relu_backward_ge)
    def relu_backward_from_output(dout, out):  # out > 0 exactly where x > 0, so caching the output is right
        return dout * (out > 0)

    for hidden in (False, True):
        ex02.check_relu_layer(lambda x: (np.maximum(x, 0),) * 2, relu_backward_from_output, seed=5, hidden=hidden)
    imported = _assertion(ex02.check_relu_layer, reference.relu_forward, reference.relu_backward)
    assert imported == "relu_forward is course_lib's reference, imported: write your own"
    message = _assertion(ex02.check_gradient_check, lambda loss_fn, params, x, y: dict.fromkeys(params, 0.0))
    assert "passed a loss whose gradient for 'W2' is 1.5 times too large" in message


def softmax_regression(params, x, y=None):
    """A linear softmax classifier: the smallest loss the grader's loop can train."""
    scores = x @ params["W"] + params["b"]
    if y is None:
        return scores
    loss, dscores = ex02.softmax_cross_entropy(scores, y)
    return loss, {"W": x.T @ dscores, "b": dscores.sum(axis=0)}


DATA = moons(n=400, noise=0.1, seed=0)
START = {"W": np.zeros((2, 2)), "b": np.zeros(2)}


def test_the_grader_loop_trains_the_students_loss_and_is_reproducible():
    a = train_numpy_classifier(softmax_regression, START, DATA, epochs=20, lr=0.5, seed=0)
    b = train_numpy_classifier(softmax_regression, START, DATA, epochs=20, lr=0.5, seed=0)
    assert a.error is None and a.test_accuracy > 0.8 and a.test_accuracy == b.test_accuracy
    assert a.n_parameters == 6 and START["W"].sum() == 0  # the caller's params are not trained in place


@pytest.mark.parametrize("loss, message", [
    (lambda p, x, y=None: 1 / 0, "ZeroDivisionError"),
    (lambda p, x, y=None: (0.5, {"W": np.zeros((2, 2))}), "the loss must return grads with the keys ['W', 'b']"),
    (lambda p, x, y=None: (0.5, {"W": np.zeros((2, 3)), "b": np.zeros(2)}), "grads['W'] has shape (2, 3)"),
    (lambda p, x, y=None: (np.nan, {"W": np.zeros((2, 2)), "b": np.zeros(2)}), "the loss became nan at SGD step 1"),
    (lambda p, x, y: softmax_regression(p, x, y), "called without labels, loss(params, x) must return the scores"),
])
def test_the_grader_loop_turns_a_broken_loss_into_an_error_outcome(loss, message):
    assert message in train_numpy_classifier(loss, START, DATA, epochs=1, lr=0.5, seed=0).error


def test_ex02_training_hint_names_a_missing_relu():
    def linear_loss(params, x, y=None):
        return ex02.two_layer_loss(params, x, y, relu=False) if y is not None else ex02.two_layer_loss(
            params, x, relu=False)

    message = _assertion(ex02.check_training, linear_loss, threshold=0.93)
    assert "below the required 0.93: is the ReLU applied between the layers?" in message
