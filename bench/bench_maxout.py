"""Forward+backward time of Maxout(in, out, k=2) vs Linear(in, out)+ReLU, one thread, same run.

Maxout with k pieces has k times the weights of the Linear layer it replaces, so expect a step to take
about k times as long (plus the cost of the grouped max); the parameter ratio is printed too.
"""

import time

import torch
from torch import nn

from course_lib.benches import Measurement
from course_lib.nn import Maxout


def _step_ms(layer: nn.Module, x: torch.Tensor, upstream: torch.Tensor, steps: int) -> float:
    """Mean milliseconds of one forward + backward over `steps` steps (gradients reset each step)."""
    start = time.perf_counter()
    for _ in range(steps):
        layer.zero_grad(set_to_none=True)
        layer(x).backward(upstream)
    return (time.perf_counter() - start) / steps * 1e3


def _n_params(layer: nn.Module) -> int:
    return sum(p.numel() for p in layer.parameters())


def run(quick: bool = False) -> list[Measurement]:
    batch, width, steps, repeats = (32, 16, 2, 1) if quick else (512, 256, 50, 7)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        maxout = Maxout(width, width, k=2)
        relu = nn.Sequential(nn.Linear(width, width), nn.ReLU())
        x, upstream = torch.randn(batch, width), torch.randn(batch, width)
        for layer in (maxout, relu):  # warm-up: first calls allocate
            _step_ms(layer, x, upstream, 2)
        times = [(_step_ms(relu, x, upstream, steps), _step_ms(maxout, x, upstream, steps))
                 for _ in range(repeats)]  # interleaved, so a busier machine slows both alike
        t_relu, t_maxout = (min(t) for t in zip(*times, strict=True))
    finally:
        torch.set_num_threads(threads)
    size = f"{batch}x{width}->{width}"
    return [
        Measurement(f"Linear+ReLU fwd+bwd ({size})", t_relu, "ms"),
        Measurement(f"Maxout k=2 fwd+bwd ({size})", t_maxout, "ms"),
        Measurement("Maxout / Linear+ReLU time", t_maxout / t_relu, "x", "expect ~2x or more"),
        Measurement("Maxout / Linear+ReLU parameters", _n_params(maxout) / _n_params(relu), "x", "= k = 2"),
    ]
