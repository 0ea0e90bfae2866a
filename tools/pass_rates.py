"""How often the reference solution passes each check under secret inputs, as `course grade` would give them.

    PYTHONPATH=. .venv/bin/python tools/pass_rates.py ex04_leaky_prelu -n 60

Runs the solution notebook's code cells in this process, each test cell with the check channel connected to
an in-process host (tests.grading_fixtures.Host) whose course secret changes with every run, so each run draws
new secret per-student seeds and new per-class held-out sets. Prints, for each check a test cell makes, how
many runs passed, and for training checks the held-out accuracy (min / mean / max) counted from the
predictions, as the judge counts it. A check an honest solution can fail by chance is a defect.
"""

import argparse
import contextlib
import io
from collections import defaultdict

import numpy as np
import torch

from course_lib.grading.authoring.sources import grade_id, read_source
from course_lib.grading.judges.training import scored
from course_lib.grading.kernel import channel
from course_lib.grading.kernel.training import TrainingOutcome
from tests.grading_fixtures import Host


def _accuracies(data, labels) -> dict[str, float]:
    """The held-out accuracy of each TrainingOutcome in a check's data (a dict of them, by key)."""
    if not isinstance(data, dict) or not isinstance(labels, np.ndarray):
        return {}
    outcomes = {key: getattr(o, "outcome", o) for key, o in data.items()}  # ex06 wraps it in a BudgetedRun
    return {key: scored(o, labels).test_accuracy for key, o in outcomes.items()
            if isinstance(o, TrainingOutcome) and o.error is None}


Result = tuple[str, str | None, dict[str, float]]  # (check with its notebook params, verdict, accuracies)


def run_once(assignment: str, source, index: int, only: set[str] | None = None) -> list[Result]:
    """(check with its notebook params, verdict, accuracies) for every check of one run with secret `index`;
    test cells whose grade id is not in `only` (when given) are skipped."""
    namespace: dict = {"__name__": "__main__"}  # functions defined here count as the notebook's own
    results = []
    for cell in source.cells:
        if cell.cell_type != "code" or (only and (grade_id(cell) or "").startswith("test_")
                                         and grade_id(cell) not in only):
            continue
        host = Host(assignment, f"student-{index}", f"pass-rate secret {index}".encode())
        channel.connect(host)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(cell.source, grade_id(cell) or "cell", "exec"), namespace)  # noqa: S102
        finally:
            channel.connect(None)
        for served, verdict, data in zip(host.served, host.verdicts(), host.data, strict=True):
            label = f"{grade_id(cell)}: {served.check}"
            results.append((label, verdict, _accuracies(data, served.prepared.private)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("assignment")
    parser.add_argument("-n", type=int, default=50, help="runs, each with its own course secret")
    parser.add_argument("--only", nargs="*", help="run only these test cells (grade ids)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    source = read_source(args.assignment)
    passed, runs, failures = defaultdict(int), defaultdict(int), defaultdict(list)
    accuracy = defaultdict(lambda: defaultdict(list))
    for index in range(args.n):
        for label, verdict, accuracies in run_once(args.assignment, source, index, set(args.only or ())):
            runs[label] += 1
            passed[label] += verdict is None
            for key, value in accuracies.items():
                accuracy[label][key].append(value)
            if verdict:
                failures[label].append(verdict)
        print(f"run {index + 1}/{args.n} done", flush=True)
    for label in runs:
        line = f"{label}: passed {passed[label]}/{runs[label]}"
        for key, values in accuracy[label].items():
            a = np.array(values)
            line += f"; {key} held-out accuracy min {a.min():.3f} mean {a.mean():.3f} max {a.max():.3f} (n={a.size})"
        print(line)
        for message in failures[label][:3]:
            print(f"    {message}")


if __name__ == "__main__":
    main()
