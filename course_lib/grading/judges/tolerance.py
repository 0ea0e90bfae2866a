"""How close a float answer must be to the reference, by dtype: one table for every check that compares arrays.

float64 answers computed by another correct formula (another order of sums, exp(x)/(1+exp(x)) for 1/(1+exp(-x)))
agree to about 1e-12; float32 ones to about 1e-7 relative, and sums of many float32 terms near 0 (affine layers)
to about 1e-6 absolute. The margins below leave 10-100x room for those and none for a wrong formula: the closest
plausible mistake in the course (GELU by its tanh approximation) is off by up to 5e-4.
"""

TOLERANCES = {"float64": (1e-6, 1e-9), "float32": (1e-4, 1e-5)}  # dtype -> (rtol, atol) of numpy.isclose
# A fraction of counts (dead units / units) computed in float32 (`(dead == 0).float().mean()`) is off by up to
# ~6e-8; two different counts over at most 1000 units differ by at least 1e-3. So 1e-6 accepts every correct
# answer and no wrong one.
FRACTION_ATOL = 1e-6


def tolerance(dtype) -> tuple[float, float]:
    """(rtol, atol) for answers of `dtype` (a numpy dtype or its name); other dtypes get float32's."""
    return TOLERANCES.get(str(dtype), TOLERANCES["float32"])
