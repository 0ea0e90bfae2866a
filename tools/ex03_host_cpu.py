"""Host CPU seconds ex03's provoke/prevent judges spend on one Setting: the solution's, and models built to
cost the most within modelspec's caps: python tools/ex03_host_cpu.py

Each line: the model, the host CPU seconds of `judges.ex03.measure` (rebuild, rates at init, 20 epochs of
Adam, rates after training), or why modelspec refuses it. The first run in a process pays torch's warm-up.
"""

import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course_lib.grading.checks.ex03 import Setting  # noqa: E402
from course_lib.grading.judges import ex03 as judge  # noqa: E402
from course_lib.grading.kernel import modelspec  # noqa: E402
from course_lib.nn import mlp  # noqa: E402


def _fits(width: int, used: int) -> int:
    """How many more layers of `width` fit in the activation budget after `used` such layers and an output of 2."""
    return (modelspec.MAX_ACTIVATIONS - 2) // width - used


def _blocks(n: int, width: int) -> list[nn.Module]:
    return [m for i in range(n) for m in (nn.Linear(2 if i == 0 else width, width), nn.BatchNorm1d(width), nn.ReLU())]


MODELS = {
    "warm-up (solution's provoke)": (lambda: mlp([2, 64, 64, 2]), 0.3),
    "solution's provoke": (lambda: mlp([2, 64, 64, 2]), 0.3),
    "solution's prevent": (lambda: nn.Sequential(*_blocks(2, 64), nn.Linear(64, 2)), 0.01),
    "most parameters": (lambda: mlp([2, 136, 136, 2]), 0.01),
    "parameters and a GELU chain": (lambda: nn.Sequential(nn.Linear(2, 136), nn.ReLU(), nn.Linear(136, 136),
                                                          *[nn.GELU() for _ in range(_fits(136, 3))],
                                                          nn.Linear(136, 2)), 0.01),
    "widest layer": (lambda: nn.Sequential(nn.Linear(2, 760), nn.ReLU(), nn.Linear(760, 2)), 0.01),
    "LayerNorm chain": (lambda: nn.Sequential(nn.Linear(2, 150), nn.ReLU(), *[nn.LayerNorm(150) for _ in
                                                                              range(_fits(150, 2))],
                                              nn.Linear(150, 2)), 0.01),
    "most layers, BatchNorm blocks": (lambda: nn.Sequential(*_blocks((modelspec.MAX_LAYERS - 2) // 3, 40),
                                                            nn.Linear(40, 2)), 0.01),
    "most layers, cheap": (lambda: nn.Sequential(nn.Linear(2, 64),
                                                 *[nn.ReLU() for _ in range(modelspec.MAX_LAYERS - 3)],
                                                 nn.Linear(64, 2)), 0.01),
}


def main() -> None:
    torch.set_num_threads(1)
    for name, (make, lr) in MODELS.items():
        torch.manual_seed(0)
        try:
            spec = modelspec.export(make())
        except modelspec.SpecError as err:
            print(f"{name}: refused: {err}")
            continue
        start = time.process_time()
        measured = judge.measure(Setting(spec, lr), {"seed": 1}, 3)
        print(f"{name}: {time.process_time() - start:.2f} s host CPU {measured.error or ''}")


if __name__ == "__main__":
    main()
