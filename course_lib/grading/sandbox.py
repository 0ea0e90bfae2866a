"""Run one submission's notebook in a bubblewrap sandbox with caps, and return plain results.

Inside: no network (own empty network namespace with its own loopback, so the kernel and its client, both
inside, still talk), its own process and IPC namespaces, a read-only view of the machine with the course
folder hidden except course_lib/ and the environment, an empty writable /tmp as HOME, and one folder
(/tmp/submission) holding only this notebook. The executor runs as an unprivileged user (one uid per worker),
with caps on address space, processes (a fork bomb stops at the cap) and wall time (the whole sandbox is
killed). Nothing here trusts what runs inside: the caller reads back files of bounded size.
"""

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from course_lib.paths import course_root

SANDBOX_DIR = "/tmp/submission"  # inside the sandbox's own empty /tmp
SANDBOX_CACHE = "/tmp/rectified-cache"  # the grader's data-set cache, read-only: MNIST-1D is not made again
BASE_UID = 61000
MAX_READ_BYTES = 50 * 2**20
STATUS_PREFIX = "executor-status: "  # the executor's last line: STATUS_PREFIX + "ok" or "timeout: ..."


@dataclass(frozen=True)
class Limits:
    """Caps for one submission: wall seconds, address space (MB), processes+threads, output per cell (bytes)."""

    wall_s: float = 120.0
    memory_mb: int = 4000
    processes: int = 128
    cell_output: int = 100_000
    cell_timeout_s: float = 60.0


@dataclass(frozen=True)
class SandboxResult:
    """The executed notebook (None if none came back), how the run ended, and its wall time."""

    notebook: nbformat.NotebookNode | None
    status: str
    seconds: float
    workdir: Path


def missing_requirement() -> str | None:
    """Why this machine cannot run the sandbox, or None when it can."""
    tools = [t for t in ("bwrap", "setpriv", "prlimit", "pkill") if shutil.which(t) is None]
    if tools:
        return f"grading runs submissions in bubblewrap; missing: {', '.join(tools)} (apt-get install bubblewrap)"
    if os.geteuid() != 0:
        return "course grade must run as root (e.g. sudo): each sandbox is dropped to its own unprivileged user"
    return None


def bwrap_available() -> bool:
    return missing_requirement() is None


CODE_ROOT = Path(__file__).resolve().parents[2]  # the checkout holding course_lib/ (often the course root)


def _hidden(extra: tuple[Path, ...]) -> list[Path]:
    """Folders replaced by empty ones: the course and the code checkout (solutions/, .git, the gradebook),
    /root, /tmp, and whatever the caller adds (the submissions folder)."""
    folders = {Path("/root"), Path("/tmp"), course_root(), CODE_ROOT, *(p.resolve() for p in extra)}
    return sorted((f for f in folders if f.is_dir()), key=lambda p: len(p.parts))


def _read_only_binds(extra_hidden: tuple[Path, ...] = ()) -> list[str]:
    """Hide private folders, then show back course_lib, the env and the base Python, read-only."""
    hidden = _hidden(extra_hidden)
    args = ["--ro-bind", "/", "/"]
    for folder in hidden:
        args += ["--perms", "1777" if folder == Path("/tmp") else "0755", "--tmpfs", str(folder)]
    shown = [CODE_ROOT / "course_lib", CODE_ROOT / "pyproject.toml", Path(sys.prefix), Path(sys.base_prefix).resolve()]
    for path in shown:
        args += _parents(path, hidden) + ["--ro-bind", str(path), str(path)]
    return args


def _parents(path: Path, hidden: list[Path]) -> list[str]:
    """--dir (world-readable) for each parent of `path` that lies strictly inside a hidden folder."""
    inside = [p for p in reversed(path.parents) if any(h in p.parents for h in hidden)]
    return [arg for p in inside for arg in ("--perms", "0755", "--dir", str(p))]


