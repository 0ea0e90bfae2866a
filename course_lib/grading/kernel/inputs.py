"""The grader's inputs for element-wise functions: shapes, both float dtypes, the kink, extremes.

Deterministic for a seed, so the grader and the reference see the same arrays; the hidden tests use
seeds the student does not see.
"""

import numpy as np

SHAPES = ((7,), (3, 5), (2, 3, 4), ())


def elementwise_inputs(seed: int, dtypes=(np.float64, np.float32), extremes: bool = True) -> list[np.ndarray]:
    """Arrays of several shapes and dtypes containing exact zeros, tiny values around 0 and, if
    `extremes`, large magnitudes (+-1000, where a naive exp overflows)."""
    rng = np.random.default_rng(seed)
    special = [0.0, -0.0, 1e-12, -1e-12]
    if extremes:
        special += [1000.0, -1000.0]
    arrays = []
    for dtype in dtypes:
        for shape in SHAPES:
            x = rng.normal(scale=3.0, size=shape)
            flat = x.reshape(-1)
            flat[: min(len(special), flat.size)] = special[: flat.size]
            arrays.append(rng.permuted(flat).reshape(shape).astype(dtype))
    return arrays
