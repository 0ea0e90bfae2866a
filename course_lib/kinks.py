"""How often does training land exactly on ReLU's kink? Count it.

`KinkCounter` puts forward hooks on every nn.ReLU of a model and counts, over all the forward passes made
inside its `with` block, how many pre-activation values were exactly 0.0 (where ReLU is not
differentiable and autograd uses the subgradient 0) out of how many, and optionally how many lay within
a tolerance of 0. By default only passes in training mode count (`module.training`), so the validation
passes that `course_lib.train.fit` makes in eval mode are left out.
"""

__all__ = ["KinkCounter"]

from collections.abc import Iterable

from torch import nn

from course_lib.diagnostics import LayerHooks


class KinkCounter(LayerHooks):
    """Exact zeros among the inputs of every nn.ReLU in `model`, summed over forward passes.

    with KinkCounter(model, near=(1e-6,)) as counter:   # hooks on; removed again on exit
        fit(model, data, ...)
    counter.zeros, counter.total                         # exact 0.0 pre-activations, all pre-activations
    counter.near[1e-6]                                   # pre-activations with |z| < 1e-6 (zeros included)
    counter.by_layer()                                   # layer name -> (zeros, total)

    Taught in notebook 02 (ReLU and its derivative).
    """

    def __init__(self, model: nn.Module, near: Iterable[float] = (), only_training: bool = True):
        self.model = model
        self.layers = {name: m for name, m in model.named_modules() if isinstance(m, nn.ReLU)}
        if not self.layers:
            raise ValueError("the model has no nn.ReLU module whose pre-activations could be counted")
        self.tolerances = tuple(float(t) for t in near)
        if any(t <= 0 for t in self.tolerances):
            raise ValueError(f"tolerances in `near` must be > 0, got {self.tolerances}")
        self.only_training = only_training
        self._handles = []
        self.reset()

    def reset(self) -> None:
        """Forget every count."""
        self.layer_zeros = dict.fromkeys(self.layers, 0)
        self.layer_total = dict.fromkeys(self.layers, 0)
        self.near = dict.fromkeys(self.tolerances, 0)
        self.passes = 0

    def _hook(self, name: str):
        def count(module, args, output):
            if self.only_training and not module.training:
                return
            z = args[0].detach()
            self.layer_zeros[name] += int((z == 0).sum())
            self.layer_total[name] += z.numel()
            magnitude = z.abs()
            for tol in self.tolerances:
                self.near[tol] += int((magnitude < tol).sum())
            if name == next(iter(self.layers)):
                self.passes += 1
        return count

    @property
    def zeros(self) -> int:
        """Pre-activations that were exactly 0.0, over all layers and passes."""
        return sum(self.layer_zeros.values())

    @property
    def total(self) -> int:
        """Pre-activations seen, over all layers and passes."""
        return sum(self.layer_total.values())

    def by_layer(self) -> dict[str, tuple[int, int]]:
        """Layer name -> (exact zeros, pre-activations seen)."""
        return {name: (self.layer_zeros[name], self.layer_total[name]) for name in self.layers}

    def __repr__(self) -> str:
        return f"KinkCounter({self.zeros} exact zeros out of {self.total:,} pre-activations, {self.passes} passes)"
