"""Small data sets for the course, split into train / validation / test the same way every time.

Every loader returns a `Split`: features are float32 arrays of shape (N, D), classification labels
are int64 arrays of shape (N,) with values 0..C-1. Splits are stratified by class and depend only
on `seed`, so a notebook's numbers are reproducible. Nothing here downloads anything: the digits
ship with scikit-learn, MNIST-1D is generated offline (and cached on disk), and the 2-D toy sets
are drawn from closed-form recipes.
"""

__all__ = ["Split", "digits", "mnist1d", "moons", "spirals"]

import hashlib
import json
import os
import random
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split

_MNIST1D_CACHE_VERSION = 1  # bump when the cached file's layout changes


@dataclass(frozen=True, eq=False, repr=False)
class Split:
    """Train, validation and test arrays of one data set (all numpy, or all torch tensors).

    x_*: (N_*, D) float32 features; y_*: (N_*,) int64 labels (or float targets for regression).
    A split may be empty (N_* == 0), e.g. a data set loaded with `val=0`.

    What every loader here returns: the notebooks read its fields; the grader's kernel-side checks use the type.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def train(self) -> tuple:
        return self.x_train, self.y_train

    @property
    def val(self) -> tuple:
        return self.x_val, self.y_val

    @property
    def test(self) -> tuple:
        return self.x_test, self.y_test

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        """1 + the largest label in any split (labels are 0..C-1)."""
        ys = [y for y in (self.y_train, self.y_val, self.y_test) if len(y)]
        return int(max(int(y.max()) for y in ys)) + 1

    def torch(self) -> "Split":
        """The same data as torch tensors (float32 features; labels keep their dtype, e.g. int64)."""
        return replace(self, **{f.name: torch.as_tensor(getattr(self, f.name)) for f in fields(self)})

    def numpy(self) -> "Split":
        """The same data as numpy arrays."""
        return replace(self, **{f.name: np.asarray(getattr(self, f.name)) for f in fields(self)})

    def __repr__(self) -> str:
        kind = "torch" if isinstance(self.x_train, torch.Tensor) else "numpy"
        return (f"Split({kind}, train={len(self.y_train)}, val={len(self.y_val)}, test={len(self.y_test)}, "
                f"features={self.n_features})")


def split(x: np.ndarray, y: np.ndarray, val: float, test: float, seed: int = 0,
          stratify: bool = True) -> Split:
    """Shuffle (x: (N, D), y: (N,)) and cut it into a Split with round(val*N) and round(test*N) examples.

    Stratified by class when `stratify` (every split keeps the class proportions), so each non-empty
    split needs at least as many examples as there are classes.
    """
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y)
    _check_fractions(val=val, test=test)
    n = len(y)
    n_test, n_val = round(test * n), round(val * n)
    n_classes = len(np.unique(y)) if stratify else 1
    _check_sizes({"train": n - n_test - n_val, "val": n_val, "test": n_test}, n_classes,
                 f"{n} examples with val={val}, test={test}")
    x_rest, x_test, y_rest, y_test = _cut(x, y, n_test, seed, stratify)
    x_train, x_val, y_train, y_val = _cut(x_rest, y_rest, n_val, seed + 1, stratify)
    return Split(x_train, y_train, x_val, y_val, x_test, y_test)


def _check_sizes(sizes: dict[str, int], n_classes: int, what: str) -> None:
    """ValueError unless training gets >= 1 example per class and every other split is empty or does too."""
    for name, size in sizes.items():
        if size < n_classes and (size != 0 or name == "train"):
            raise ValueError(f"{what} leave {size} for {name}, fewer than the {n_classes} classes; "
                             "use more examples or other fractions")


def _cut(x: np.ndarray, y: np.ndarray, size: int, seed: int, stratify: bool) -> tuple:
    """(x_keep, x_out, y_keep, y_out) with `size` examples taken out at random (possibly zero)."""
    if size == 0:
        order = np.random.default_rng(seed).permutation(len(y))
        return x[order], x[:0], y[order], y[:0]
    return train_test_split(x, y, test_size=size, random_state=seed, stratify=y if stratify else None)


def _check_fractions(**fractions: float) -> None:
    """ValueError unless every fraction is in [0, 1) and they sum below 1 (something is left to train on)."""
    if any(not 0 <= f < 1 for f in fractions.values()) or sum(fractions.values()) >= 1:
        shown = ", ".join(f"{k}={v}" for k, v in fractions.items())
        raise ValueError(f"split fractions must be in [0, 1) and sum below 1, got {shown}")


def standardize(data: Split) -> Split:
    """Shift and scale every feature to mean 0, std 1 using training statistics only (no test leakage)."""
    d = data.numpy()
    mean, std = d.x_train.mean(0), d.x_train.std(0)
    std = np.where(std > 0, std, 1).astype(np.float32)
    out = replace(d, **{k: (getattr(d, k) - mean) / std for k in ("x_train", "x_val", "x_test")})
    return out.torch() if isinstance(data.x_train, torch.Tensor) else out


# ---------------------------------------------------------------- scikit-learn's 8x8 digits


def digits(seed: int = 0, val: float = 0.15, test: float = 0.15, as_torch: bool = False) -> Split:
    """The 1,797 8x8 handwritten digits of scikit-learn: x (N, 64) pixels scaled to [0, 1], y (N,) in 0..9.

    Pixels are divided by 16 (their maximum) rather than standardised: the scale needs no statistics,
    so no information leaks from the test set, and blank pixels stay exactly 0. Use `standardize`
    for zero-mean features.

    Taught in notebook 02 (ReLU and its derivative); also used in notebook 06.
    """
    from sklearn.datasets import load_digits

    raw = load_digits()
    out = split(raw.data / 16.0, raw.target.astype(np.int64), val=val, test=test, seed=seed)
    return out.torch() if as_torch else out


# ---------------------------------------------------------------- MNIST-1D


def mnist1d(num_samples: int = 5000, seed: int = 42, val: float = 0.1, train_split: float = 0.8,
            as_torch: bool = False, cache_dir: str | os.PathLike | None = None) -> Split:
    """MNIST-1D (Greydanus & Kamb, 2020): x (N, 40) one-dimensional "digit" signals, y (N,) in 0..9.

    Generated offline by `mnist1d.data.make_dataset` with the package's default arguments, except
    `num_samples`, `seed` and `train_split`. The package's own train/test split is kept (the paper's
    reference test accuracies, about 32% logistic regression, 68% MLP, 94% CNN, are on it); the
    validation set is a stratified fraction `val` of the package's training part, drawn with `seed`.
    The generated arrays are cached in `cache_dir` (default $RECTIFIED_CACHE or ~/.cache/rectified).

    Taught in notebook 05 (Maxout); also used in notebook 06.
    """
    _check_fractions(val=val)
    if not 0 < train_split < 1:
        raise ValueError(f"train_split must be in (0, 1), got {train_split}")
    if num_samples < 10 or num_samples * (1 - train_split) < 1:
        raise ValueError(f"num_samples={num_samples} with train_split={train_split} is too small: "
                         "MNIST-1D makes num_samples // 10 examples of each of the 10 digits")
    raw = mnist1d_raw(num_samples=num_samples, seed=seed, train_split=train_split, cache_dir=cache_dir)
    n_train, n_val = len(raw["y"]), round(val * len(raw["y"]))
    _check_sizes({"train": n_train - n_val, "val": n_val}, 10,
                 f"num_samples={num_samples}, train_split={train_split}, val={val}")
    x_train, x_val, y_train, y_val = _cut(raw["x"], raw["y"], n_val, seed, True)
    out = Split(x_train, y_train, x_val, y_val, raw["x_test"], raw["y_test"])
    return out.torch() if as_torch else out


def mnist1d_args(num_samples: int = 5000, seed: int = 42, train_split: float = 0.8) -> dict:
    """The arguments `mnist1d.data.make_dataset` is called with (the download url removed)."""
    from mnist1d.data import get_dataset_args

    args = get_dataset_args(as_dict=True)
    args.pop("url", None)
    args.update(num_samples=num_samples, seed=seed, train_split=train_split)
    return args


def mnist1d_raw(num_samples: int = 5000, seed: int = 42, train_split: float = 0.8,
                cache_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """The package's arrays {x, y, x_test, y_test} (float32 / int64), from the disk cache or freshly made."""
    args = mnist1d_args(num_samples=num_samples, seed=seed, train_split=train_split)
    path = _cache_path(args, cache_dir)
    cached = _load_npz(path, args)
    if cached is not None:
        return cached
    arrays = _generate_mnist1d(args)
    _save_npz_atomically(path, arrays)
    return arrays


