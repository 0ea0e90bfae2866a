"""What ex06's CPU budget test sees under `course grade`: the host's CPU seconds for the whole solution notebook
at the end of the budget test, against the kernel's own figure for the training run alone.

    course bench ex06_budget

The difference is what the judge's ALLOWANCE_S must cover (interpreter start, imports, the cells before the
training). The host figure is recorded as the judge receives it, for the reference run and each submission.
"""

import statistics
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from torch import nn

from course_lib.benches import Measurement
from course_lib.grading.checks import ex06
from course_lib.grading.judges import ex06 as judge
from course_lib.paths import course_root

sys.path.insert(0, str(course_root()))
from tests import grading_fixtures as fx  # noqa: E402  (the fixture class lives with the tests)

A = "ex06_capstone"


def host_seconds(n: int) -> list[float]:
    """The host's CPU figure at the end of the budget test, for the reference run and `n` solution submissions
    graded together (recorded as the judge receives it)."""
    seen, judged = [], judge._cpu_message

    def recording(name: str, run, params: dict):
        if "CPU budget" in name and not params.get("hidden"):
            seen.append(params["host_cpu_seconds"])
        return judged(name, run, params)

    notebooks = {f"s{i}": fx.solved(course_root(), A) for i in range(n)}
    with tempfile.TemporaryDirectory() as scratch, pytest.MonkeyPatch.context() as mp:
        mp.setattr(judge, "_cpu_message", recording)
        fx.grade_class(course_root(), Path(scratch) / "course", A, notebooks, mp, workers=1)
    return seen


def kernel_seconds(n: int) -> list[float]:
    """The kernel's CPU figure for the solution's training run alone (what a student sees locally)."""
    namespace = {"__name__": "__main__", "torch": torch, "nn": nn}
    exec(fx.cell(fx.solved(course_root(), A), "design").source, namespace)  # noqa: S102 - the course's solution
    config = ex06.probe_config(namespace["training_config"])
    runs = []
    for seed in range(n):
        d = ex06.data(1)
        run, _ = ex06._run(namespace["build_model"], config, {"draw": 1, "train_seed": seed, "heldout": d.x_test})
        runs.append(run.cpu_seconds)
    return runs


def _listed(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def run(quick: bool = False) -> list[Measurement]:
    """Host and kernel figures for n solution copies (1 when quick), and the overhead the allowance covers."""
    n = 1 if quick else 3
    host, kernel = host_seconds(n), kernel_seconds(n)
    overhead = statistics.median(host) - statistics.median(kernel)
    return [Measurement("host CPU at the budget test's end", statistics.median(host), "s", "runs " + _listed(host)),
            Measurement("kernel CPU of the training run", statistics.median(kernel), "s", "runs " + _listed(kernel)),
            Measurement("overhead (difference of medians)", overhead, "s",
                        f"ALLOWANCE_S = {judge.ALLOWANCE_S:g} s, {judge.ALLOWANCE_S / overhead:.1f}x the overhead")]
