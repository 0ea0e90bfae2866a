"""Checks for ex04_leaky_prelu (what its test cells call): a PReLU module with per-channel slopes on axis `dim`,
and an MLP that learns them on MNIST-1D. Each runs the student's code on the grader's inputs and hands back
plain data (course_lib.grading.kernel); the verdict comes from course_lib.grading.judges.ex04.
"""

from functools import cache

import numpy as np
import torch
from torch import nn

from course_lib import diagnostics
from course_lib.data import Split, mnist1d
from course_lib.grading.kernel import channel
from course_lib.grading.kernel.modules import loaded_output, probe_module, record_forward
from course_lib.grading.kernel.probes import student_error
from course_lib.grading.kernel.training import TrainingOutcome, train_and_predict

EPOCHS, LR = 10, 1e-2
OTHER_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh)


def _modules_probe(PReLU):
    """given: {"cases": [ModuleCase], "torch_seed"} -> a ModuleOutcome of the student's PReLU per case."""
    return lambda given: [probe_module(PReLU, case, given["torch_seed"]) for case in given["cases"]]


def check_prelu_init(PReLU, seed: int) -> None:
    """Construction only: the slopes are a per-channel nn.Parameter starting at `init` (default 0.25), seen
    through what the module computes before anything is loaded into it."""
    channel.check("ex04.prelu_init", _modules_probe(PReLU), seed=seed)


def check_prelu(PReLU, seed: int, hidden: bool = False) -> None:
    """Forward and autograd gradients (input and slopes) against torch's prelu moved to axis `dim`, with the
    grader's slopes loaded into the module's 'weight' (its initial value does not matter here)."""
    channel.check("ex04.prelu", _modules_probe(PReLU), seed=seed, hidden=hidden)


# ---- the MLP ----------------------------------------------------------------------------------------


@cache
def _data() -> Split:
    """MNIST-1D's public 4000-sample draw: the training data (its test split only for the printed report)."""
    return mnist1d(num_samples=4000)


def relu_layer(num_channels: int, init: float = 0.25, dim: int = 1) -> nn.Module:
    """What the grader passes as `activation` for the ReLU baseline."""
    return nn.ReLU()


def _inspect_prelus(PReLU, x_train: torch.Tensor):
    """What the grader reads from the trained model: its PReLU layers' slopes, how often each instance ran in
    one forward pass, on how many training examples each of its units was positive (somewhere), and the other
    activations it holds."""
    def inspect(model: nn.Module) -> dict:
        prelus = {name: m for name, m in model.named_modules() if isinstance(m, PReLU)}
        inputs = record_forward(model, x_train, prelus, "input")
        positive = {}
        for name, calls in inputs.items():
            z = calls[0].reshape(*calls[0].shape[:2], -1) if calls else np.zeros((1, 0, 1))  # (N, C, positions)
            positive[name] = (z > 0).any(axis=2).sum(axis=0).astype(np.int64)
        return {"slopes": {name: m.weight.detach().numpy().astype(np.float64).reshape(-1).copy()
                           for name, m in prelus.items()},
                "calls": {name: len(calls) for name, calls in inputs.items()},
                "positive": positive,
                "others": sorted({type(m).__name__ for m in model.modules() if isinstance(m, OTHER_ACTIVATIONS)})}
    return inspect


def _train(build, given, inspect=None) -> tuple[TrainingOutcome, object, nn.Module | None]:
    """Train build() on the public data under the grader's seed; predictions on the held-out inputs, and
    inspect(trained model) (an exception there is the outcome's error)."""
    data = _data()
    outcome, model = train_and_predict(build, data.x_train, data.y_train, given["heldout"], EPOCHS, LR,
                                       given["train_seed"])
    if outcome.error or inspect is None:
        return outcome, None, model
    try:
        return outcome, inspect(model), model
    except Exception as err:  # noqa: BLE001 - a student's bug is data here, not a crash of the grader
        return TrainingOutcome(error=f"inspecting the trained model failed: {student_error(err)}"), None, None


def _public_accuracy(model: nn.Module | None) -> float | None:
    """Accuracy on the public test split (printed for the written answers; the grade is decided elsewhere)."""
    try:
        with torch.no_grad():
            scores = model(torch.as_tensor(_data().x_test))
        return float((scores.argmax(dim=1).numpy() == _data().y_test).mean())
    except Exception:  # noqa: BLE001 - only printed; a model that fails here has no figure
        return None


def _dead_fraction(model: nn.Module | None) -> float | None:
    """The fraction of the ReLU model's units never active on the training set (printed only)."""
    try:
        return diagnostics.dead_fraction(model, torch.as_tensor(_data().x_train))
    except Exception:  # noqa: BLE001 - only printed; a model it cannot watch has no figure
        return None


def _report(report: dict) -> str:
    prelu, seen = report["prelu"], report["seen"]
    if prelu.error or seen is None:
        return f"PReLU MLP: {prelu.error}"
    accuracy = report["prelu_accuracy"]
    lines = [f"PReLU MLP: accuracy {accuracy if accuracy is None else round(accuracy, 3)} on MNIST-1D's public test "
             "split (the grade uses the grader's held-out examples)"]
    for name, s in seen["slopes"].items():
        positive = seen["positive"][name]
        lines.append(f"  layer '{name}': slopes from {s.min():.3f} to {s.max():.3f} (mean {s.mean():.3f}); "
                     f"{int((positive == 0).sum())} of {positive.size} units never positive on the training set")
    if report["relu"].error is None and report["relu_accuracy"] is not None:
        dead = "" if report["relu_dead"] is None else f"; dead units {100 * report['relu_dead']:.1f}%"
        lines.append(f"ReLU MLP, same architecture and budget: accuracy {report['relu_accuracy']:.3f}{dead}")
    return "\n".join(lines)


def check_prelu_mlp(build_mlp, PReLU, seed: int, hidden: bool = False) -> None:
    """Run build_mlp(PReLU) and build_mlp(relu_layer) with the grader's weights on the grader's batch (is it
    the network asked for?), then train both with the grader's seed and budget and predict held-out inputs.

    Passes when the PReLU network is the one asked for, reaches the accuracy threshold, uses its own PReLU
    instance in every hidden layer and its slopes learned (moved from 0.25, different per channel), and the
    ReLU network is the same network. PReLU need not beat ReLU: the test prints both accuracies and the
    dead-unit counts for the written answer."""
    report = {}

    def probe(given) -> dict:
        seen_by = _inspect_prelus(PReLU, torch.as_tensor(_data().x_train))
        prelu, seen, prelu_model = _train(lambda: build_mlp(PReLU), given, seen_by)
        relu, _, relu_model = _train(lambda: build_mlp(relu_layer), given)
        report.update(prelu=prelu, seen=seen, relu=relu, prelu_accuracy=_public_accuracy(prelu_model),
                      relu_accuracy=_public_accuracy(relu_model) if relu.error is None else None,
                      relu_dead=_dead_fraction(relu_model) if relu.error is None else None)
        return {"prelu": prelu, "seen": seen, "relu": relu,
                "arch_prelu": loaded_output(lambda: build_mlp(PReLU), given["prelu_params"], given["x"]),
                "arch_relu": loaded_output(lambda: build_mlp(relu_layer), given["relu_params"], given["x"])}

    try:
        channel.check("ex04.prelu_mlp", probe, seed=seed, hidden=hidden)
    finally:
        if report:
            try:
                print(_report(report))
            except Exception as err:  # noqa: BLE001 - the report is for the student; it never decides
                print(f"PReLU MLP: no report ({student_error(err)})")
