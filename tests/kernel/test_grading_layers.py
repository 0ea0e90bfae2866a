"""Grading numpy layers: kernel probes keep plain data, host references agree with torch autograd and finite
differences, verdicts name misconceptions without revealing hidden inputs, a record that is not what a probe
writes is refused, and the grader's SGD loop trains only with the student's loss and sees no test label."""

import numpy as np
import pytest
import torch

from course_lib import activations as reference
from course_lib.data import moons
from course_lib.gradcheck import numerical_gradient_array
from course_lib.grading.judges import ex02 as judge
from course_lib.grading.judges.layers import (
    NUMERICAL_TOLERANCE,
    Case,
    GradientMisconception,
    expected_layer,
    expected_loss,
    gradients,
    matches,
    probe_verdict,
    probes,
)
from course_lib.grading.kernel.layers import (
    Probe,
    numerical_loss_grads,
    probe_layer,
    probe_loss,
    train_numpy_classifier,
)
from course_lib.grading.kernel.probes import Outcome

torch.set_num_threads(1)
AFFINE = (reference.affine_forward, reference.affine_backward)
NAMES = ("dx", "dw", "db")
PARAMS = judge.PARAMS


def affine_case(seed=0, x_shape=(4, 3, 2), m=5, dtype=np.float64) -> Case:
    rng = np.random.default_rng(seed)
    d = int(np.prod(x_shape[1:]))
    inputs = {"x": rng.normal(size=x_shape), "w": rng.normal(size=(d, m)), "b": rng.normal(size=m)}
    return Case({k: v.astype(dtype) for k, v in inputs.items()}, rng.normal(size=(x_shape[0], m)).astype(dtype))


def probe_case(forward, backward, case: Case, names=NAMES) -> Probe:
    """The kernel probe run on what the sandbox would be given of `case`."""
    given = case.layer_given()
    return probe_layer(forward, backward, given["args"], given["dout"], names)


def test_probe_layer_keeps_float64_copies_of_out_and_each_named_gradient():
    probe = probe_case(*AFFINE, affine_case(dtype=np.float32))
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

    probe = probe_case(forward, backward, case, ("dx",))
    assert probe.value("dx").tolist() == [0.0, 0.0, 7.0]
    assert case.inputs["x"].tolist() == [-1.0, 0.0, 2.0] and case.dout.tolist() == [5.0, 6.0, 7.0]


@pytest.mark.parametrize("forward, backward, message", [
    (lambda x, w, b: x, AFFINE[1], "the forward pass must return a pair (out, cache)"),
    (lambda x, w, b: 1 / 0, AFFINE[1], "the forward pass raised ZeroDivisionError"),
    (AFFINE[0], lambda dout, cache: 1 / 0, "the backward pass raised ZeroDivisionError"),
    (AFFINE[0], lambda dout, cache: (dout, dout), "the backward pass must return dx, dw, db: got 2 value(s)"),
])
def test_a_broken_layer_becomes_an_error_naming_the_step_that_failed(forward, backward, message):
    assert probe_case(forward, backward, affine_case()).error.startswith(message)


@pytest.mark.parametrize("x_shape", [(4, 6), (3, 2, 5)])
def test_the_reference_affine_gradients_equal_torch_autograd_and_finite_differences(x_shape):
    case = affine_case(1, x_shape)
    expected = expected_layer(*AFFINE, case, NAMES)
    x, w, b = (torch.tensor(v, requires_grad=True) for v in case.inputs.values())
    out = x.reshape(x.shape[0], -1) @ w + b
    out.backward(torch.tensor(case.dout))
    for name, t in {"out": out, "dx": x.grad, "dw": w.grad, "db": b.grad}.items():
        np.testing.assert_allclose(expected[name], t.detach().numpy(), rtol=1e-12, atol=1e-12)
    for name, key in zip(NAMES, ("x", "w", "b"), strict=True):
        def f(value, key=key):
            return AFFINE[0](*{**case.inputs, key: value}.values())[0]
        numerical = numerical_gradient_array(f, case.inputs[key].copy(), case.dout)
        np.testing.assert_allclose(numerical, expected[name], rtol=1e-7, atol=1e-8)


def test_verdict_passes_a_correct_layer_and_fails_a_changed_dtype():
    cases = [affine_case(2), affine_case(3, dtype=np.float32)]
    expected = [expected_layer(*AFFINE, c, NAMES) for c in cases]
    assert probe_verdict("affine", [probe_case(*AFFINE, c) for c in cases], cases, expected) is None

    def upcast_backward(dout, cache):
        return tuple(g.astype(np.float64) for g in reference.affine_backward(dout, cache))

    found = [probe_case(AFFINE[0], upcast_backward, c) for c in cases]
    message = probe_verdict("affine", found, cases, expected)
    assert "dx has dtype float64 for float32 inputs" in message and "(1 of 2 test inputs fail)" in message


