"""The data loaders: shapes, dtypes, disjoint deterministic splits, the MNIST-1D cache, bad input."""

import random

import numpy as np
import pytest
import torch

from course_lib import data

SMALL_MNIST1D = 500  # 50 examples per digit: fast to generate


def rows(x: np.ndarray) -> set[bytes]:
    return {r.tobytes() for r in np.ascontiguousarray(x)}


def assert_disjoint_and_complete(split: data.Split, n_total: int) -> None:
    parts = [rows(split.x_train), rows(split.x_val), rows(split.x_test)]
    assert sum(len(p) for p in parts) == len(split.y_train) + len(split.y_val) + len(split.y_test) == n_total
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


# ---------------------------------------------------------------- digits


def test_digits_are_float32_pixels_in_unit_interval_with_int64_labels_0_to_9():
    d = data.digits()
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert d.n_features == 64 and d.n_classes == 10
    for x, y in (d.train, d.val, d.test):
        assert x.min() >= 0 and x.max() <= 1 and set(np.unique(y)) == set(range(10))
    assert max(x.max() for x, _ in (d.train, d.val, d.test)) == 1.0


def test_digits_split_sizes_follow_the_fractions_and_splits_are_disjoint():
    d = data.digits(val=0.2, test=0.1)
    assert (len(d.y_val), len(d.y_test)) == (round(0.2 * 1797), round(0.1 * 1797))
    assert_disjoint_and_complete(d, 1797)


def test_digits_splits_are_stratified():
    d = data.digits(val=0.2, test=0.2)
    for y in (d.y_train, d.y_val, d.y_test):
        share = np.bincount(y, minlength=10) / len(y)
        assert np.all(np.abs(share - 0.1) < 0.02)


def test_digits_are_deterministic_for_a_seed_and_differ_across_seeds():
    a, b, c = data.digits(seed=3), data.digits(seed=3), data.digits(seed=4)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_test, c.x_test)


def test_torch_split_has_float32_features_and_int64_labels():
    d = data.digits(as_torch=True)
    assert isinstance(d.x_train, torch.Tensor) and d.x_train.dtype == torch.float32
    assert d.y_val.dtype == torch.int64 and d.n_classes == 10
    np.testing.assert_array_equal(d.numpy().x_test, data.digits().x_test)


def test_zero_validation_fraction_gives_an_empty_validation_split():
    d = data.digits(val=0.0)
    assert d.x_val.shape == (0, 64) and len(d.y_val) == 0
    assert_disjoint_and_complete(d, 1797)


