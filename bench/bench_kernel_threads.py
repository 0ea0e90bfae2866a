"""Tiny-MLP training time with OMP_NUM_THREADS=1 vs torch's default threads, idle and with busy cores.

Why the course kernel pins one thread: on an idle machine the two settings are close, but as soon as the
other cores are busy (a second notebook, parallel grading workers, a browser) torch's default thread pool
waits on cores it cannot get and tiny models train tens of times slower.
"""

import os
import subprocess
import sys

from course_lib.benches import Measurement

# Trains a 2-hidden-layer MLP on random data and prints the seconds the training loop took.
TRAIN_SCRIPT = """
import time, torch
torch.manual_seed(0)
x, y = torch.randn(512, 40), torch.randint(0, 10, (512,))
net = torch.nn.Sequential(torch.nn.Linear(40, 100), torch.nn.ReLU(), torch.nn.Linear(100, 100),
                          torch.nn.ReLU(), torch.nn.Linear(100, 10))
opt = torch.optim.SGD(net.parameters(), lr=0.1)
start = time.perf_counter()
for _ in range({steps}):
    for i in range(0, 512, 32):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x[i:i + 32]), y[i:i + 32]).backward()
        opt.step()
print(time.perf_counter() - start)
"""


def _train_seconds(threads: str | None, steps: int) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if threads is not None:
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    out = subprocess.run([sys.executable, "-c", TRAIN_SCRIPT.format(steps=steps)], env=env,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def _busy_cores(n: int) -> list[subprocess.Popen]:
    """Start n processes that spin on a core each, standing in for other work on the machine."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def _compare(steps: int, repeats: int, condition: str) -> list[Measurement]:
    one = min(_train_seconds("1", steps) for _ in range(repeats))
    default = min(_train_seconds(None, steps) for _ in range(repeats))
    return [
        Measurement(f"{condition}: train time, 1 thread", one, "s"),
        Measurement(f"{condition}: train time, default threads", default, "s"),
        Measurement(f"{condition}: default / 1-thread time", default / one, "x", "> 1: one thread is faster"),
    ]


def run(quick: bool = False) -> list[Measurement]:
    steps, repeats = (1, 1) if quick else (10, 3)
    rows = _compare(steps, repeats, "idle")
    spinners = _busy_cores(os.cpu_count() or 1)
    try:
        rows += _compare(steps, repeats, f"{len(spinners)} busy cores")
    finally:
        for proc in spinners:
            proc.kill()
            proc.wait()
    return rows
