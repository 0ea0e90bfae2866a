"""The bubblewrap sandbox one submission's notebook runs in, and what the host measures of it from outside.

Inside: no network, its own process, IPC and UTS namespaces, and a file system built from an allow-list,
read-only: the system folders (/usr, /etc, ...), the Python environment, the data-set cache, and at the path
where course_lib lives the *sandbox library* (course_lib.grading.library: the teaching modules and the kernel
side of grading, without the host side and without the names the assignment asks students to write). The
course folder, solutions, gradebook, other students and the rest of the machine are not there at all. The
only writable place is /tmp, a tmpfs of `Limits.tmpfs_mb`; files are capped at that size too.

The executor runs as an unprivileged user (one uid per worker slot) under caps on address space per process,
processes (a fork bomb stops at the cap) and file size. From outside, a `Monitor` thread reads the whole
process tree's CPU time and resident memory from /proc: the CPU seconds of a submission (every cell,
thread and child) are measured here, where no patched clock reaches, and a tree over the memory cap is
killed. The wall-time cap kills the sandbox too. Nothing here trusts what runs inside.
"""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SANDBOX_DIR = "/tmp/submission"  # the working folder, inside the sandbox's tmpfs
SANDBOX_CACHE = "/run/rectified-cache"  # the grader's data-set cache, read-only: MNIST-1D is not made again
BASE_UID = 61000
SYSTEM_FOLDERS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
POLL_S = 0.2


@dataclass(frozen=True)
class Limits:
    """Caps for one submission: wall seconds in all, address space per process and memory of the whole tree
    (MB: resident memory plus what /tmp holds), processes+threads, output kept per cell (characters), seconds
    per cell, and the size of the writable /tmp (MB, also the largest file)."""

    wall_s: float = 120.0
    memory_mb: int = 4000
    processes: int = 128
    cell_output: int = 100_000
    cell_timeout_s: float = 60.0
    tmpfs_mb: int = 256


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


def _system_binds() -> list[str]:
    """The system folders, read-only; those that are symlinks (merged /usr) as the same symlinks."""
    args = []
    for folder in SYSTEM_FOLDERS:
        if os.path.islink(folder):
            args += ["--symlink", os.readlink(folder), folder]
        elif os.path.isdir(folder):
            args += ["--ro-bind", folder, folder]
    return args


def python_folders() -> list[Path]:
    """The Python environment and its base installation (the venv and, e.g., pyenv's or the system's)."""
    folders = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    return sorted(f for f in folders if not any(str(f).startswith(s + "/") for s in SYSTEM_FOLDERS))


def _ro_binds(pairs: list[tuple[Path, str]]) -> list[str]:
    """Read-only binds of (source, destination); the folders above each destination are made first, readable
    by the sandbox's user (bwrap would make them root-only)."""
    made, args = {Path("/tmp")}, []  # the tmpfs at /tmp comes first, so a checkout under /tmp still shows
    for source, dest in pairs:
        for parent in reversed(Path(dest).parents):
            if str(parent) != "/" and parent not in made:
                made.add(parent)
                args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", str(source), dest]
    return args


def command(limits: Limits, worker: int, library: Path, package_dir: Path, cache: Path) -> list[str]:
    """The full command line: bwrap (allow-listed file system), then prlimit and setpriv, then the executor.
    `library` (the sandbox library) is shown where the package lives, `package_dir`."""
    uid = str(BASE_UID + worker)
    tmpfs = str(limits.tmpfs_mb * 2**20)
    binds = _ro_binds([(f, str(f)) for f in python_folders()] + [(library, str(package_dir)), (cache, SANDBOX_CACHE)])
    return [
        "bwrap", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        "--die-with-parent", "--new-session", "--size", tmpfs, "--perms", "1777", "--tmpfs", "/tmp",
        "--perms", "0777", "--dir", SANDBOX_DIR, *_system_binds(), *binds,
        "--proc", "/proc", "--dev", "/dev", "--chdir", SANDBOX_DIR,
        "--clearenv", "--setenv", "HOME", "/tmp", "--setenv", "PATH", f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "--setenv", "OMP_NUM_THREADS", "1", "--setenv", "MKL_NUM_THREADS", "1", "--setenv", "MPLBACKEND", "Agg",
        "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--setenv", "RECTIFIED_CACHE", SANDBOX_CACHE,
        "--", "prlimit", f"--nproc={limits.processes}", f"--as={limits.memory_mb * 2**20}", "--core=0",
        f"--fsize={tmpfs}",
        "--", "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
        "--bounding-set=-all", "--",
        sys.executable, "-m", "course_lib.grading.kernel.executor", f"--cell-timeout={limits.cell_timeout_s}",
        f"--max-cell-output={limits.cell_output}",
    ]


