"""Timing small torch computations on the CPU: best-of-N wall-clock times and the cost of activations.

Conventions kept here:

- Times are in seconds unless a name says otherwise (`*_ns_per_element`: nanoseconds per tensor element).
- "Best of N" is the minimum, over `repeats` rounds, of the mean time of `number` back-to-back calls. Other
  work on the machine can only make a call slower, never faster, so the minimum is the least noisy estimate.
- Callables that are compared are timed in interleaved rounds (a, b, c, a, b, c, ...): a machine that gets
  busier halfway through slows all of them alike instead of skewing their ratios.
- Absolute numbers depend on the machine, the torch build and the number of threads; only ratios measured
  in the same run are worth comparing, and even they vary from one machine to another.
"""

__all__ = ["activation_costs", "linear_vs_activation", "format_costs"]

import time
from collections.abc import Callable

import torch
from torch import nn


def _check_counts(repeats: int, number: int, warmup: int) -> None:
    if repeats < 1 or number < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1, number >= 1 and warmup >= 0, got {repeats=}, {number=}, {warmup=}")


def best_of(fn: Callable[[], object], repeats: int = 5, number: int = 1, warmup: int = 1,
            clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds per call of fn(): the fastest of `repeats` rounds, each the mean of `number` calls.

    `warmup` untimed calls come first (caches, lazy initialisation). `clock` is for tests.
    """
    return best_of_each({"fn": fn}, repeats, number, warmup, clock)["fn"]


def best_of_each(fns: dict[object, Callable[[], object]], repeats: int = 5, number: int = 1, warmup: int = 1,
                 clock: Callable[[], float] = time.perf_counter) -> dict[object, float]:
    """Name -> seconds per call, as `best_of`, with the callables timed in interleaved rounds."""
    _check_counts(repeats, number, warmup)
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            start = clock()
            for _ in range(number):
                fn()
            best[name] = min(best[name], (clock() - start) / number)
    return best


def forward_backward(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                     dout: torch.Tensor | None = None) -> Callable[[], tuple]:
    """A step() that computes out = f(x) and the gradients of sum(out * dout) w.r.t. x and f's parameters.

    f: a torch function or an nn.Module (its parameters that require grad are differentiated too, e.g. the
    slopes of a PReLU). dout: out's shape; default a fixed standard normal tensor (seed 0), made once, so that
    step() times only the forward and the backward pass. step() returns the gradients (x's first), so they can
    be checked; nothing accumulates in any .grad.
    """
    x = x.detach().requires_grad_(True)
    params = [p for p in f.parameters() if p.requires_grad] if isinstance(f, nn.Module) else []
    if dout is None:
        with torch.no_grad():
            out = f(x)
        dout = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(0))

    def step() -> tuple:
        return torch.autograd.grad(f(x), [x, *params], grad_outputs=dout)

    return step


def forward_only(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Callable[[], torch.Tensor]:
    """A step() that computes f(x) without building the autograd graph (inference)."""
    x = x.detach()

    def step() -> torch.Tensor:
        with torch.no_grad():
            return f(x)

    return step


def activation_costs(activations: dict[str, Callable], n_elements: int = 2 ** 18, baseline: str = "relu",
                     repeats: int = 7, number: int = 5, seed: int = 0) -> list[dict]:
    """The measured cost of each activation on one float32 tensor of n_elements standard normal values.

    activations: name -> torch function or nn.Module (e.g. course_lib.nn.make_activation(name)).
    Returns one row per activation, in order: {"name", "forward_ns_per_element" (no autograd graph),
    "total_ns_per_element" (forward + backward), "relative" (total / the baseline's total)}.

    Taught in notebook 01 (activation functions).
    """
    if baseline not in activations:
        raise ValueError(f"baseline {baseline!r} is not among the activations {list(activations)}")
    x = torch.randn(n_elements, generator=torch.Generator().manual_seed(seed))
    steps = {}
    for name, f in activations.items():
        steps[(name, "forward")] = forward_only(f, x)
        steps[(name, "total")] = forward_backward(f, x)
    seconds = best_of_each(steps, repeats=repeats, number=number)
    base = seconds[(baseline, "total")]
    return [{"name": name,
             "forward_ns_per_element": seconds[(name, "forward")] / n_elements * 1e9,
             "total_ns_per_element": seconds[(name, "total")] / n_elements * 1e9,
             "relative": seconds[(name, "total")] / base} for name in activations]


def linear_vs_activation(width: int, activation: Callable, batch: int = 128, repeats: int = 7, number: int = 5,
                         seed: int = 0) -> dict:
    """Forward + backward time of nn.Linear(width, width) and of `activation` on its (batch, width) output.

    Returns {"width", "batch", "linear_s", "activation_s", "activation_share"}, where activation_share =
    activation_s / (linear_s + activation_s) is the activation's part of one hidden layer's time.

    Taught in notebook 01 (activation functions).
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    linear = nn.Linear(width, width)
    x = torch.randn(batch, width, generator=gen)
    with torch.no_grad():
        z = linear(x)
    seconds = best_of_each({"linear": forward_backward(linear, x), "activation": forward_backward(activation, z)},
                           repeats=repeats, number=number)
    share = seconds["activation"] / (seconds["linear"] + seconds["activation"])
    return {"width": width, "batch": batch, "linear_s": seconds["linear"], "activation_s": seconds["activation"],
            "activation_share": share}


def format_costs(rows: list[dict]) -> str:
    """The rows of `activation_costs` as a fixed-width table, one activation a line.

    Taught in notebook 01 (activation functions)."""
    lines = [f"{'activation':<12} {'forward ns/elt':>15} {'fwd+bwd ns/elt':>15} {'fwd+bwd vs baseline':>20}"]
    lines += [f"{r['name']:<12} {r['forward_ns_per_element']:>15.2f} {r['total_ns_per_element']:>15.2f} "
              f"{r['relative']:>19.2f}x" for r in rows]
    return "\n".join(lines)
