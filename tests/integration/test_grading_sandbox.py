"""The sandbox contains what a submission can throw at it: each attack or fault ends that run (or that cell)
with a status the host observed, leaves no process behind, and the next run works. What it shows is an
allow-list: no course folder, no other checkout, no host side of grading, no name the assignment asks for.
CPU seconds are measured from outside. Needs bubblewrap (`apt-get install bubblewrap`; .ci/run installs it)."""

import os
from pathlib import Path
from unittest import mock

import pytest

from course_lib.data import cache_dir
from course_lib.grading.sandbox import library, session, slots
from course_lib.grading.sandbox.bubblewrap import Limits, Sandbox, bwrap_available, unprivileged
from course_lib.grading.sandbox.session import Refused, run_notebook

pytestmark = [pytest.mark.slow, pytest.mark.attack, pytest.mark.sandbox]
WRITTEN = {"course_lib.activations": ["relu", "relu_grad"]}


@pytest.fixture(scope="module", autouse=True)
def needs_bubblewrap():
    assert bwrap_available(), "the grading sandbox needs bubblewrap: apt-get install bubblewrap"


def _refuse(index, position, check, params):
    raise Refused("no checks here")


def _run(*sources, **limits):
    """Run the cells (and one more) in a sandbox on a slot of its own, so grading runs elsewhere on this
    machine cannot touch it; (result, the Sandbox it ran in, whose `leftover()` lists processes still alive)."""
    cells = list(enumerate((*sources, "print('next cell ran')")))
    built = library.build(WRITTEN, library.library_dir())
    made = []

    class Recorded(Sandbox):
        def __init__(self, *args):
            super().__init__(*args)
            made.append(self)

    with slots.claim() as worker, mock.patch.object(session, "Sandbox", Recorded):
        result = run_notebook(cells, _refuse, Limits(**{"wall_s": 60, "cell_timeout_s": 20, **limits}), worker,
                              built, library.PACKAGE_DIR, cache_dir())
    return result, made[0]


def _texts(result, index=None):
    cells = [result.cells[index]] if index is not None else [result.cells[i] for i in sorted(result.cells)]
    return [str(o.get("text", o.get("ename", ""))) for c in cells for o in c.outputs]


def _no_process_left(sandbox: Sandbox) -> bool:
    return not sandbox.leftover()


def test_a_normal_notebook_runs_with_torch_on_one_thread():
    result, _ = _run("import torch\nprint(torch.get_num_threads())")
    assert result.status == "graded" and _texts(result) == ["1\n", "next cell ran\n"]


def test_there_is_no_network():
    result, _ = _run("import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=3)")
    assert result.status == "graded" and "OSError" in str(result.cells[0].outputs)


def _outside_tmp() -> list[str]:
    """Paths a submission must not write: the system, the root, /dev, the library, and the folder above it
    (unless that lies under /tmp, as a checkout in /tmp does: then it is part of the sandbox's own tmpfs)."""
    paths = ["/etc/x", "/usr/x", "/x", "/dev/x", str(library.PACKAGE_DIR / "x")]
    above = library.PACKAGE_DIR.parent
    return paths + ([] if above.is_relative_to("/tmp") else [str(above / "x")])


def test_only_the_allow_list_is_visible_and_only_tmp_is_writable(course_root):
    probe = (f"import os\nprint(sorted(os.listdir({str(course_root)!r})))\nprint(sorted(os.listdir('/')))\n"
             f"print(sorted(os.listdir({str(course_root.parent)!r})), os.getuid())\n"
             "for path in " + repr(tuple(_outside_tmp())) + ":\n"
             "    try:\n        open(path, 'w')\n    except OSError:\n        print('denied')\n"
             "open('/tmp/mine', 'w').write('ok')\nprint(open('/tmp/mine').read())")
    result, sandbox = _run(probe)
    uid = os.getuid() if unprivileged() else sandbox.uid  # without root: the grader's uid, in its own namespace
    course, top, beside, *writes = _texts(result, 0)[0].splitlines()
    assert course in ("['.venv', 'course_lib']", "['course_lib']")  # no solutions/, .git, gradebook, notebooks
    assert not {"home", "srv", "opt", "var", "mnt"} & set(eval(top))  # noqa: S307 - a printed list of names
    names, shown_uid = beside.rsplit(" ", 1)
    # No other checkout or folder next to the course; a checkout in /tmp sits in the sandbox's own /tmp, beside
    # only the sandbox's working folder and IPython's.
    own = {"submission", ".ipython"} if course_root.parent == Path("/tmp") else set()
    assert set(eval(names)) - own == {course_root.name} and shown_uid == str(uid)  # noqa: S307 - printed names
    assert writes == ["denied"] * len(_outside_tmp()) + ["ok"]


