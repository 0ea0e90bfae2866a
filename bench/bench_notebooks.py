"""Run time of every lecture notebook, executed headless on the course kernel (aim: <= 60 s each, <= 6 min in all).

The aims are for 2 idle cores. This machine may be shared, so each notebook's wall time carries the 1-minute load
average when it started and ended, and a second figure that depends far less on other load: the CPU seconds its
processes used (the kernel and the worker processes it starts, sampled with psutil every 0.2 s, so a process's
last fraction of a second can be missed). On 2 idle cores the wall time lies between CPU / 2 (everything in
parallel) and CPU (nothing in parallel), plus what is not CPU time in the kernel: its start, the messages to
this process, waits. The notebooks run one after the other, each in a fresh kernel, exactly as
`course slides` and the notebook tests run them (`course_lib.rendering.execute`, widgets headless); a notebook that
fails raises. quick=True runs only 00_welcome, as a smoke test of the measurement.
"""

import os
import threading
import time

import psutil  # installed with ipykernel, which executing a notebook needs anyway

from course_lib import rendering
from course_lib.benches import Measurement
from course_lib.paths import notebooks

PER_NOTEBOOK_AIM_S, COURSE_AIM_S = 60, 360


class DescendantCPU:
    """CPU seconds (user + system) used by this process's descendants while the `with` block runs.

    A thread samples every descendant every `interval` seconds and keeps each one's latest total, keyed by
    (pid, start time) so that a reused pid is not mixed up; `seconds` is the sum. Reaped children's times are not
    added again (psutil's children_user counts them in their parent), so nothing is counted twice.
    """

    def __init__(self, interval: float = 0.2):
        self.interval, self.latest, self._stop = interval, {}, threading.Event()

    def _sample(self) -> None:
        for child in psutil.Process().children(recursive=True):
            try:
                times = child.cpu_times()
                self.latest[child.pid, child.create_time()] = times.user + times.system
            except psutil.Error:  # it ended between listing and reading
                continue

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self):
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def seconds(self) -> float:
        return sum(self.latest.values())


def time_notebook(path) -> dict:
    """One headless run of the notebook at `path`: wall seconds, CPU seconds, load average before and after."""
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with DescendantCPU() as cpu:
        run = rendering.execute(path)
    seconds = time.perf_counter() - start
    if run.failure:
        raise RuntimeError(f"{path.name} failed: {run.failure}")
    return {"wall_s": seconds, "cpu_s": cpu.seconds, "load_before": load_before, "load_after": os.getloadavg()[0]}


def run(quick: bool = False) -> list[Measurement]:
    paths = notebooks()[:1] if quick else notebooks()
    rows, wall, cpu = [], 0.0, 0.0
    for path in paths:
        t = time_notebook(path)
        wall, cpu = wall + t["wall_s"], cpu + t["cpu_s"]
        rows += [Measurement(f"{path.stem} wall time", t["wall_s"], "s",
                             f"aim <= {PER_NOTEBOOK_AIM_S} s on 2 idle cores; load {t['load_before']:.1f} -> "
                             f"{t['load_after']:.1f} on {os.cpu_count()} cores"),
                 Measurement(f"{path.stem} CPU time", t["cpu_s"], "s", "the kernel and its workers")]
    rows += [Measurement(f"all {len(paths)} notebooks, wall time", wall, "s", f"aim <= {COURSE_AIM_S} s"),
             Measurement(f"all {len(paths)} notebooks, CPU time", cpu, "s", "the kernels and their workers")]
    return rows
