"""Every benchmark behind `course bench` runs (quick mode) and returns finite figures.

Speed targets are not asserted here: they are printed by `course bench` and reported in issue notes.
"""

import math

import pytest

from course_lib import benches

SANDBOXED = {"grade", "scale"}  # they grade submissions with `course grade`


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.sandbox) if n in SANDBOXED else n
                                  for n in sorted(benches.available())])
def test_benchmark_runs_and_returns_finite_measurements(name):
    module = benches.load(name)
    assert benches.describe(module), f"bench_{name}.py needs a docstring describing it"
    rows = module.run(quick=True)
    assert rows and all(isinstance(r, benches.Measurement) and math.isfinite(r.value) for r in rows)
