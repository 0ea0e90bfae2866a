"""The bubblewrap sandbox one submission's notebook runs in, and what the host measures of it from outside.

Inside: no network, its own process, IPC and UTS namespaces, and a file system built from an allow-list,
read-only: the system folders (/usr, /etc, ...), the Python environment, the data-set cache, and at the path
where course_lib lives the *sandbox library* (course_lib.grading.sandbox.library: the teaching modules and the kernel
side of grading, without the host side and without the names the assignment asks students to write). The
course folder, solutions, gradebook, other students and the rest of the machine are not there at all. The
only writable places are /tmp and /dev/shm, tmpfs folders of `Limits.tmpfs_mb` each, whose contents count
toward the memory cap; files are capped at that size too. The root and /dev that bubblewrap builds are
remounted read-only (without root the sandbox's user owns them, and they are not size-capped).

Two modes, chosen by who grades. As root, the executor is dropped to an unprivileged user of its own (one uid
per worker slot), whose processes the cap counts and the clean-up kills. Without root, bubblewrap gives each
sandbox a user namespace of its own (nested ones are refused): the process cap then counts the processes of
that namespace only, and the clean-up kills what is left in the sandbox's pid namespace. Either way there are
caps on address space per process, processes (a fork bomb stops at the cap) and file size. From outside, a
`Monitor` thread reads the whole process tree's CPU time and resident memory from /proc: the CPU seconds of a
submission (every cell, thread and child) are measured here, where no patched clock reaches, and a tree over
the memory cap is killed. The wall-time cap kills the sandbox too. Nothing here trusts what runs inside.
"""

import functools
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
WRITABLE = ("tmp", "dev/shm")  # tmpfs folders of Limits.tmpfs_mb each; what they hold counts as memory
SYSTEM_FOLDERS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
POLL_S = 0.2


@dataclass(frozen=True)
class Limits:
    """Caps for one submission: wall seconds in all, address space per process and memory of the whole tree
    (MB: resident memory plus what /tmp holds), processes+threads, output kept per cell (characters), seconds
    per cell (`course grade` and `course check` give nbgrader_config.py's Execute.timeout, as plain nbgrader does),
    and the size of each writable tmpfs, /tmp and /dev/shm (MB, also the largest file)."""

    wall_s: float = 120.0
    memory_mb: int = 4000
    processes: int = 128
    cell_output: int = 100_000
    cell_timeout_s: float = 60.0
    tmpfs_mb: int = 256


def unprivileged() -> bool:
    """True when grading runs without root: each sandbox then gets a user namespace of its own."""
    return os.geteuid() != 0


@functools.lru_cache(maxsize=1)
def _user_namespaces_allowed() -> bool:
    """Whether bubblewrap can make a user namespace here without privileges (some machines switch them off)."""
    trial = ["bwrap", "--unshare-user", "--unshare-pid", "--ro-bind", "/", "/", "--proc", "/proc", "true"]
    try:
        return subprocess.run(trial, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def missing_requirement() -> str | None:
    """Why this machine cannot run the sandbox (one line saying what to install or enable), or None."""
    needed = ("bwrap", "prlimit") if unprivileged() else ("bwrap", "setpriv", "prlimit", "pgrep")
    tools = [t for t in needed if shutil.which(t) is None]
    if tools:
        return f"grading runs submissions in bubblewrap; missing: {', '.join(tools)} (apt-get install bubblewrap)"
    if unprivileged() and not _user_namespaces_allowed():
        return ("grading without root needs unprivileged user namespaces, which this machine refuses: enable them "
                "(sysctl -w kernel.unprivileged_userns_clone=1 and user.max_user_namespaces=10000), or grade as root")
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


def _identity(worker: int) -> tuple[list[str], list[str]]:
    """(bwrap options, the command that drops privileges) for this mode: without root, a user namespace of the
    sandbox's own (in which no further one may be made); as root, the worker slot's own uid."""
    if unprivileged():
        return ["--unshare-user", "--disable-userns"], []
    uid = str(BASE_UID + worker)
    return [], ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
                "--bounding-set=-all", "--"]


