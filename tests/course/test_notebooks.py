"""Every lecture notebook executes top to bottom on the Rectified kernel, and is committed clean.

Each notebook's execution time is written to test-artifacts/notebook_times.json (the budget, 60 s on
2 CPU cores, is reported in issue notes and by `course bench notebooks`, not asserted here).
Execution is headless (RECTIFIED_HEADLESS: `course_lib.live.interact` shows a note and a static figure instead of
a widget, which headless executors can stall on) and every cell has its own timeout, CELL_TIMEOUT seconds.
"""

import json
import time

import nbformat
import pytest
from nbclient import NotebookClient

from course_lib.live import HEADLESS_ENV
from course_lib.paths import notebooks
from tests.conftest import ROOT

NOTEBOOKS = notebooks()
ARTIFACTS = ROOT / "test-artifacts"
CELL_TIMEOUT = 300  # seconds per cell: a stall fails one cell; 06's longest cell took 93 s under load 7


def test_the_course_has_its_welcome_notebook_first():
    assert NOTEBOOKS and NOTEBOOKS[0].name == "00_welcome.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs_and_uses_the_course_kernel(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "rectified"
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"cells {dirty} have outputs: clear them before committing"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes_without_errors(path, monkeypatch):
    nb = nbformat.read(path, as_version=4)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # the course kernel must set its own threads
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setenv(HEADLESS_ENV, "1")
    start = time.perf_counter()
    NotebookClient(nb, kernel_name="rectified", timeout=CELL_TIMEOUT,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    _record_time(path.name, time.perf_counter() - start)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors


def _record_time(name: str, seconds: float) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    times_file = ARTIFACTS / "notebook_times.json"
    times = json.loads(times_file.read_text()) if times_file.exists() else {}
    times[name] = round(seconds, 1)
    times_file.write_text(json.dumps(times, indent=1, sort_keys=True))