def command(workdir: Path, limits: Limits, worker: int = 0, hide: tuple[Path, ...] = ()) -> list[str]:
    """The full command line: bwrap, then prlimit and setpriv, then the executor."""
    uid = str(BASE_UID + worker)
    return [
        "bwrap", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        "--die-with-parent", "--new-session", *_read_only_binds(hide),
        "--bind", str(workdir), SANDBOX_DIR, *_data_cache(), "--proc", "/proc", "--dev", "/dev", "--chdir", SANDBOX_DIR,
        "--clearenv", "--setenv", "HOME", "/tmp", "--setenv", "PATH", f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "--setenv", "OMP_NUM_THREADS", "1", "--setenv", "MKL_NUM_THREADS", "1", "--setenv", "MPLBACKEND", "Agg",
        "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--setenv", "RECTIFIED_PROBE_LOG", f"{SANDBOX_DIR}/probes.jsonl",
        "--setenv", "RECTIFIED_CACHE", SANDBOX_CACHE,
        "--", "prlimit", f"--nproc={limits.processes}", f"--as={limits.memory_mb * 2**20}", "--core=0",
        "--", "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
        "--bounding-set=-all", "--",
        sys.executable, "-m", "course_lib.grading.executor", f"{SANDBOX_DIR}/in.ipynb", f"{SANDBOX_DIR}/out.ipynb",
        f"--cell-timeout={limits.cell_timeout_s}", f"--max-cell-output={limits.cell_output}",
    ]


def _data_cache() -> list[str]:
    """Show the grader's data-set cache read-only (the judges fill it while the reference run is judged), so
    each sandbox reads MNIST-1D instead of generating it again; a sandbox cannot write into it."""
    from course_lib.data import cache_dir  # here, not at the top: the executor imports this module

    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return ["--ro-bind", str(folder), SANDBOX_CACHE]


def _reap(uid: int, seconds: float = 10.0) -> None:
    """Kill every process left with the worker's uid and wait until none is left (the pid namespace dies
    with bwrap, but its teardown is not instant)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if subprocess.run(["pkill", "-KILL", "-U", str(uid)], capture_output=True).returncode == 1:
            return  # pkill: no process matched
        time.sleep(0.05)


def _status(returncode: int, stdout_tail: str) -> str:
    """The executor's reported status, or "crashed: ..." when it exited early or failed."""
    reported = [line[len(STATUS_PREFIX):] for line in stdout_tail.splitlines() if line.startswith(STATUS_PREFIX)]
    if returncode != 0:
        return f"crashed: the notebook's process exited with {returncode}"
    if not reported:
        return "crashed: the notebook's process ended before its last cell"
    return reported[-1]


def _read_back(path: Path) -> nbformat.NotebookNode | None:
    """The executed notebook if it came back as a readable file of bounded size."""
    if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_READ_BYTES:
        return None
    try:
        return nbformat.read(path, as_version=4)
    except Exception:  # noqa: BLE001 - whatever the sandbox left, an unreadable file means no result
        return None


def run(notebook: nbformat.NotebookNode, workdir: Path, limits: Limits = Limits(), worker: int = 0,
        hide: tuple[Path, ...] = ()) -> SandboxResult:
    """Execute `notebook` in a fresh sandbox whose only writable folder is `workdir` (created, emptied);
    `hide` adds folders the sandbox must not see (e.g. the other students' submissions)."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    nbformat.write(notebook, workdir / "in.ipynb")
    os.chmod(workdir, 0o777)
    start = time.monotonic()
    try:
        done = subprocess.run(command(workdir, limits, worker, hide), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              stdin=subprocess.DEVNULL, timeout=limits.wall_s, start_new_session=True)
        status = _status(done.returncode, done.stdout[-2000:].decode(errors="replace"))
    except subprocess.TimeoutExpired:
        status = f"timeout: over the {limits.wall_s:g} s wall-time cap"
    _reap(BASE_UID + worker)
    seconds = time.monotonic() - start
    return SandboxResult(_read_back(workdir / "out.ipynb"), status, seconds, workdir)