def _tree_usage(root: int) -> tuple[float, int, list[int]]:
    """(CPU seconds, resident bytes, pids) of process `root` and all its descendants, from /proc: each
    process's own time plus that of the children it reaped; zombies still count their own."""
    ticks, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    stats = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        stats[int(entry.name)] = (int(fields[1]), sum(int(v) for v in fields[11:15]), int(fields[21]))
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    todo, cpu, rss, pids = [root], 0, 0, []
    while todo:
        pid = todo.pop()
        if pid in stats:
            cpu, rss = cpu + stats[pid][1], rss + stats[pid][2]
            pids.append(pid)
        todo += children.get(pid, [])
    return cpu / ticks, rss * page, pids


def _tmp_used(pids: list[int]) -> int:
    """Bytes used in the sandbox's /tmp (seen through a sandboxed process's root), 0 when unreadable."""
    for pid in pids[1:]:  # pids[0] is bwrap itself, outside the sandbox's mount namespace
        try:
            stat = os.statvfs(f"/proc/{pid}/root/tmp")
            return (stat.f_blocks - stat.f_bfree) * stat.f_frsize
        except OSError:
            continue
    return 0


class Monitor(threading.Thread):
    """Polls a process tree: the most CPU seconds and memory seen (resident memory plus what its /tmp holds),
    and kills the tree (calling `kill`) when that passes `memory_bytes`."""

    def __init__(self, root: int, memory_bytes: int, kill):
        super().__init__(daemon=True)
        self.root, self.memory_bytes, self.kill = root, memory_bytes, kill
        self.cpu_seconds, self.peak_bytes, self.over_memory = 0.0, 0, False
        self._stop = threading.Event()

    def sample(self) -> None:
        cpu, rss, pids = _tree_usage(self.root)
        used = rss + _tmp_used(pids)
        self.cpu_seconds, self.peak_bytes = max(self.cpu_seconds, cpu), max(self.peak_bytes, used)
        if used > self.memory_bytes and not self.over_memory:
            self.over_memory = True
            self.kill()

    def run(self) -> None:
        while not self._stop.wait(POLL_S):
            self.sample()

    def stop(self) -> None:
        self._stop.set()


class Sandbox:
    """One running sandbox: its pipes (stdin: host -> executor, stdout: executor -> host), its Monitor, and
    `close()`, which kills whatever is left and returns the measured CPU seconds."""

    def __init__(self, limits: Limits, worker: int, library: Path, package_dir: Path, cache: Path):
        self.limits, self.uid = limits, BASE_UID + worker
        self.process = subprocess.Popen(command(limits, worker, library, package_dir, cache), stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
        self.monitor = Monitor(self.process.pid, limits.memory_mb * 2**20, self.kill)
        self.monitor.start()
        self.returncode: int | None = None

    def kill(self) -> None:
        """Kill bwrap (its pid namespace dies with it) and every process left with the sandbox's uid."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        subprocess.run(["pkill", "-KILL", "-U", str(self.uid)], capture_output=True)

    def close(self, wait_s: float = 2.0) -> float:
        """Wait up to `wait_s` for the sandbox to end by itself, then kill it; the CPU seconds it used."""
        deadline = time.monotonic() + wait_s
        while self.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        self.monitor.sample()
        self.kill()
        self.returncode = self.process.wait()
        self.monitor.stop()
        _reap(self.uid)
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except OSError:
                pass
        return self.monitor.cpu_seconds


def _reap(uid: int, seconds: float = 10.0) -> None:
    """Kill every process left with the worker's uid and wait until none is left (the pid namespace dies
    with bwrap, but its teardown is not instant)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if subprocess.run(["pkill", "-KILL", "-U", str(uid)], capture_output=True).returncode == 1:
            return  # pkill: no process matched
        time.sleep(0.05)