def wrong_db_backward(dout, cache):
    dx, dw, _ = reference.affine_backward(dout, cache)
    return dx, dw, dout.sum(axis=1)


WRONG_AXIS = GradientMisconception(lambda p, e, c: matches(p, "db", c.dout.sum(axis=1)), "db over the wrong axis")


def test_a_misconception_is_named_only_when_it_explains_every_failing_case():
    cases = [affine_case(4), affine_case(5, (2, 7), 3)]
    expected = [expected_layer(*AFFINE, c, NAMES) for c in cases]
    found = [probe_case(AFFINE[0], wrong_db_backward, c) for c in cases]
    assert probe_verdict("affine", found, cases, expected, [WRONG_AXIS]) == "affine: db over the wrong axis"
    unexplained = GradientMisconception(lambda p, e, c: c is cases[0], "only the first case")
    assert "db has shape (4,), expected (5,)" in probe_verdict("affine", found, cases, expected, [unexplained])


def test_a_hidden_verdict_shows_shapes_and_dtype_but_no_value():
    case = Case({"x": np.array([[0.123456, -7.654321]])}, np.array([[1.0, 1.0]]))

    def forward(x):
        return x * 0 + 5, x

    probe = probe_case(forward, lambda dout, x: dout, case, ("dx",))
    expected = [expected_layer(reference.relu_forward, reference.relu_backward, case, ("dx",))]
    message = probe_verdict("relu", [probe], [case], expected, hidden=True)
    assert "a hidden test input (x (1, 2), dtype float64)" in message
    assert "0.123" not in message and "7.65" not in message


GOOD = Probe({"out": Outcome(np.zeros(2), "float64", "ndarray")})


@pytest.mark.parametrize("data", [
    None, "all tests passed", 10**400, [10**400], {"probes": []}, [GOOD, GOOD], [],
    [Probe({"out": "yes"})], [Probe({1: GOOD.values["out"]})], [Probe({"out": Outcome(np.zeros(2, np.float32))})],
    [Probe({"out": Outcome(None)})], [Probe(GOOD.values, error=5)], [Probe(GOOD.values, warnings=[1])],
])
def test_data_that_is_not_one_probe_per_input_is_refused(data):
    assert probes([GOOD], 1) == [GOOD]
    with pytest.raises(ValueError, match="not one probe per test input"):
        probes(data, 1)


@pytest.mark.parametrize("value", [
    {"W": np.zeros(2)}, {"W": np.zeros(3), "b": np.zeros(1)}, {"W": np.zeros(2, np.float32), "b": np.zeros(1)},
    {"W": [0.0, 0.0], "b": np.zeros(1)}, [np.zeros(2), np.zeros(1)], 10**400,
])
def test_gradients_that_are_not_one_float64_array_per_parameter_are_refused(value):
    shapes = {"W": (2,), "b": (1,)}
    assert gradients({"W": np.zeros(2), "b": np.zeros(1)}, shapes) is not None
    with pytest.raises(ValueError, match="not a gradient per parameter"):
        gradients(value, shapes)


# ---- losses ---------------------------------------------------------------------------------------------


def naive_loss(params, x, y):
    """ex02's net with an unstabilised softmax (exp of raw scores)."""
    h = np.maximum(x @ params["W1"] + params["b1"], 0)
    scores = h @ params["W2"] + params["b2"]
    p = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    return -np.log(p[np.arange(len(y)), y]).mean(), judge.two_layer_loss(params, x, y)[1]


def probe_net(loss_fn, case: Case) -> Probe:
    return probe_loss(loss_fn, {k: case.inputs[k] for k in PARAMS}, case.inputs["x"], case.inputs["y"])


def test_the_reference_two_layer_loss_and_gradients_equal_torch_autograd():
    case = judge.net_cases(0, hidden=True)[0]
    expected = expected_loss(judge.two_layer_loss, case, PARAMS)
    t = {k: torch.tensor(case.inputs[k], requires_grad=True) for k in PARAMS}
    scores = torch.relu(torch.tensor(case.inputs["x"]) @ t["W1"] + t["b1"]) @ t["W2"] + t["b2"]
    loss = torch.nn.functional.cross_entropy(scores, torch.tensor(case.inputs["y"]))
    loss.backward()
    np.testing.assert_allclose(expected["loss"], loss.item(), rtol=1e-12)
    for k in PARAMS:
        np.testing.assert_allclose(expected[k], t[k].grad.numpy(), rtol=1e-10, atol=1e-12)


