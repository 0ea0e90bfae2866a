"""Checks for ex05_maxout (what its test cells call): maxout forward/backward in numpy, a gradient check of it,
a torch Maxout layer and an MLP of them. Each runs the student's code on the grader's inputs and hands back
plain data (course_lib.grading.kernel); the verdict comes from course_lib.grading.judges.ex05.
"""

from functools import cache

import numpy as np
import torch
from torch import nn

from course_lib.data import Split, mnist1d
from course_lib.grading.kernel import channel, probes
from course_lib.grading.kernel.modules import probe_module, record_forward
from course_lib.grading.kernel.probes import student_error
from course_lib.grading.kernel.sequential import run_with_weights
from course_lib.grading.kernel.training import train_and_predict

# ---- numpy forward and backward ---------------------------------------------------------------------


def _cache_of(maxout_forward, z, k):
    """The (out, cache) pair maxout_forward must return; TypeError otherwise."""
    result = maxout_forward(z, k)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError(f"maxout_forward returned a {type(result).__name__}: return the pair (out, cache)")
    return result


def check_maxout_forward(maxout_forward, seed: int, hidden: bool = False) -> None:
    """Values, shapes and dtypes for k = 1..4 on the grader's inputs (with ties), and ValueError when k does
    not divide the width."""
    def out(z, k):
        return _cache_of(maxout_forward, z, k)[0]

    def probe(given) -> dict:
        return {"outcomes": [[probes.call(out, z, part["k"]) for z in part["inputs"]] for part in given["parts"]],
                "indivisible": [probes.call(out, case["z"], case["k"]) for case in given["indivisible"]]}

    channel.check("ex05.maxout_forward", probe, seed=seed, hidden=hidden)


def check_maxout_backward(maxout_forward, maxout_backward, seed: int, hidden: bool = False) -> None:
    """dz = maxout_backward(dout, cache) with the cache of the student's own forward, on inputs with ties."""
    def backward(z, k, dout):
        return maxout_backward(dout, _cache_of(maxout_forward, z, k)[1])

    def probe(given) -> list:
        return [[probes.call(backward, z, part["k"], dout) for z, dout in zip(part["inputs"], part["douts"],
                                                                            strict=True)]
                for part in given["parts"]]

    channel.check("ex05.maxout_backward", probe, seed=seed, hidden=hidden)


# ---- the gradient check -----------------------------------------------------------------------------