def test_standardize_uses_training_statistics_only():
    d = data.standardize(data.digits())
    used = d.x_train.std(0) > 0
    np.testing.assert_allclose(d.x_train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(d.x_train.std(0)[used], 1, atol=1e-4)
    assert abs(d.x_test.mean()) > 1e-4  # the test set was not centred with its own mean


# ---------------------------------------------------------------- MNIST-1D


def test_mnist1d_shapes_dtypes_and_the_package_train_test_split(cache):
    d = data.mnist1d(num_samples=SMALL_MNIST1D, val=0.1, cache_dir=cache)
    assert d.x_train.shape == (360, 40) and d.x_val.shape == (40, 40) and d.x_test.shape == (100, 40)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert d.n_classes == 10 and set(np.unique(d.y_train)) == set(range(10))
    part = np.bincount(np.concatenate([d.y_train, d.y_val]))  # the package's training part
    assert np.all(np.abs(np.bincount(d.y_val) - 0.1 * part) <= 1)  # stratified: a tenth of each digit
    assert_disjoint_and_complete(d, SMALL_MNIST1D)


def test_mnist1d_matches_a_direct_make_dataset_call_and_keeps_its_test_split(cache):
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed = SMALL_MNIST1D, 7
    ref = make_dataset(args)
    d = data.mnist1d(num_samples=SMALL_MNIST1D, seed=7, cache_dir=cache)
    np.testing.assert_array_equal(d.x_test, ref["x_test"].astype(np.float32))
    np.testing.assert_array_equal(d.y_test, ref["y_test"])
    train = np.concatenate([d.x_train, d.x_val])
    assert rows(train) == rows(ref["x"].astype(np.float32))
    assert sorted(np.concatenate([d.y_train, d.y_val])) == sorted(ref["y"])


def test_mnist1d_leaves_the_callers_numpy_and_python_rng_state_unchanged(tmp_path):
    np.random.seed(123)
    random.seed(123)
    data.mnist1d(num_samples=SMALL_MNIST1D, cache_dir=tmp_path)  # generates: cache is empty
    after = (np.random.rand(), random.random())
    np.random.seed(123)
    random.seed(123)
    assert after == (np.random.rand(), random.random())


def test_mnist1d_is_deterministic_for_a_seed_and_differs_across_seeds(cache):
    a = data.mnist1d(num_samples=SMALL_MNIST1D, seed=1, cache_dir=cache)
    b = data.mnist1d(num_samples=SMALL_MNIST1D, seed=1, cache_dir=cache / "elsewhere")  # generated again
    c = data.mnist1d(num_samples=SMALL_MNIST1D, seed=2, cache_dir=cache)
    for name in ("x_train", "y_train", "x_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.x_test, c.x_test)


def test_mnist1d_cache_hit_returns_identical_arrays_without_regenerating(tmp_path, monkeypatch):
    first = data.mnist1d(num_samples=SMALL_MNIST1D, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("mnist1d-*.npz"))) == 1
    monkeypatch.setattr(data, "_generate_mnist1d", lambda args: pytest.fail("regenerated despite a cache"))
    second = data.mnist1d(num_samples=SMALL_MNIST1D, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.x_train, second.x_train)
    np.testing.assert_array_equal(first.y_test, second.y_test)


def test_mnist1d_cache_is_keyed_by_the_generating_arguments(tmp_path):
    data.mnist1d(num_samples=SMALL_MNIST1D, seed=1, cache_dir=tmp_path)
    data.mnist1d(num_samples=SMALL_MNIST1D, seed=2, cache_dir=tmp_path)
    data.mnist1d(num_samples=SMALL_MNIST1D, seed=1, val=0.3, cache_dir=tmp_path)  # val is not generation
    assert len(list(tmp_path.glob("mnist1d-*.npz"))) == 2


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_a_corrupt_mnist1d_cache_file_is_regenerated(tmp_path, damage):
    good = data.mnist1d(num_samples=SMALL_MNIST1D, cache_dir=tmp_path)
    (path,) = tmp_path.glob("mnist1d-*.npz")
    content = path.read_bytes()
    path.write_bytes({"truncate": content[: len(content) // 2], "garbage": b"not a zip file" * 100,
                      "empty": b""}[damage])
    again = data.mnist1d(num_samples=SMALL_MNIST1D, cache_dir=tmp_path)
    np.testing.assert_array_equal(good.x_train, again.x_train)
    with np.load(path) as rewritten:  # the cache was rewritten whole
        np.testing.assert_array_equal(rewritten["x_test"], good.x_test)
    assert not list(tmp_path.glob("*.tmp"))


def test_mnist1d_cache_dir_defaults_to_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("RECTIFIED_CACHE", str(tmp_path))
    assert data.cache_dir() == tmp_path
    data.mnist1d(num_samples=SMALL_MNIST1D)
    assert len(list(tmp_path.glob("mnist1d-*.npz"))) == 1


# ---------------------------------------------------------------- 2-D toy sets


@pytest.mark.parametrize("make, n, k", [
    (lambda: data.moons(n=300, seed=0), 300, 2),
    (lambda: data.circles(n=300, seed=0), 300, 2),
    (lambda: data.spirals(n_per_class=100, n_classes=3, seed=0), 300, 3),
    (lambda: data.spirals(n_per_class=150, n_classes=2, seed=0), 300, 2),
])
def test_toy_sets_are_2d_balanced_and_split_disjointly(make, n, k):
    d = make()
    assert d.n_features == 2 and d.n_classes == k and d.x_train.dtype == np.float32
    assert d.torch().y_val.dtype == torch.int64
    y = np.concatenate([d.y_train, d.y_val, d.y_test])
    assert np.all(np.bincount(y) == n // k)
    assert_disjoint_and_complete(d, n)


def test_spirals_lie_in_the_unit_disc_with_class_k_starting_at_angle_4k():
    d = data.spirals(n_per_class=50, n_classes=3, noise=0.0, seed=0, val=0.0, test=0.0)
    x, y = d.x_train, d.y_train
    r = np.hypot(x[:, 0], x[:, 1])
    assert r.max() <= 1 + 1e-6
    for k in range(3):  # noise-free: the outermost point of class k sits at angle 4k + 4
        tip = x[(y == k)][np.argmax(r[y == k])]
        np.testing.assert_allclose(tip, [np.sin(4 * k + 4), np.cos(4 * k + 4)], atol=1e-6)


def test_toy_sets_are_deterministic_for_a_seed_and_differ_across_seeds():
    for make in (data.moons, data.circles, data.spirals):
        np.testing.assert_array_equal(make(seed=5).x_train, make(seed=5).x_train)
        assert not np.array_equal(make(seed=5).x_train, make(seed=6).x_train)
        assert torch.equal(make(seed=5, as_torch=True).x_train, torch.as_tensor(make(seed=5).x_train))


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("call, words", [
    (lambda: data.digits(val=0.5, test=0.5), ["val=0.5", "test=0.5"]),
    (lambda: data.digits(val=-0.1), ["val=-0.1"]),
    (lambda: data.moons(n=3), ["n=3"]),
    (lambda: data.spirals(n_per_class=10, n_classes=1), ["n_classes", "1"]),
    (lambda: data.moons(n=100, noise=-1), ["noise", "-1"]),
    (lambda: data.circles(factor=1.5), ["factor", "1.5"]),
    (lambda: data.moons(n=20, val=0.05, test=0.05), ["val", "1", "2 classes"]),
    (lambda: data.mnist1d(num_samples=5), ["num_samples=5"]),
    (lambda: data.mnist1d(val=1.0), ["val=1.0"]),
    (lambda: data.mnist1d(train_split=1.0), ["train_split", "1.0"]),
])
def test_bad_arguments_raise_value_errors_naming_the_values(call, words):
    with pytest.raises(ValueError) as err:
        call()
    for word in words:
        assert word in str(err.value)