def test_the_gradient_checks_loss_has_the_gradients_the_host_hands_out():
    net = judge.random_net(np.random.default_rng(0), 6, 3, 5, 3)
    t = {k: torch.tensor(v, requires_grad=True) for k, v in net["params"].items()}
    scores = torch.tanh(torch.tensor(net["x"]) @ t["W1"] + t["b1"]) @ t["W2"] + t["b2"]
    loss = 0.5 * ((scores - torch.eye(3, dtype=torch.float64)[net["y"]]) ** 2).sum() / 6
    loss.backward()
    np.testing.assert_allclose(judge.tanh_squared_error(net["params"], net["x"], net["y"]), loss.item(), rtol=1e-12)
    grads = judge.tanh_squared_error_grads(net["params"], net["x"], net["y"])
    for k in PARAMS:
        np.testing.assert_allclose(grads[k], t[k].grad.numpy(), rtol=1e-10, atol=1e-14)


def test_finite_differences_of_a_loss_match_its_gradients_away_from_the_kink():
    case = judge.net_cases(1)[0]
    params = {k: case.inputs[k] for k in PARAMS}
    numerical = numerical_loss_grads(judge.two_layer_loss, params, case.inputs["x"], case.inputs["y"])
    probe = probe_net(judge.two_layer_loss, case)
    assert probe_verdict("net", [probe], [case], [numerical], tolerance=NUMERICAL_TOLERANCE) is None
    assert numerical_loss_grads(lambda p, x, y: 1 / 0, params, case.inputs["x"], case.inputs["y"]) is None


def test_an_overflowing_softmax_is_caught_by_its_warning_although_the_gradients_are_right():
    large = judge.net_cases(0)[1]
    assert large.inputs["b2"].min() > 700  # np.exp overflows above 709.8
    probe = probe_net(naive_loss, large)
    assert any("overflow" in w for w in probe.warnings)
    expected = [expected_loss(judge.two_layer_loss, large, PARAMS)]
    assert probe_verdict("net", [probe], [large], expected, warn_free=True)


# ---- the grader's training loop -------------------------------------------------------------------------


def softmax_regression(params, x, y=None):
    """A linear softmax classifier: the smallest loss the grader's loop can train."""
    scores = x @ params["W"] + params["b"]
    if y is None:
        return scores
    loss, dscores = judge.softmax_cross_entropy(scores, y)
    return loss, {"W": x.T @ dscores, "b": dscores.sum(axis=0)}


DATA = moons(n=400, noise=0.1, seed=0).numpy()
START = {"W": np.zeros((2, 2)), "b": np.zeros(2)}


def train(loss, epochs=20):
    return train_numpy_classifier(loss, START, DATA.x_train, DATA.y_train, DATA.x_test, 2, epochs, 0.5, seed=0)


def test_the_grader_loop_trains_the_students_loss_predicts_inputs_only_and_is_reproducible():
    (a, trained), (b, _) = train(softmax_regression), train(softmax_regression)
    assert a.error is None and a.test_accuracy is None and a.predictions.dtype == np.int64
    assert np.mean(a.predictions == DATA.y_test) > 0.8 and np.array_equal(a.predictions, b.predictions)
    assert np.array_equal(a.predictions, softmax_regression(trained, DATA.x_test.astype(np.float64)).argmax(1))
    assert a.n_parameters == 6 and START["W"].sum() == 0  # the caller's params are not trained in place


def test_the_grader_loop_hands_the_loss_no_test_label():
    seen = []

    def watching(params, x, y=None):
        seen.append(y)
        return softmax_regression(params, x, y)

    train(watching, epochs=1)
    assert seen[-1] is None and all(len(y) <= 50 for y in seen[:-1])


@pytest.mark.parametrize("loss, message", [
    (lambda p, x, y=None: 1 / 0, "ZeroDivisionError"),
    (lambda p, x, y=None: (0.5, {"W": np.zeros((2, 2))}), "the loss must return grads with the keys ['W', 'b']"),
    (lambda p, x, y=None: (0.5, {"W": np.zeros((2, 3)), "b": np.zeros(2)}), "grads['W'] has shape (2, 3)"),
    (lambda p, x, y=None: (np.nan, {"W": np.zeros((2, 2)), "b": np.zeros(2)}), "the loss became nan at SGD step 1"),
    (lambda p, x, y: softmax_regression(p, x, y), "called without labels, loss(params, x) must return the scores"),
])
def test_the_grader_loop_turns_a_broken_loss_into_an_error_outcome(loss, message):
    assert message in train(loss, epochs=1)[0].error