def command(limits: Limits, worker: int, library: Path, package_dir: Path, cache: Path) -> list[str]:
    """The full command line: bwrap (allow-listed file system), then prlimit (and setpriv as root), then the
    executor. `library` (the sandbox library) is shown where the package lives, `package_dir`."""
    namespace, drop = _identity(worker)
    tmpfs = str(limits.tmpfs_mb * 2**20)
    binds = _ro_binds([(f, str(f)) for f in python_folders()] + [(library, str(package_dir)), (cache, SANDBOX_CACHE)])
    return [
        "bwrap", *namespace, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
        "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--size", tmpfs, "--perms", "1777",
        "--tmpfs", "/tmp", "--perms", "0777", "--dir", SANDBOX_DIR, *_system_binds(), *binds,
        "--proc", "/proc", "--dev", "/dev", "--size", tmpfs, "--perms", "1777", "--tmpfs", "/dev/shm",
        "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", SANDBOX_DIR,
        "--clearenv", "--setenv", "HOME", "/tmp", "--setenv", "PATH", f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "--setenv", "OMP_NUM_THREADS", "1", "--setenv", "MKL_NUM_THREADS", "1", "--setenv", "MPLBACKEND", "Agg",
        "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--setenv", "RECTIFIED_CACHE", SANDBOX_CACHE,
        "--", "prlimit", f"--nproc={limits.processes}", f"--as={limits.memory_mb * 2**20}", "--core=0",
        f"--fsize={tmpfs}", "--", *drop,
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
    """Bytes held in the sandbox's writable tmpfs folders (seen through a sandboxed process's root), 0 when
    unreadable."""
    for pid in pids[1:]:  # pids[0] is bwrap itself, outside the sandbox's mount namespace
        try:
            stats = [os.statvfs(f"/proc/{pid}/root/{folder}") for folder in WRITABLE]
            return sum((s.f_blocks - s.f_bfree) * s.f_frsize for s in stats)
        except OSError:
            continue
    return 0


def _pid_namespace(pid: int) -> str | None:
    """The pid namespace process `pid` lives in (e.g. 'pid:[4026532601]'), None when it is gone or hidden."""
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


class Monitor(threading.Thread):
    """Polls a process tree: the most CPU seconds and memory seen (resident memory plus what its /tmp holds),
    and kills the tree (calling `kill`) when that passes `memory_bytes`. It also notes the sandbox's pid
    namespace, the first one in the tree that is not the host's."""

    def __init__(self, root: int, memory_bytes: int, kill):
        super().__init__(daemon=True)
        self.root, self.memory_bytes, self.kill = root, memory_bytes, kill
        self.cpu_seconds, self.peak_bytes, self.over_memory = 0.0, 0, False
        self.namespace: str | None = None
        self._host_namespace = _pid_namespace(os.getpid())
        self._stop = threading.Event()

    def sample(self) -> None:
        cpu, rss, pids = _tree_usage(self.root)
        used = rss + _tmp_used(pids)
        self.cpu_seconds, self.peak_bytes = max(self.cpu_seconds, cpu), max(self.peak_bytes, used)
        if self.namespace is None:
            inside = (_pid_namespace(pid) for pid in pids[1:])  # pids[0] is bwrap itself, in the host's
            self.namespace = next((ns for ns in inside if ns and ns != self._host_namespace), None)
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

    def leftover(self) -> list[int]:
        """The sandbox's processes still alive: those in its pid namespace (without root) or of its uid."""
        if not unprivileged():
            found = subprocess.run(["pgrep", "-U", str(self.uid)], capture_output=True, text=True).stdout
            return [int(pid) for pid in found.split()]
        if self.monitor.namespace is None:
            return []
        pids = (int(e.name) for e in os.scandir("/proc") if e.name.isdigit())
        return [pid for pid in pids if _pid_namespace(pid) == self.monitor.namespace]

    def kill(self) -> None:
        """Kill bwrap (its pid namespace dies with it) and every process left in the sandbox."""
        for kill, target in [(os.killpg, self.process.pid)] + [(os.kill, pid) for pid in self.leftover()]:
            try:
                kill(target, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close(self, wait_s: float = 2.0) -> float:
        """Wait up to `wait_s` for the sandbox to end by itself, then kill it; the CPU seconds it used."""
        deadline = time.monotonic() + wait_s
        while self.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        self.monitor.sample()
        self.kill()
        self.returncode = self.process.wait()
        self.monitor.stop()
        self._reap()
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except OSError:
                pass
        return self.monitor.cpu_seconds

    def _reap(self, seconds: float = 10.0) -> None:
        """Kill what is left until nothing is (the pid namespace dies with bwrap, but not instantly)."""
        deadline = time.monotonic() + seconds
        while self.leftover() and time.monotonic() < deadline:
            self.kill()
            time.sleep(0.05)
