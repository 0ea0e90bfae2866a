"""The same class of mixed ex01 submissions graded by serial `nbgrader autograde` and by `course grade`.

Both grade fresh copies of one class, in the same run: nbgrader in one CLI call (it grades one submission
after another, in the student's kernel), `course grade` with one sandbox per core, deciding outside. Prints
total times, the throughput ratio (aim >= 1.8x on 2 cores) and the median seconds per submission (aim <= 5 s).
"""

import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from course_lib.benches import Measurement
from course_lib.grading.nbgrader_api import api
from course_lib.paths import course_root

sys.path.insert(0, str(course_root()))
from tests import grading_fixtures as fx  # noqa: E402  (the fixture class lives with the tests)

# A timeout would only measure the cap.
FAST_CASES = [name for name, (_, status, _) in fx.CASES.items() if status != "timeout"]


def _class(course: Path, n: int) -> Path:
    submitted = course / "submitted"
    for i in range(n):
        case = FAST_CASES[i % len(FAST_CASES)]
        fx.submit(submitted, f"s{i:03d}-{case.replace('_', '-')}", fx.CASES[case][0](course_root()))
    return submitted


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _time_nbgrader(course: Path) -> tuple[float, int]:
    """Seconds for one `nbgrader autograde` of the class, and how many submissions it autograded (it exits
    non-zero when any submission fails, e.g. a kernel that dies, but grades the others)."""
    api(course, f"sqlite:///{course / 'gradebook.db'}").generate_assignment(fx.A, force=True)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    start = time.perf_counter()
    subprocess.run([_bin("nbgrader"), "autograde", fx.A, "--force"], cwd=course, env=env, capture_output=True)
    seconds = time.perf_counter() - start
    return seconds, len(list((course / "autograded").glob(f"*/{fx.A}/{fx.A}.ipynb")))


def _time_course_grade(course: Path, workers: int) -> tuple[float, list[float]]:
    env = dict(os.environ, RECTIFIED_ROOT=str(course))
    start = time.perf_counter()
    subprocess.run([_bin("course"), "grade", fx.A, "--workers", str(workers)], env=env, check=True,
                   capture_output=True)
    seconds = time.perf_counter() - start
    with open(course / "grades.csv", newline="") as f:
        return seconds, [float(r["duration_s"]) for r in csv.DictReader(f)]


def run(quick: bool = False) -> list[Measurement]:
    n, workers = (2, 2) if quick else (40, os.cpu_count() or 2)
    with tempfile.TemporaryDirectory() as scratch:
        a, b = fx.make_course(course_root(), Path(scratch) / "a"), fx.make_course(course_root(), Path(scratch) / "b")
        _class(a, n)
        shutil.copytree(a / "submitted", b / "submitted")
        nbgrader_s, nbgrader_done = _time_nbgrader(a)
        course_s, durations = _time_course_grade(b, workers)
    return [
        Measurement(f"nbgrader autograde, {n} submissions, serial", nbgrader_s, "s"),
        Measurement("submissions nbgrader autograded", nbgrader_done, ""),
        Measurement(f"course grade, {n} submissions, {workers} workers", course_s, "s"),
        Measurement("throughput, course grade / nbgrader", nbgrader_s / course_s, "x", "aim >= 1.8x on 2 cores"),
        Measurement("median sandbox seconds per submission", statistics.median(durations), "s", "aim <= 5 s"),
        Measurement("course grade wall seconds per submission", course_s / n, "s"),
    ]
