"""Run time of every lecture notebook, executed headless on the course kernel (aim: <= 60 s each, <= 6 min in all).

The aims are for 2 idle cores. This machine may be shared, so each notebook's line also carries the 1-minute
load average when it started and when it ended: a figure measured at load 4 on 2 cores is not a figure on
idle cores. The notebooks run one after the other, each in a fresh kernel, exactly as `course slides` and the
notebook tests run them (`course_lib.rendering.execute`, widgets headless); a notebook that fails raises.
quick=True runs only 00_welcome, as a smoke test of the measurement.
"""

import os
import time

from course_lib import rendering
from course_lib.benches import Measurement
from course_lib.paths import notebooks

PER_NOTEBOOK_AIM_S, COURSE_AIM_S = 60, 360


def time_notebook(path) -> tuple[float, float, float]:
    """(wall seconds, load average before, load average after) of one headless run of the notebook at `path`."""
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    run = rendering.execute(path)
    seconds = time.perf_counter() - start
    if run.failure:
        raise RuntimeError(f"{path.name} failed: {run.failure}")
    return seconds, load_before, os.getloadavg()[0]


def run(quick: bool = False) -> list[Measurement]:
    paths = notebooks()[:1] if quick else notebooks()
    rows, total = [], 0.0
    for path in paths:
        seconds, before, after = time_notebook(path)
        total += seconds
        rows.append(Measurement(f"{path.stem} wall time", seconds, "s",
                                f"aim <= {PER_NOTEBOOK_AIM_S} s; load {before:.1f} -> {after:.1f} on "
                                f"{os.cpu_count()} cores"))
    rows.append(Measurement(f"all {len(paths)} notebooks", total, "s", f"aim <= {COURSE_AIM_S} s"))
    return rows
