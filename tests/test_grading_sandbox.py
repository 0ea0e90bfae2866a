"""The sandbox contains what a submission can throw at it: each attack or fault ends that run with a status,
leaves no process behind, and the next run works. Needs bubblewrap (`apt-get install bubblewrap`; .ci/run
installs it)."""

import subprocess

import nbformat
import pytest

from course_lib.grading.sandbox import Limits, bwrap_available, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def needs_bubblewrap():
    assert bwrap_available(), "the grading sandbox needs bubblewrap and setpriv: apt-get install bubblewrap"


def _run(tmp_path, *sources, **limits):
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "rectified", "display_name": "Rectified"}})
    nb.cells = [nbformat.v4.new_code_cell(s) for s in (*sources, "print('next cell ran')")]
    return run(nb, tmp_path / "work", Limits(**{"wall_s": 60, "cell_timeout_s": 20, **limits}))


def _texts(result):
    return [str(o.get("text", o.get("ename", ""))) for c in result.notebook.cells for o in c.outputs]


def _no_sandbox_processes_left():
    listing = subprocess.run(["ps", "-eo", "uid="], capture_output=True, text=True).stdout.split()
    return not [uid for uid in listing if uid.isdigit() and 61000 <= int(uid) < 62000]


def test_a_normal_notebook_runs_with_torch_on_one_thread(tmp_path):
    result = _run(tmp_path, "import torch\nprint(torch.get_num_threads())")
    assert result.status == "ok" and _texts(result) == ["1\n", "next cell ran\n"]


def test_there_is_no_network(tmp_path):
    result = _run(tmp_path, "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=3)")
    assert result.status == "ok" and "OSError" in _texts(result)[0] + str(result.notebook.cells[0].outputs)


def test_solutions_gradebook_and_home_are_invisible_and_nothing_is_writable_outside(tmp_path, course_root):
    forbidden = str(course_root / "course_lib" / "x")
    probe = (f"import os\nprint(sorted(os.listdir({str(course_root)!r})), os.listdir('/root'), os.getuid())\n"
             f"try:\n    open({forbidden!r}, 'w')\nexcept OSError:\n    print('denied')")
    listing, denied = _texts(_run(tmp_path, probe))[0].splitlines()
    visible, home, uid = listing.split("] ")
    assert visible + "]" == "['.venv', 'course_lib', 'pyproject.toml']"  # no solutions/, .git, gradebook
    assert home + "]" in ("['.pyenv']", "[]") and uid == "61000"
    assert denied == "denied"


def test_a_memory_bomb_gets_memory_error_and_the_run_goes_on(tmp_path):
    result = _run(tmp_path, "x = bytearray(16 * 2**30)", memory_mb=3000)
    assert "MemoryError" in str(result.notebook.cells[0].outputs) and _texts(result)[-1] == "next cell ran\n"


def test_a_fork_bomb_stops_at_the_process_cap(tmp_path):
    bomb = "import os\nfor _ in range(5000):\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result = _run(tmp_path, bomb, wall_s=45, processes=64)
    assert result.status.startswith(("ok", "crashed", "timeout"))
    assert _no_sandbox_processes_left()


def test_an_infinite_loop_ignoring_sigint_ends_at_the_wall_cap_keeping_earlier_cells(tmp_path):
    loop = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
    result = _run(tmp_path, "print('before')", loop, wall_s=15, cell_timeout_s=5)
    assert result.status == "timeout: over the 15 s wall-time cap"
    assert result.notebook.cells[0].outputs[0]["text"] == "before\n"
    assert _no_sandbox_processes_left()


def test_a_hundred_megabytes_of_printing_is_cut_to_the_output_cap(tmp_path):
    result = _run(tmp_path, "for _ in range(200_000):\n    print('x' * 500)", cell_output=100_000)
    assert (result.workdir / "out.ipynb").stat().st_size < 300_000
    assert "[output truncated by the grader" in _texts(result)[1] and _texts(result)[-1] == "next cell ran\n"


@pytest.mark.parametrize("exit_code", ["import os\nos._exit(0)", "import sys\nsys.exit(0)", "raise SystemExit"])
def test_exiting_the_kernel_is_survived(tmp_path, exit_code):
    result = _run(tmp_path, exit_code)
    assert result.status.startswith(("ok", "crashed")) and result.notebook is not None
