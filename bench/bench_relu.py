"""numpy relu forward throughput, as a ratio of a plain memory copy of the same float32 array.

ReLU reads and writes every element once, like x.copy(), so a copy is the speed limit: relu at >= 0.7x of
the copy's bandwidth means it makes a single pass with no upcasting and no hidden temporaries. Both are
timed in the same run, best of N with time.perf_counter; bytes moved = read + write = 2 * x.nbytes.
The quick run (2**16 elements, 256 KB) is a smoke test only: in cache, memcpy outruns np.maximum's
compute, so its ratio (about 0.4x) says nothing about memory-bound throughput.
"""

import time

import numpy as np

from course_lib.activations import relu
from course_lib.benches import Measurement


def _best_seconds(fn, repeats: int) -> float:
    """The fastest of `repeats` calls of fn()."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run(quick: bool) -> list[Measurement]:
    n, repeats = (2**16, 20) if quick else (2**24, 15)
    x = np.random.default_rng(0).standard_normal(n, dtype=np.float32)
    assert relu(x).dtype == np.float32  # an upcast to float64 would double the bytes written
    relu_s = _best_seconds(lambda: relu(x), repeats)
    copy_s = _best_seconds(x.copy, repeats)
    gigabytes = 2 * x.nbytes / 1e9
    return [
        Measurement(f"relu forward (float32, 2**{n.bit_length() - 1} elements)", gigabytes / relu_s, "GB/s"),
        Measurement("x.copy() of the same array", gigabytes / copy_s, "GB/s"),
        Measurement("relu / copy throughput", copy_s / relu_s, "x", "aim >= 0.7x"),
    ]
