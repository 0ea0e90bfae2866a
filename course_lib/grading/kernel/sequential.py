"""Describe a student's nn.Sequential layer by layer and run it with the grader's weights: what the network
is, told by what it computes rather than by what it claims.

    layers = describe(model, Maxout)                  # [LayerSpec("Maxout", "Maxout", (40, 64, 2)), ...]
    outcome = run_with_weights(model, layers, seed, x)

Both sides draw the weights of a described network from one seed with `seeded_parameters`: the kernel loads
them into the student's layers, the host into its own reference layers, and the outputs must agree. A
description that lies about the network cannot match: the output on the grader's batch is computed by the
layers that are really there.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from course_lib.grading import plain
from course_lib.grading.kernel.modules import ModuleOutcome
from course_lib.grading.kernel.probes import student_error

MAX_LAYERS, MAX_WIDTH, MAX_K, MAX_PARAMETERS = 32, 4096, 64, 4_000_000


@plain.registered
@dataclass(frozen=True)
class LayerSpec:
    """One child of a Sequential: kind "Maxout" (sizes = in, out, k), "Linear" (in, out) or "Other"; `name`
    is its class name."""

    kind: str
    name: str
    sizes: tuple = ()

    def readable(self) -> bool:
        """A description a probe could write, small enough for the host to build (never trusted further)."""
        if not (isinstance(self.kind, str) and isinstance(self.name, str) and len(self.name) < 200
                and isinstance(self.sizes, tuple)):
            return False
        if not all(type(n) is int and 1 <= n <= MAX_WIDTH for n in self.sizes):
            return False
        expected = {"Maxout": 3, "Linear": 2, "Other": 0}.get(self.kind)
        return expected == len(self.sizes) and (self.kind != "Maxout" or self.sizes[2] <= MAX_K)

    def shapes(self) -> list[tuple[int, ...]]:
        """The shapes of its weight and bias (a Maxout's are its Linear's, out * k wide)."""
        if self.kind == "Maxout":
            n_in, n_out, k = self.sizes
            return [(n_out * k, n_in), (n_out * k,)]
        if self.kind == "Linear":
            n_in, n_out = self.sizes
            return [(n_out, n_in), (n_out,)]
        return []

    def text(self) -> str:
        return f"{self.name}({', '.join(map(str, self.sizes))})" if self.sizes else self.name


def describe(model: nn.Module, maxout_class: type) -> list[LayerSpec] | None:
    """Each child of `model` (an nn.Sequential; None otherwise) as a LayerSpec: the student's Maxout (with an
    nn.Linear as .linear, out_features and k), an nn.Linear, or something else."""
    if not isinstance(model, nn.Sequential):
        return None
    layers = []
    for child in model:
        linear = getattr(child, "linear", None)
        if isinstance(child, maxout_class) and isinstance(linear, nn.Linear):
            layers.append(LayerSpec("Maxout", type(child).__name__,
                                    (int(linear.in_features), int(child.out_features), int(child.k))))
        elif isinstance(child, nn.Linear):
            layers.append(LayerSpec("Linear", "Linear", (int(child.in_features), int(child.out_features))))
        else:
            layers.append(LayerSpec("Other", type(child).__name__))
    return layers


def seeded_parameters(seed: int, layers: list[LayerSpec]) -> list[np.ndarray]:
    """The grader's weights for `layers`, float32, weight then bias of each, in order; ValueError when the
    network would be too large to build."""
    shapes = [shape for spec in layers for shape in spec.shapes()]
    if len(layers) > MAX_LAYERS or sum(int(np.prod(s)) for s in shapes) > MAX_PARAMETERS:
        raise ValueError("the network is too large for the grader to build")
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=s) / np.sqrt(s[-1] if len(s) == 2 else 1.0)).astype(np.float32) for s in shapes]


def _targets(model: nn.Sequential, layers: list[LayerSpec]) -> list[torch.Tensor]:
    """The student's tensors the grader's weights go into, in seeded_parameters' order."""
    found = []
    for child, spec in zip(model, layers, strict=True):
        holder = child.linear if spec.kind == "Maxout" else child
        if spec.kind != "Other":
            found += [holder.weight, holder.bias]
    return found


def run_with_weights(build: Callable[[], nn.Module], maxout_class: type, seed: int, x: np.ndarray,
                     torch_seed: int = 0) -> tuple[list[LayerSpec] | None, ModuleOutcome]:
    """Build the network, describe it, load the grader's weights (from `seed`) into its layers and run it on
    x (N, in) without gradients: (its description, the output or the error)."""
    layers = None
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch_seed)
            model = build()
        layers = describe(model, maxout_class)
        if layers is None:
            return None, ModuleOutcome(error=f"it returned a {type(model).__name__}, not an nn.Sequential")
        targets, values = _targets(model, layers), seeded_parameters(seed, layers)
        for target, value in zip(targets, values, strict=True):
            if target is None or tuple(target.shape) != value.shape:
                shape = None if target is None else tuple(target.shape)
                return layers, ModuleOutcome(error=f"a layer has a parameter of shape {shape} where "
                                                   f"{value.shape} was expected")
        with torch.no_grad():
            for target, value in zip(targets, values, strict=True):
                target.copy_(torch.as_tensor(value))
            out = model(torch.as_tensor(x))
        if not isinstance(out, torch.Tensor):
            return layers, ModuleOutcome(error=f"the network returned a {type(out).__name__}, not a tensor")
        return layers, ModuleOutcome(output=out.detach().numpy().astype(np.float64),
                                     output_dtype=str(out.dtype).removeprefix("torch."))
    except Exception as err:  # noqa: BLE001 - a student's bug is data here, not a crash of the grader
        return layers, ModuleOutcome(error=student_error(err))
