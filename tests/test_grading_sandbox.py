"""The sandbox contains what a submission can throw at it: each attack or fault ends that run with a status,
leaves no process behind, and the next run works. Needs bubblewrap (`apt-get install bubblewrap`; .ci/run
installs it)."""

import subprocess

import nbformat
import pytest

from course_lib.grading import slots
from course_lib.grading.sandbox import BASE_UID, Limits, bwrap_available, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def needs_bubblewrap():
    assert bwrap_available(), "the grading sandbox needs bubblewrap and setpriv: apt-get install bubblewrap"


def _run(tmp_path, *sources, **limits):
    """Run the cells (and one more) in a sandbox on a slot of its own, so grading runs elsewhere on this
    machine (whose clean-up kills their uid's processes) cannot touch it."""
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "rectified", "display_name": "Rectified"}})
    nb.cells = [nbformat.v4.new_code_cell(s) for s in (*sources, "print('next cell ran')")]
    with slots.claim() as worker:
        result = run(nb, tmp_path / "work", Limits(**{"wall_s": 60, "cell_timeout_s": 20, **limits}), worker)
        return result, BASE_UID + worker


def _texts(result):
    return [str(o.get("text", o.get("ename", ""))) for c in result.notebook.cells for o in c.outputs]


def _no_process_left(uid: int) -> bool:
    listing = subprocess.run(["ps", "-eo", "uid="], capture_output=True, text=True).stdout.split()
    return str(uid) not in listing


def test_a_normal_notebook_runs_with_torch_on_one_thread(tmp_path):
    result, _ = _run(tmp_path, "import torch\nprint(torch.get_num_threads())")
    assert result.status == "ok" and _texts(result) == ["1\n", "next cell ran\n"]


def test_there_is_no_network(tmp_path):
    result, _ = _run(tmp_path, "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=3)")
    assert result.status == "ok" and "OSError" in _texts(result)[0] + str(result.notebook.cells[0].outputs)


def test_solutions_gradebook_and_home_are_invisible_and_nothing_is_writable_outside(tmp_path, course_root):
    forbidden = str(course_root / "course_lib" / "x")
    probe = (f"import os\nprint(sorted(os.listdir({str(course_root)!r})), os.listdir('/root'), os.getuid())\n"
             f"try:\n    open({forbidden!r}, 'w')\nexcept OSError:\n    print('denied')")
    result, sandbox_uid = _run(tmp_path, probe)
    listing, denied = _texts(result)[0].splitlines()
    visible, home, uid = listing.split("] ")
    assert visible + "]" == "['.venv', 'course_lib', 'pyproject.toml']"  # no solutions/, .git, gradebook
    assert home + "]" in ("['.pyenv']", "[]") and uid == str(sandbox_uid)
    assert denied == "denied"


def test_a_memory_bomb_gets_memory_error_and_the_run_goes_on(tmp_path):
    result, _ = _run(tmp_path, "x = bytearray(16 * 2**30)", memory_mb=3000)
    assert "MemoryError" in str(result.notebook.cells[0].outputs) and _texts(result)[-1] == "next cell ran\n"


def test_a_fork_bomb_stops_at_the_process_cap(tmp_path):
    bomb = "import os\nfor _ in range(5000):\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result, uid = _run(tmp_path, bomb, wall_s=45, processes=64)
    assert result.status.startswith(("ok", "crashed", "timeout"))
    assert _no_process_left(uid)


def test_a_loop_past_the_cell_timeout_is_interrupted_and_the_next_cells_run(tmp_path):
    result, _ = _run(tmp_path, "while True:\n    pass", cell_timeout_s=3)
    assert result.status == "timeout: cell 0 ran past its 3 s timeout and was interrupted"
    assert result.notebook.cells[0].outputs[0]["ename"] == "KeyboardInterrupt"
    assert _texts(result)[-1] == "next cell ran\n"


def test_a_loop_ignoring_the_interrupt_ends_the_run_keeping_earlier_cells(tmp_path):
    loop = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
    result, uid = _run(tmp_path, "print('before')", loop, wall_s=30, cell_timeout_s=3)
    assert result.status == "timeout: cell 1 ran past its 3 s timeout and ignored the interrupt"
    assert result.notebook.cells[0].outputs[0]["text"] == "before\n"
    assert _no_process_left(uid)


def test_the_wall_time_cap_ends_a_run_whatever_runs_inside(tmp_path):
    result, uid = _run(tmp_path, "print('before')", "while True:\n    pass", wall_s=8, cell_timeout_s=60)
    assert result.status == "timeout: over the 8 s wall-time cap"
    assert result.notebook.cells[0].outputs[0]["text"] == "before\n"
    assert _no_process_left(uid)


def test_a_hundred_megabytes_of_printing_is_cut_to_the_output_cap(tmp_path):
    result, _ = _run(tmp_path, "for _ in range(200_000):\n    print('x' * 500)", cell_output=100_000)
    assert (result.workdir / "out.ipynb").stat().st_size < 300_000
    assert "[output truncated by the grader" in _texts(result)[1] and _texts(result)[-1] == "next cell ran\n"


@pytest.mark.parametrize("exit_code", ["import os\nos._exit(0)", "import sys\nsys.exit(0)", "raise SystemExit"])
def test_exiting_the_kernel_is_survived(tmp_path, exit_code):
    result, _ = _run(tmp_path, exit_code)
    assert result.status.startswith(("ok", "crashed")) and result.notebook is not None


def test_results_displays_and_errors_become_the_notebook_outputs_nbgrader_shows(tmp_path):
    cells = ("from IPython.display import display, Markdown\ndisplay(Markdown('**hi**'))\n6 * 7",
             "import matplotlib.pyplot as plt\n%matplotlib inline\nplt.plot([1, 2])\nplt.show()",
             "1 / 0")
    result, _ = _run(tmp_path, *cells)
    first, figure, error = (c.outputs for c in result.notebook.cells[:3])
    assert [o["output_type"] for o in first] == ["display_data", "execute_result"]
    assert first[0]["data"]["text/markdown"] == "**hi**" and first[1]["data"]["text/plain"] == "42"
    assert any("image/png" in o.get("data", {}) for o in figure)
    assert error[0]["output_type"] == "error" and error[0]["ename"] == "ZeroDivisionError"
    assert result.status == "ok" and _texts(result)[-1] == "next cell ran\n"


def test_the_graders_data_cache_is_read_only_inside(tmp_path):
    from course_lib.data import cache_dir, mnist1d

    mnist1d(seed=5)  # cached by the grader
    probe = ("import os, warnings\nfrom course_lib.data import mnist1d, cache_dir\n"
             "with warnings.catch_warnings(record=True) as caught:\n"
             "    warnings.simplefilter('always')\n    mnist1d(seed=5)\n    mnist1d(seed=123456)\n"
             "not_cached = sum('could not cache' in str(w.message) for w in caught)\n"
             "print(cache_dir(), not_cached, os.access(cache_dir(), os.W_OK))")
    before = sorted(cache_dir().iterdir())
    result, _ = _run(tmp_path, probe)
    printed = [o["text"] for o in result.notebook.cells[0].outputs if o.get("name") == "stdout"]
    assert printed == ["/tmp/rectified-cache 1 False\n"]  # seed 5 was read; seed 123456 could not be written
    assert sorted(cache_dir().iterdir()) == before
