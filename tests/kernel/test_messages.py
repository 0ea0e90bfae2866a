"""What a student sees when a check fails in their own Jupyter or under `nbgrader validate`: the judge's whole
message, on lines short enough that nbgrader prints them uncut, and no grader frames."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_lib.grading.kernel.channel import CheckFailed
from tests import grading_fixtures as fx

ROOT = Path(__file__).resolve().parents[2]
KINK_AT_ONE = "def relu_grad(x):\n    return np.where(x >= 0, 1.0, 0.0)"
MESSAGE = ("relu_grad: relu_grad(0) returned 1: any value in [0, 1] is a subgradient, but this exercise follows "
           "PyTorch's 0")


def test_a_failed_check_renders_as_its_message_alone_in_short_lines():
    long = "word " * 60 + "\nsecond paragraph"
    lines = CheckFailed(long)._render_traceback_()
    assert lines[0].startswith("CheckFailed: word") and lines[-1] == "second paragraph"
    assert all(len(line) <= CheckFailed.WIDTH for line in lines)
    assert " ".join(lines[:-1]).split() == ["CheckFailed:"] + long.split()[:-2]


@pytest.mark.slow
def test_nbgrader_validate_shows_the_whole_message_and_no_grader_frames(tmp_path):
    nb = fx._with(ROOT, relu_grad=KINK_AT_ONE)
    path = tmp_path / "ex01_activations.ipynb"
    nbformat.write(nb, path)
    nbgrader = Path(sys.executable).parent / "nbgrader"
    out = subprocess.run([str(nbgrader), "validate", str(path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=600).stdout
    shown = " ".join(line.strip() for line in out.splitlines())
    assert f"CheckFailed: {MESSAGE}" in shown
    assert "..." not in out.split("The error was:")[1].split("=====")[0]
    assert "course_lib/grading" not in out and "Traceback" not in out
