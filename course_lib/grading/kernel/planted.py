"""Networks with planted dead units, as plain data: the grader's test models for a student's dead_fraction.

    spec, x = mlp(seed)          # an MLP 6 -> 12 (ReLU) -> 8 (LeakyReLU) -> 3 and x (1100, 6)
    model = build(spec)          # the same nn.Sequential on either side of the grading channel

A spec is a list of (layer name, arguments) pairs with the weights as numpy arrays, so the host can make one
from a secret seed, send it into the sandbox, and count the dead units on its own copy: the student's
function sees the model, the host keeps the answer. The planted units are the cases a wrong definition gets
wrong: a unit dead by a negative bias, one whose pre-activation is exactly 0 (not active: the output is 0 and
so is the gradient), a LeakyReLU unit that is dead although its output is not 0, a conv channel that fires at
one position only, and a unit that fires on one example late in x only (counted over one batch, it looks dead).
"""

import numpy as np
import torch
from torch import nn

LAYERS = {
    "Linear": lambda a: _loaded(nn.Linear(a["weight"].shape[1], a["weight"].shape[0]), a),
    "Conv1d": lambda a: _loaded(nn.Conv1d(a["weight"].shape[1], a["weight"].shape[0], a["weight"].shape[2],
                                          stride=a["stride"], padding=a["padding"]), a),
    "ReLU": lambda a: nn.ReLU(),
    "LeakyReLU": lambda a: nn.LeakyReLU(a["negative_slope"]),
    "PReLU": lambda a: _loaded(nn.PReLU(len(a["weight"])), a),
    "Unflatten": lambda a: nn.Unflatten(1, (1, a["length"])),
    "Flatten": lambda a: nn.Flatten(),
}
WEIGHTS = ("weight", "bias")


def _loaded(layer: nn.Module, arrays: dict) -> nn.Module:
    with torch.no_grad():
        for name in WEIGHTS:
            if name in arrays:
                getattr(layer, name).copy_(torch.as_tensor(arrays[name]))
    return layer


def build(spec: list) -> nn.Sequential:
    """The nn.Sequential a spec describes (float32)."""
    return nn.Sequential(*(LAYERS[name](args) for name, args in spec))


def _linear(rng: np.random.Generator, n_in: int, n_out: int) -> dict:
    return {"weight": (rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)).astype(np.float32),
            "bias": rng.normal(scale=0.1, size=n_out).astype(np.float32)}


def _conv(rng: np.random.Generator, c_in: int, c_out: int, kernel: int, stride: int) -> dict:
    return {"weight": (rng.normal(size=(c_out, c_in, kernel)) / np.sqrt(c_in * kernel)).astype(np.float32),
            "bias": rng.normal(scale=0.1, size=c_out).astype(np.float32), "stride": stride, "padding": 1}


def kill(layer: dict, unit: int, how: str, tap: int = 0, cut: float = 8.0) -> None:
    """Make `unit` dead ("bias": pre-activation -1 everywhere; "zero": exactly 0) or "rare" (it sees one input
    through weight 1 at `tap` and fires only where that input is above `cut`)."""
    layer["weight"][unit] = 0.0
    layer["bias"][unit] = {"bias": -1.0, "zero": 0.0, "rare": -cut}[how]
    if how == "rare":
        layer["weight"][unit].reshape(-1)[tap] = 1.0


def _spiked(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """x (N, D) clipped to [-4, 4] with one value of 10 in an example among the last 6 %, and the feature
    (position) of the spike: a unit that sees only that feature fires on that one example."""
    x = np.clip(x, -4, 4).astype(np.float32)
    position = int(rng.integers(1, x.shape[1] - 1))
    x[int(rng.integers(int(0.94 * len(x)), len(x))), position] = 10.0
    return x, position


def mlp(seed: int) -> tuple[list, np.ndarray]:
    """An MLP 6 -> h1 (ReLU) -> h2 (LeakyReLU 0.1) -> 3, h1 in 10..16 and h2 in 6..10, and x (1100, 6) float32.

    Layer 1: 1-3 units with bias -1 and one with pre-activation exactly 0 (all dead), one that fires only on
    one example late in x (alive); layer 2: 1-3 units with bias -1 (dead although LeakyReLU outputs a little).
    The widths and counts vary with the seed and the host counts; the judge also sends a twin with one more
    dead unit (judges.dead_units.twin), so that no fraction can be guessed."""
    rng = np.random.default_rng([seed, 60])
    x, spike = _spiked(rng.normal(size=(1100, 6)), rng)
    h1, h2 = int(rng.integers(10, 17)), int(rng.integers(6, 11))
    first, second = _linear(rng, 6, h1), _linear(rng, h1, h2)
    units = rng.permutation(h1)
    n_bias = int(rng.integers(1, 4))
    for unit in units[:n_bias]:
        kill(first, int(unit), "bias")
    kill(first, int(units[n_bias]), "zero")
    kill(first, int(units[n_bias + 1]), "rare", tap=spike)
    for unit in rng.choice(h2, size=int(rng.integers(1, 4)), replace=False):
        kill(second, int(unit), "bias")
    spec = [("Linear", first), ("ReLU", {}), ("Linear", second), ("LeakyReLU", {"negative_slope": 0.1}),
            ("Linear", _linear(rng, h2, 3))]
    return spec, x


def cnn(seed: int, x: np.ndarray, channels: int = 6) -> tuple[list, np.ndarray]:
    """A 1-D CNN (N, L) -> conv `channels` (ReLU) -> conv `channels` (PReLU) -> conv `channels` (ReLU) -> 10
    logits for signals x (N, L), and x clipped with one spike (see `_spiked`).

    Conv 1: one channel with pre-activation 0 and 1-3 with bias -1 (dead), one firing at a single position
    of one late example (alive); conv 2: 1-3 channels with bias -1 (dead although PReLU outputs a little);
    conv 3: 0-3 more. Other channels may also never fire on x: the host counts them."""
    rng = np.random.default_rng([seed, 61])
    x, _ = _spiked(np.asarray(x, dtype=np.float32), rng)  # a spike anywhere: the conv slides over it
    length = x.shape[1]
    convs = [_conv(rng, 1, channels, 5, 2), _conv(rng, channels, channels, 3, 2), _conv(rng, channels, channels, 3, 1)]
    units = rng.permutation(channels)
    kill(convs[0], int(units[0]), "zero")
    kill(convs[0], int(units[1]), "rare", tap=2)  # the centre tap of the 5-wide kernel
    for unit in units[2:2 + int(rng.integers(1, 4))]:
        kill(convs[0], int(unit), "bias")
    for conv, low in ((convs[1], 1), (convs[2], 0)):
        for unit in rng.choice(channels, size=int(rng.integers(low, 4)), replace=False):
            kill(conv, int(unit), "bias")
    out_length = ((length + 2 - 5) // 2 + 1 + 2 - 3) // 2 + 1
    prelu = {"weight": rng.uniform(0.05, 0.3, size=channels).astype(np.float32)}
    spec = [("Unflatten", {"length": length}), ("Conv1d", convs[0]), ("ReLU", {}), ("Conv1d", convs[1]),
            ("PReLU", prelu), ("Conv1d", convs[2]), ("ReLU", {}), ("Flatten", {}),
            ("Linear", _linear(rng, channels * out_length, 10))]
    return spec, x
