"""course_lib.activations against independent references: torch autograd, finite differences, closed forms."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from course_lib import activations as act
from course_lib.gradcheck import numerical_gradient

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}
SETTINGS = settings(max_examples=20, deadline=None, derandomize=True)

# name -> (numpy function, numpy derivative, torch function); one shared slope for prelu here
ELEMENTWISE = {
    "relu": (act.relu, act.relu_grad, F.relu),
    "leaky_relu": (
        lambda x: act.leaky_relu(x, 0.1),
        lambda x: act.leaky_relu_grad(x, 0.1),
        lambda t: F.leaky_relu(t, 0.1),
    ),
    "prelu": (
        lambda x: act.prelu(x, 0.25),
        lambda x: act.prelu_grad(x, 0.25)[0],
        lambda t: F.prelu(t, torch.tensor([0.25], dtype=t.dtype)),
    ),
    "elu": (lambda x: act.elu(x, 1.5), lambda x: act.elu_grad(x, 1.5), lambda t: F.elu(t, 1.5)),
    "softplus": (
        lambda x: act.softplus(x, 2.0),
        lambda x: act.softplus_grad(x, 2.0),
        lambda t: F.softplus(t, 2.0),
    ),
    "sigmoid": (act.sigmoid, act.sigmoid_grad, torch.sigmoid),
    "tanh": (act.tanh, act.tanh_grad, torch.tanh),
    "gelu": (act.gelu, act.gelu_grad, F.gelu),
    "gelu_tanh": (
        lambda x: act.gelu(x, approximate="tanh"),
        lambda x: act.gelu_grad(x, approximate="tanh"),
        lambda t: F.gelu(t, approximate="tanh"),
    ),
    "silu": (act.silu, act.silu_grad, F.silu),
}


def torch_value_and_grad(torch_fn, x: np.ndarray, dout: np.ndarray | None = None):
    """torch_fn(x) and the gradient of sum(torch_fn(x) * dout) w.r.t. x, by autograd, as numpy."""
    t = torch.tensor(x, requires_grad=True)
    y = torch_fn(t)
    y.backward(torch.ones_like(y) if dout is None else torch.tensor(dout))
    return y.detach().numpy(), t.grad.numpy()


def float_arrays(dtype, min_dims=0, max_dims=3, bound=8.0):
    """Finite arrays of `dtype`, any small shape, values in [-bound, bound] (including exact zeros)."""
    width = 32 if dtype == np.float32 else 64
    elements = st.floats(-bound, bound, allow_nan=False, width=width)
    shapes = array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=5)
    return arrays(dtype, shapes, elements=elements)


# ---- every element-wise function and derivative vs torch ---------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_function_and_derivative_match_torch_autograd(name, dtype):
    fn, grad_fn, torch_fn = ELEMENTWISE[name]

    @SETTINGS
    @given(x=float_arrays(dtype))
    def check(x):
        expected, expected_grad = torch_value_and_grad(torch_fn, x)
        out, grad = fn(x), grad_fn(x)
        assert np.asarray(out).dtype == dtype and np.asarray(grad).dtype == dtype
        np.testing.assert_allclose(out, expected, **TOL[dtype])
        np.testing.assert_allclose(grad, expected_grad, **TOL[dtype])

    check()


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_derivative_matches_finite_differences_away_from_kinks(name):
    fn, grad_fn, _ = ELEMENTWISE[name]
    rng = np.random.default_rng(0)
    x = rng.uniform(0.05, 4.0, size=(4, 6)) * rng.choice([-1.0, 1.0], size=(4, 6))
    expected = numerical_gradient(lambda v: np.sum(fn(v)), x)
    np.testing.assert_allclose(grad_fn(x), expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_derivative_at_the_kink_and_at_negative_zero_matches_torch(name, dtype):
    fn, grad_fn, torch_fn = ELEMENTWISE[name]
    x = np.array([-1.0, -0.0, 0.0, 1.0], dtype=dtype)
    expected, expected_grad = torch_value_and_grad(torch_fn, x)
    np.testing.assert_allclose(fn(x), expected, **TOL[dtype])
    np.testing.assert_array_equal(grad_fn(x)[1:3], expected_grad[1:3])  # exact: a convention, not a number


@pytest.mark.parametrize("name", ["elu", "softplus", "sigmoid", "tanh", "gelu", "gelu_tanh", "silu"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_smooth_functions_stay_finite_and_match_torch_at_large_inputs(name, dtype):
    fn, grad_fn, torch_fn = ELEMENTWISE[name]
    x = np.array([-1000.0, -60.0, -15.0, 15.0, 60.0, 1000.0], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out, grad = fn(x), grad_fn(x)
    expected, expected_grad = torch_value_and_grad(torch_fn, x)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-6, atol=1e-7)


def test_softplus_is_stable_where_the_naive_formula_overflows():
    x = np.array([-1000.0, 0.0, 1000.0])
    with np.errstate(over="raise"):
        np.testing.assert_allclose(act.softplus(x), [0.0, np.log(2.0), 1000.0], rtol=1e-15, atol=1e-300)
        np.testing.assert_allclose(act.softplus(x, beta=0.5), [0.0, 2 * np.log(2.0), 1000.0], rtol=1e-15, atol=1e-200)


# ---- the kink ----------------------------------------------------------------------------------------


def test_relu_grad_is_zero_at_the_kink_like_torch():
    x = np.array([-2.0, 0.0, 3.0])
    assert act.relu_grad(x).tolist() == [0.0, 0.0, 1.0]
    assert torch_value_and_grad(F.relu, x)[1].tolist() == [0.0, 0.0, 1.0]


@pytest.mark.parametrize("at_zero", [0.0, 0.5, 1.0])
def test_relu_grad_uses_at_zero_only_at_the_kink(at_zero):
    assert act.relu_grad(np.array([-1e-300, 0.0, 1e-300]), at_zero=at_zero).tolist() == [0.0, at_zero, 1.0]


@pytest.mark.parametrize("at_zero", [-0.1, 1.5, float("nan")])
def test_relu_grad_refuses_at_zero_outside_the_subgradient_interval(at_zero):
    with pytest.raises(ValueError, match=r"at_zero=.*subgradient.*\[0, 1\]"):
        act.relu_grad(np.zeros(3), at_zero=at_zero)


def test_leaky_relu_and_prelu_grad_at_the_kink_is_the_negative_slope():
    zero = np.zeros(1)
    torch_grad = torch_value_and_grad(lambda t: F.leaky_relu(t, 0.2), zero)[1][0]
    assert act.leaky_relu_grad(zero, slope=0.2)[0] == torch_grad == 0.2
    assert act.prelu_grad(zero, 0.3)[0][0] == 0.3


def test_elu_grad_at_the_kink_is_alpha_like_torch():
    torch_grad = torch_value_and_grad(lambda t: F.elu(t, 2.0), np.zeros(1))[1][0]
    assert act.elu_grad(np.zeros(1), alpha=2.0)[0] == torch_grad == 2.0


# ---- dtypes and bad inputs ---------------------------------------------------------------------------


def test_python_scalars_and_lists_become_float64():
    assert act.relu([1, -2, 0]).dtype == np.float64
    assert act.relu_grad(3).dtype == np.float64
    assert act.sigmoid(0.0) == 0.5


ALL_FUNCTIONS = {
    "relu": act.relu,
    "relu_grad": act.relu_grad,
    "leaky_relu": act.leaky_relu,
    "leaky_relu_grad": act.leaky_relu_grad,
    "prelu": lambda x: act.prelu(x, 0.1),
    "prelu_grad": lambda x: act.prelu_grad(x, 0.1),
    "elu": act.elu,
    "elu_grad": act.elu_grad,
    "softplus": act.softplus,
    "softplus_grad": act.softplus_grad,
    "sigmoid": act.sigmoid,
    "sigmoid_grad": act.sigmoid_grad,
    "tanh": act.tanh,
    "tanh_grad": act.tanh_grad,
    "gelu": act.gelu,
    "gelu_grad": act.gelu_grad,
    "silu": act.silu,
    "silu_grad": act.silu_grad,
    "maxout": lambda x: act.maxout(x, 2),
    "maxout_grad": lambda x: act.maxout_grad(x, 2),
    "relu_forward": act.relu_forward,
    "leaky_relu_forward": act.leaky_relu_forward,
    "maxout_forward": lambda x: act.maxout_forward(x, 2),
}


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_])
@pytest.mark.parametrize("name", sorted(ALL_FUNCTIONS))
def test_integer_and_bool_arrays_are_refused_with_a_conversion_hint(name, dtype):
    x = np.ones((2, 4), dtype=dtype)
    with pytest.raises(ValueError, match=rf"dtype {np.dtype(dtype)}.*astype\(np.float64\)"):
        ALL_FUNCTIONS[name](x)


def test_gelu_refuses_an_unknown_approximation():
    with pytest.raises(ValueError, match="'erf'"):
        act.gelu(np.zeros(2), approximate="erf")


# ---- PReLU -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 7), (2, 3, 4, 5)])
def test_prelu_per_channel_value_dx_and_da_match_torch_autograd(shape, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(dtype)
    x.flat[::5] = 0.0  # the kink: torch gives dx = a there and no contribution to da
    a = rng.uniform(0.05, 0.5, size=shape[1]).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    xt, at = torch.tensor(x, requires_grad=True), torch.tensor(a, requires_grad=True)
    yt = F.prelu(xt, at)
    yt.backward(torch.tensor(dout))

    dx, da = act.prelu_grad(x, a, dout)
    np.testing.assert_allclose(act.prelu(x, a), yt.detach().numpy(), **TOL[dtype])
    np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(da, at.grad.numpy(), rtol=1e-5 if dtype == np.float32 else 1e-10, atol=1e-5)
    assert dx.shape == x.shape and da.shape == a.shape and dx.dtype == da.dtype == dtype


@pytest.mark.parametrize("a", [0.2, np.float64(0.2), np.array(0.2), np.array([0.2])])
def test_prelu_with_one_shared_slope_accepts_a_float_0d_or_shape_1_and_returns_da_in_its_shape(a):
    x = np.array([[-1.0, 2.0], [-3.0, 0.0]])
    np.testing.assert_allclose(act.prelu(x, a), [[-0.2, 2.0], [-0.6, 0.0]])
    dx, da = act.prelu_grad(x, a)
    np.testing.assert_allclose(dx, [[0.2, 1.0], [0.2, 0.2]])
    assert np.shape(da) == np.shape(a) and np.allclose(da, -4.0)  # sum of x over x <= 0


def test_prelu_shared_slope_gradient_matches_finite_differences():
    x = np.random.default_rng(2).standard_normal((3, 4, 2))
    dout = np.random.default_rng(3).standard_normal((3, 4, 2))
    a = np.array([0.3])
    expected = numerical_gradient(lambda v: np.sum(act.prelu(x, v) * dout), a)
    np.testing.assert_allclose(act.prelu_grad(x, a, dout)[1], expected, rtol=1e-7)


@pytest.mark.parametrize(
    ("x_shape", "a_shape"),
    [((2, 4), (3,)), ((6,), (3,)), ((2, 3, 5), (5,)), ((2, 3), (3, 1))],
)
def test_prelu_refuses_a_slope_shape_that_does_not_match_the_channels_and_names_both_shapes(x_shape, a_shape):
    x, a = np.ones(x_shape), np.full(a_shape, 0.1)
    names_both = rf"slope of shape \({a_shape[0]},.*input of shape \({x_shape[0]},"
    for call in (lambda: act.prelu(x, a), lambda: act.prelu_grad(x, a)):
        with pytest.raises(ValueError, match=names_both):
            call()


# ---- Maxout ------------------------------------------------------------------------------------------


def torch_maxout(t: torch.Tensor, k: int) -> torch.Tensor:
    """Max over contiguous groups of k along the last axis, written independently for the tests."""
    return t.view(*t.shape[:-1], t.shape[-1] // k, k).max(-1).values


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_maxout_and_its_gradient_match_torch_autograd(k, dtype):
    @SETTINGS
    @given(
        z=arrays(
            dtype,
            st.tuples(st.integers(1, 3), st.integers(1, 4)).map(lambda s: (s[0], s[1] * k)),
            elements=st.floats(-4, 4, width=32),  # few distinct values: many ties, routed like torch's
        ),
        seed=st.integers(0, 2**16),
    )
    def check(z, seed):
        dout = np.random.default_rng(seed).standard_normal((z.shape[0], z.shape[1] // k)).astype(dtype)
        expected, expected_dz = torch_value_and_grad(lambda t: torch_maxout(t, k), z, dout)
        out, dz = act.maxout(z, k), act.maxout_grad(z, k, dout)
        assert out.dtype == dz.dtype == dtype and dz.shape == z.shape
        np.testing.assert_array_equal(out, expected)
        np.testing.assert_allclose(dz, expected_dz, **TOL[dtype])

    check()


def test_maxout_groups_contiguous_pieces_along_the_last_axis():
    z = np.arange(12.0).reshape(2, 6) * np.array([1, -1, 1, -1, 1, -1])
    # unit j of row 0 takes the max of z[0, 2j], z[0, 2j + 1]
    np.testing.assert_array_equal(act.maxout(z, 2), [[0.0, 2.0, 4.0], [6.0, 8.0, 10.0]])
    assert act.maxout(np.zeros((2, 3, 8)), 4).shape == (2, 3, 2)


def test_maxout_grad_routes_a_tie_to_the_first_maximum_like_torch_max():
    z = np.array([[1.0, 1.0, 0.0, 2.0, 2.0, 2.0]])
    expected = torch_value_and_grad(lambda t: torch_maxout(t, 3), z)[1]
    np.testing.assert_array_equal(act.maxout_grad(z, 3), [[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(act.maxout_grad(z, 3), expected)


@pytest.mark.parametrize(("width", "k"), [(5, 2), (6, 4), (6, 0), (6, -3)])
def test_maxout_refuses_a_width_not_split_into_groups_of_k_and_names_both(width, k):
    z = np.ones((2, width))
    for call in (lambda: act.maxout(z, k), lambda: act.maxout_grad(z, k), lambda: act.maxout_forward(z, k)):
        with pytest.raises(ValueError, match=rf"width is {width} and k={k}"):
            call()


def test_maxout_refuses_a_non_integer_k():
    with pytest.raises(ValueError, match="k=2.0"):
        act.maxout(np.ones((2, 4)), 2.0)


def test_maxout_grad_refuses_dout_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"dout has shape \(2, 4\).*\(2, 2\)"):
        act.maxout_grad(np.ones((2, 4)), 2, np.ones((2, 4)))


# ---- CS231n-style layers -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape", [(4, 6), (4, 2, 3), (3, 2, 1, 3)])
def test_affine_forward_and_backward_match_torch_autograd(x_shape, dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((6, 5)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    dout = rng.standard_normal((x_shape[0], 5)).astype(dtype)
    xt, wt, bt = (torch.tensor(v, requires_grad=True) for v in (x, w, b))
    yt = xt.reshape(x_shape[0], -1) @ wt + bt
    yt.backward(torch.tensor(dout))

    out, cache = act.affine_forward(x, w, b)
    dx, dw, db = act.affine_backward(dout, cache)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else TOL[dtype]
    np.testing.assert_allclose(out, yt.detach().numpy(), **tol)
    for got, want in [(dx, xt.grad), (dw, wt.grad), (db, bt.grad)]:
        assert got.shape == want.shape and got.dtype == dtype
        np.testing.assert_allclose(got, want.numpy(), **tol)


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "b_shape"),
    [((4, 6), (5, 3), (3,)), ((4, 2, 3), (6, 3), (4,)), ((6,), (6, 3), (3,)), ((4, 6), (6,), (3,))],
)
def test_affine_forward_refuses_mismatched_shapes_and_names_them(x_shape, w_shape, b_shape):
    with pytest.raises(ValueError) as info:
        act.affine_forward(np.ones(x_shape), np.ones(w_shape), np.ones(b_shape))
    assert all(str(s) in str(info.value) for s in (x_shape, w_shape, b_shape))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "layer",
    ["relu", "leaky_relu", "maxout"],
)
def test_activation_layers_forward_and_backward_match_torch_autograd(layer, dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3, 6)).astype(dtype)
    x[0, 0] = 0.0  # kinks, and a maxout tie
    forward, backward, torch_fn = {
        "relu": (act.relu_forward, act.relu_backward, F.relu),
        "leaky_relu": (
            lambda v: act.leaky_relu_forward(v, 0.05),
            act.leaky_relu_backward,
            lambda t: F.leaky_relu(t, 0.05),
        ),
        "maxout": (lambda v: act.maxout_forward(v, 3), act.maxout_backward, lambda t: torch_maxout(t, 3)),
    }[layer]
    out, cache = forward(x)
    dout = rng.standard_normal(out.shape).astype(dtype)
    expected, expected_dx = torch_value_and_grad(torch_fn, x, dout)
    dx = backward(dout, cache)
    assert out.dtype == dx.dtype == dtype and dx.shape == x.shape
    np.testing.assert_allclose(out, expected, **TOL[dtype])
    np.testing.assert_allclose(dx, expected_dx, **TOL[dtype])


def test_relu_backward_refuses_dout_of_the_wrong_shape():
    _, cache = act.relu_forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(2, 3\)"):
        act.relu_backward(np.ones((3, 2)), cache)


def test_leaky_relus_default_slope_is_torchs():
    """The default slope is torch's nn.LeakyReLU's (0.01): exercises, notebooks and torch agree on it."""
    import inspect

    torch_default = torch.nn.LeakyReLU().negative_slope
    for fn in (act.leaky_relu, act.leaky_relu_grad, act.leaky_relu_forward):
        assert inspect.signature(fn).parameters["slope"].default == torch_default == 0.01
    x = np.array([-2.0, 3.0])
    assert act.leaky_relu(x).tolist() == F.leaky_relu(torch.as_tensor(x)).tolist()