def _generate_mnist1d(args: dict) -> dict[str, np.ndarray]:
    """Run make_dataset, leaving the caller's global numpy and python RNG states as they were."""
    from mnist1d.data import make_dataset
    from mnist1d.utils import ObjectView

    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(ObjectView(dict(args)))
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {"x": d["x"].astype(np.float32), "y": d["y"].astype(np.int64),
            "x_test": d["x_test"].astype(np.float32), "y_test": d["y_test"].astype(np.int64)}


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """Where generated data sets are cached: `path`, else $RECTIFIED_CACHE, else ~/.cache/rectified."""
    return Path(path or os.environ.get("RECTIFIED_CACHE") or Path.home() / ".cache" / "rectified")


def _cache_path(args: dict, directory: str | os.PathLike | None) -> Path:
    """One file per set of generating arguments (and mnist1d version), so changed arguments never collide."""
    import mnist1d

    key = dict(args, _version=_MNIST1D_CACHE_VERSION, _mnist1d=getattr(mnist1d, "__version__", "?"))
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir(directory) / f"mnist1d-{digest}.npz"


def _load_npz(path: Path, args: dict) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when the file is missing, unreadable, partial or of the wrong shape."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ("x", "y", "x_test", "y_test")}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None
    x, y, x_test, y_test = (arrays[k] for k in ("x", "y", "x_test", "y_test"))
    ok = (len(x) + len(x_test) == args["num_samples"] // 10 * 10 and len(x) == len(y)
          and len(x_test) == len(y_test) and x.shape[1:] == x_test.shape[1:] == (args["final_seq_length"],))
    return arrays if ok else None