def _pieces(z: np.ndarray, k: int) -> np.ndarray:
    return z.reshape(*z.shape[:-1], z.shape[-1] // k, k)


def _forward(layer: dict):
    """The grader's layer as forward(z, k) -> (out, cache): "maxout" picks each unit's given winning piece
    (the maxout of any z near the grader's, whose winners lead by at least 1); "tanh" is
    out[..., j] = sum_i w[j, i] * tanh(z[..., j*k + i])."""
    def forward(z, k):
        pieces = _pieces(np.asarray(z, dtype=np.float64), k)
        if layer["kind"] == "maxout":
            out = np.take_along_axis(pieces, layer["winners"][..., None], axis=-1)[..., 0]
        else:
            out = (layer["w"] * np.tanh(pieces)).sum(axis=-1)
        return out, (z, k)
    return forward


def _backward(candidate: dict):
    """A backward for the grader's layer: dz = dout[..., None] * scale + const, reshaped like z. Right or
    wrong, they all look alike: only the numbers differ."""
    def backward(dout, cache):
        z, _ = cache
        return (np.asarray(dout, dtype=np.float64)[..., None] * candidate["scale"] + candidate["const"]).reshape(
            np.shape(z))
    return backward


def check_gradient_check(maxout_grad_error, seed: int, hidden: bool = False) -> None:
    """The student's gradient check, given the grader's layers and each one's correct and wrong backwards: it
    must report an error below 1e-6 for the correct one and above 1e-2 for each wrong one."""
    def probe(given) -> list:
        return [[probes.call(maxout_grad_error, _forward(s["layer"]), _backward(c), s["z"], s["k"], s["dout"])
                 for c in s["candidates"]] for s in given["setups"]]

    channel.check("ex05.gradient_check", probe, seed=seed, hidden=hidden)


# ---- the torch Maxout layer -------------------------------------------------------------------------


def check_maxout_layer(Maxout, seed: int, hidden: bool = False) -> None:
    """Forward and gradients (input, weight, bias) with the grader's weights loaded into self.linear."""
    channel.check("ex05.maxout_layer",
                  lambda given: [probe_module(Maxout, case, given["torch_seed"]) for case in given["cases"]],
                  seed=seed, hidden=hidden)


# ---- the MLP ----------------------------------------------------------------------------------------

EPOCHS, LR = 15, 1e-2


@cache
def _data() -> Split:
    """MNIST-1D's public 4000-sample draw: the training data (its test split only for the printed report)."""
    return mnist1d(num_samples=4000)


def _inspect_maxouts(Maxout, model: nn.Module, x_train: torch.Tensor) -> dict:
    """From the trained model: how many training examples each piece of each Maxout layer won on, as (units,
    k) counts, and how often each layer ran in one forward pass."""
    layers = {name: m for name, m in model.named_modules() if isinstance(m, Maxout)}
    linears = {name: m.linear for name, m in layers.items() if isinstance(getattr(m, "linear", None), nn.Linear)}
    z = record_forward(model, x_train, linears, "output")
    out = record_forward(model, x_train, layers, "output")
    wins = {}
    for name in linears:
        if not z[name] or not out[name]:
            continue
        zs, units = z[name][0], out[name][0].shape[-1]
        k = zs.shape[-1] // units
        winner = zs.reshape(len(zs), units, k).argmax(axis=-1) + np.arange(units) * k
        wins[name] = np.bincount(winner.reshape(-1), minlength=units * k).reshape(units, k).astype(np.int64)
    return {"wins": wins, "calls": [len(v) for v in out.values()]}


def _report(outcome, seen: dict | None, model: nn.Module | None) -> str:
    if outcome.error or seen is None:
        return f"Maxout MLP: {outcome.error}"
    with torch.no_grad():
        accuracy = float((model(torch.as_tensor(_data().x_test)).argmax(dim=1).numpy() == _data().y_test).mean())
    lines = [f"Maxout MLP: accuracy {accuracy:.3f} on MNIST-1D's public test split (the grade uses the grader's "
             f"held-out examples), {outcome.n_parameters} parameters, trained in {outcome.train_seconds:.1f} s"]
    for name, wins in seen["wins"].items():
        lines.append(f"  layer '{name}': {wins.shape[0]} units, {wins.size} pieces, {int((wins == 0).sum())} pieces "
                     "never won on the training set")
    return "\n".join(lines)


def check_maxout_mlp(build_maxout_mlp, Maxout, seed: int, hidden: bool = False) -> None:
    """Run the untrained build_maxout_mlp() with the grader's weights on the grader's batch (is it the network
    it says it is?), then train it with the grader's seed and budget and predict held-out inputs. It must be
    an nn.Sequential whose only nonlinearity is the student's Maxout and reach the accuracy threshold. Prints
    accuracy, size and dead pieces."""
    report = []

    def probe(given) -> dict:
        data = _data()
        layers, loaded = run_with_weights(build_maxout_mlp, Maxout, given["param_seed"], given["x"],
                                          given["train_seed"])
        outcome, model = train_and_predict(build_maxout_mlp, data.x_train, data.y_train, given["heldout"], EPOCHS,
                                           LR, given["train_seed"])
        seen = None
        if outcome.error is None:
            try:
                seen = _inspect_maxouts(Maxout, model, torch.as_tensor(data.x_train))
            except Exception as err:  # noqa: BLE001 - a student's bug is data here, not a crash of the grader
                outcome = type(outcome)(error=f"inspecting the trained model failed: {student_error(err)}")
        report.append((outcome, seen, model))
        return {"outcome": outcome, "layers": layers, "loaded": loaded,
                "calls": seen["calls"] if seen is not None else []}

    try:
        channel.check("ex05.maxout_mlp", probe, seed=seed, hidden=hidden)
    finally:
        if report:
            try:
                print(_report(*report[0]))
            except Exception as err:  # noqa: BLE001 - the report is for the student; it never decides
                print(f"Maxout MLP: no report ({student_error(err)})")