def test_the_sandbox_library_has_no_host_side_and_no_name_students_write():
    probe = ("import importlib, inspect\nimport course_lib.activations as a\n"
             "print('def relu(' in inspect.getsource(a), hasattr(a, 'leaky_relu'))\n"
             "for room in ('judges', 'grade', 'sandbox', 'authoring', 'nbgrader_api'):\n"
             "    name = 'course_lib.grading.' + room\n"
             "    try:\n        importlib.import_module(name)\n    except ImportError:\n        print('absent')\n"
             "from course_lib.activations import relu")
    result, _ = _run(probe)
    outputs = result.cells[0].outputs
    assert outputs[0]["text"] == "False True\n" + "absent\n" * 5
    assert outputs[-1]["ename"] == "ReferenceRemoved" and "write your own" in outputs[-1]["evalue"]
    assert result.references == ("course_lib.activations.relu",)


def test_a_star_import_of_a_cut_module_takes_the_rest_and_flags_nothing():
    """activations declares __all__ with relu in it; the cut module's __all__ must lose relu, or `import *`
    would raise ReferenceRemoved and flag a student who never used the course's answer."""
    result, _ = _run("from course_lib.activations import *\nprint('relu' in dir(), callable(leaky_relu))")
    assert _texts(result)[0] == "False True\n" and result.references == ()


def test_a_memory_bomb_gets_memory_error_and_the_run_goes_on():
    result, _ = _run("x = bytearray(16 * 2**30)", memory_mb=3000)
    assert "MemoryError" in str(result.cells[0].outputs) and _texts(result)[-1] == "next cell ran\n"


def test_memory_spread_over_processes_is_capped_for_the_whole_tree():
    hog = ("import os, time\nfor _ in range(4):\n    if os.fork() == 0:\n        b = bytearray(700 * 2**20)\n"
           "        time.sleep(30)\n        os._exit(0)\ntime.sleep(30)")
    result, sandbox = _run(hog, memory_mb=1500, wall_s=50)
    assert result.status == "crashed: over the 1500 MB memory cap" and _no_process_left(sandbox)


def test_files_in_tmp_count_toward_the_memory_cap():
    fill = ("import time\nwith open('/tmp/big', 'wb') as f:\n    for _ in range(13):\n"
            "        f.write(b'x' * 100 * 2**20)\n        f.flush()\ntime.sleep(30)")
    result, sandbox = _run(fill, memory_mb=1200, tmpfs_mb=1500, wall_s=50)
    assert result.status == "crashed: over the 1200 MB memory cap" and _no_process_left(sandbox)


def test_files_in_dev_shm_count_toward_the_memory_cap_too():
    fill = ("import time\nfor i in range(13):\n    with open(f'/dev/shm/big{i}', 'wb') as f:\n"
            "        f.write(b'x' * 100 * 2**20)\ntime.sleep(30)")
    result, sandbox = _run(fill, memory_mb=1200, tmpfs_mb=1500, wall_s=50)
    assert result.status == "crashed: over the 1200 MB memory cap" and _no_process_left(sandbox)


def test_filling_tmp_stops_at_its_size_and_the_run_goes_on():
    fill = ("try:\n    with open('/tmp/big', 'wb') as f:\n        for _ in range(64):\n"
            "            f.write(b'x' * 2**20)\nexcept OSError as err:\n    print(type(err).__name__)")
    result, _ = _run(fill, tmpfs_mb=16)
    assert _texts(result, 0)[0].strip() in ("OSError", "File size limit exceeded") or "Error" in _texts(result, 0)[0]
    assert _texts(result)[-1] == "next cell ran\n"


def test_a_fork_bomb_stops_at_the_process_cap():
    bomb = "import os\nfor _ in range(5000):\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result, sandbox = _run(bomb, wall_s=45, processes=64)
    assert result.status.startswith(("graded", "crashed", "timeout"))
    assert _no_process_left(sandbox)


def test_a_loop_past_the_cell_timeout_is_interrupted_and_the_next_cells_run():
    result, _ = _run("while True:\n    pass", cell_timeout_s=3)
    assert result.status == "timeout: cell 0 ran past its 3 s timeout"
    assert result.cells[0].outputs[0]["ename"] == "KeyboardInterrupt" and result.cells[0].timed_out
    assert _texts(result)[-1] == "next cell ran\n"


