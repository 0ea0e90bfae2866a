"""`make lab` for real: the Rectified kernel is registered, starts, runs torch on one thread, and
`course lab` serves JupyterLab with that kernel available."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

KERNEL = "rectified"


def _kernelspecs() -> dict:
    jupyter = Path(sys.executable).parent / "jupyter"
    out = subprocess.run([str(jupyter), "kernelspec", "list", "--json"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["kernelspecs"]


def test_rectified_kernel_is_registered_with_one_thread_env():
    spec = _kernelspecs()[KERNEL]["spec"]
    assert spec["display_name"] == "Rectified (Python 3)"
    assert spec["env"] == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    assert Path(spec["argv"][0]).resolve() == Path(sys.executable).resolve()


def test_a_notebook_executes_on_the_rectified_kernel_with_one_torch_thread(monkeypatch):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import os, torch, course_lib\n"
        "print(os.environ['OMP_NUM_THREADS'], os.environ['MKL_NUM_THREADS'], torch.get_num_threads())")]
    # The kernel inherits this process's environment; without these, only the kernelspec can set them.
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    NotebookClient(nb, kernel_name=KERNEL, timeout=120).execute()
    assert nb.cells[0].outputs[0]["text"].split() == ["1", "1", "1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str, method: str = "GET", body: bytes | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read() or b"{}")


@pytest.mark.slow
def test_course_lab_serves_jupyterlab_with_the_rectified_kernel(tmp_path):
    port, token = _free_port(), "rectified-test-token"
    course = Path(sys.executable).parent / "course"
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path), HOME=str(tmp_path))
    server = subprocess.Popen([str(course), "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
                               f"--IdentityProvider.token={token}"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(base + "/api/status", token, server)
        _, specs = _get(base + "/api/kernelspecs", token)
        assert KERNEL in specs["kernelspecs"]
        _, first = _get(base + "/api/contents/notebooks/00_welcome.ipynb?content=0", token)
        assert first["type"] == "notebook"
        status, kernel = _get(base + "/api/kernels", token, "POST", json.dumps({"name": KERNEL}).encode())
        assert status == 201 and kernel["name"] == KERNEL
        _get(base + f"/api/kernels/{kernel['id']}", token, "DELETE")
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_for(url: str, token: str, server: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"jupyter lab exited early:\n{server.stderr.read()}")
        try:
            _get(url, token)
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"jupyter lab did not answer on {url} within {seconds} s")