def _save_npz_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write to a temporary file in the same folder, then rename, so readers never see a partial file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    except OSError as e:
        warnings.warn(f"could not cache MNIST-1D in {path.parent}: {e}", stacklevel=3)
        return
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is for every user (e.g. grading sandboxes)
        os.replace(tmp, path)
    except OSError as e:
        warnings.warn(f"could not cache MNIST-1D in {path.parent}: {e}", stacklevel=3)
        Path(tmp).unlink(missing_ok=True)

# ---------------------------------------------------------------- 2-D toy sets for decision regions


def moons(n: int = 400, noise: float = 0.2, seed: int = 0, val: float = 0.2, test: float = 0.2,
          as_torch: bool = False) -> Split:
    """Two interleaving half circles (scikit-learn's make_moons): x (n, 2), y (n,) in {0, 1}.

    Used in exercise ex03."""
    from sklearn.datasets import make_moons

    _check_toy(n=n, noise=noise, n_classes=2)
    x, y = make_moons(n_samples=n, noise=noise, random_state=seed)
    out = split(x, y.astype(np.int64), val=val, test=test, seed=seed)
    return out.torch() if as_torch else out


def circles(n: int = 400, noise: float = 0.1, factor: float = 0.5, seed: int = 0, val: float = 0.2,
            test: float = 0.2, as_torch: bool = False) -> Split:
    """A small circle (class 1, radius `factor`) inside a unit circle (class 0): x (n, 2), y (n,)."""
    from sklearn.datasets import make_circles

    _check_toy(n=n, noise=noise, n_classes=2)
    if not 0 < factor < 1:
        raise ValueError(f"factor (inner radius / outer radius) must be in (0, 1), got {factor}")
    x, y = make_circles(n_samples=n, noise=noise, factor=factor, random_state=seed)
    out = split(x, y.astype(np.int64), val=val, test=test, seed=seed)
    return out.torch() if as_torch else out


def spirals(n_per_class: int = 200, n_classes: int = 3, noise: float = 0.2, seed: int = 0, val: float = 0.2,
            test: float = 0.2, as_torch: bool = False) -> Split:
    """CS231n's interleaved spirals: x (n_per_class * n_classes, 2) inside the unit disc, y in 0..n_classes-1.

    Class k's points lie at radius r in [0, 1] and angle 4k + 4r plus Gaussian noise of std `noise`
    (in radians), so no linear model can separate them.

    Taught in notebook 01 (activation functions).
    """
    if n_classes < 2:
        raise ValueError(f"spirals need n_classes >= 2, got {n_classes}")
    _check_toy(n=n_per_class * n_classes, noise=noise, n_classes=n_classes)
    rng = np.random.default_rng(seed)
    r = np.tile(np.linspace(0.0, 1.0, n_per_class), n_classes)
    y = np.repeat(np.arange(n_classes, dtype=np.int64), n_per_class)
    t = 4.0 * y + 4.0 * r + noise * rng.standard_normal(len(y))
    x = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)
    out = split(x, y, val=val, test=test, seed=seed)
    return out.torch() if as_torch else out


def _check_toy(n: int, noise: float, n_classes: int) -> None:
    if n < 2 * n_classes:
        raise ValueError(f"n={n} is too small for {n_classes} classes: need at least {2 * n_classes} points")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")


def mnist1d_uncached(num_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`num_samples` MNIST-1D examples, x (N, 40) float32 and y (N,) int64, freshly made and never written to
    disk: the grader's secret held-out draws must not land in a cache that a sandbox is shown."""
    arrays = _generate_mnist1d(mnist1d_args(num_samples=num_samples, seed=seed, train_split=0.5))
    return np.concatenate([arrays["x"], arrays["x_test"]]), np.concatenate([arrays["y"], arrays["y_test"]])