def test_a_loop_ignoring_the_interrupt_ends_the_run_keeping_earlier_cells():
    loop = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
    result, sandbox = _run("print('before')", loop, wall_s=30, cell_timeout_s=3)
    assert result.status == "timeout: cell 1 ran past its 3 s timeout and ignored the interrupt"
    assert _texts(result, 0) == ["before\n"] and 1 not in result.cells
    assert _no_process_left(sandbox)


def test_the_wall_time_cap_ends_a_run_whatever_runs_inside():
    result, sandbox = _run("print('before')", "while True:\n    pass", wall_s=8, cell_timeout_s=60)
    assert result.status == "timeout: over the 8 s wall-time cap"
    assert _texts(result, 0) == ["before\n"]
    assert _no_process_left(sandbox)


def test_a_hundred_megabytes_of_printing_is_cut_to_the_output_cap():
    result, _ = _run("for _ in range(200_000):\n    print('x' * 500)", cell_output=100_000)
    assert sum(len(t) for t in _texts(result, 0)) < 110_000
    assert "[output truncated by the grader" in _texts(result, 0)[-1] and _texts(result)[-1] == "next cell ran\n"


@pytest.mark.parametrize("code, status", [("import os\nos._exit(0)", "crashed"), ("import sys\nsys.exit(0)", "graded"),
                                          ("raise SystemExit", "graded")])
def test_exiting_is_survived_or_ends_the_run_as_crashed(code, status):
    result, _ = _run(code)
    assert result.status.startswith(status)


def test_results_displays_and_errors_become_the_notebook_outputs_nbgrader_shows():
    cells = ("from IPython.display import display, Markdown\ndisplay(Markdown('**hi**'))\n6 * 7",
             "import matplotlib.pyplot as plt\n%matplotlib inline\nplt.plot([1, 2])\nplt.show()",
             "1 / 0")
    result, _ = _run(*cells)
    first, figure, error = (result.cells[i].outputs for i in range(3))
    assert [o["output_type"] for o in first] == ["display_data", "execute_result"]
    assert first[0]["data"]["text/markdown"] == "**hi**" and first[1]["data"]["text/plain"] == "42"
    assert any("image/png" in o.get("data", {}) for o in figure)
    assert error[0]["output_type"] == "error" and error[0]["ename"] == "ZeroDivisionError"
    assert not result.cells[2].ok and result.cells[0].ok
    assert result.status == "graded" and _texts(result)[-1] == "next cell ran\n"


def test_the_graders_data_cache_is_read_only_inside():
    from course_lib.data import mnist1d

    mnist1d(num_samples=500, seed=5)  # cached by the grader
    probe = ("import os, warnings\nfrom course_lib.data import mnist1d, cache_dir\n"
             "with warnings.catch_warnings(record=True) as caught:\n"
             "    warnings.simplefilter('always')\n    mnist1d(num_samples=500, seed=5)\n"
             "    mnist1d(num_samples=500, seed=123456)\n"
             "not_cached = sum('could not cache' in str(w.message) for w in caught)\n"
             "print(cache_dir(), not_cached, os.access(cache_dir(), os.W_OK))")
    before = sorted(cache_dir().iterdir())
    result, _ = _run(probe)
    printed = [o["text"] for o in result.cells[0].outputs if o.get("name") == "stdout"]
    assert printed == ["/run/rectified-cache 1 False\n"]  # seed 5 was read; seed 123456 could not be written
    assert sorted(cache_dir().iterdir()) == before


BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}:\n    pass\n"


def test_cpu_seconds_are_measured_from_outside_whatever_the_clock_says():
    """A patched clock, a thread and an orphaned child process all count."""
    patch = "import time\ntime.process_time = lambda: 0.0\ntime.perf_counter = lambda: 0.0"
    thread = ("import threading\n" + "def burn():\n" + "".join("    " + line + "\n" for line in
              BURN.format(s=1.0).splitlines()) + "th = threading.Thread(target=burn)\nth.start()\nth.join()")
    orphan = ("import os, time\nif os.fork() == 0:\n    if os.fork() == 0:\n" + "".join(
        "        " + line + "\n" for line in BURN.format(s=1.5).splitlines()) +
        "        open('/tmp/orphan-done', 'w').close()\n        os._exit(0)\n    os._exit(0)\n"
        "while not os.path.exists('/tmp/orphan-done'):\n    time.sleep(0.05)")
    result, _ = _run(thread, orphan, patch, BURN.format(s=0.0))
    quiet, _ = _run("x = 1")
    assert result.status == "graded"
    assert result.cpu_seconds - quiet.cpu_seconds > 2.2  # 1.0 s thread + 1.5 s orphan, minus polling slack
    assert result.cells[1].cpu_seconds - result.cells[0].cpu_seconds > 1.2
