"""Execute one notebook inside the sandbox: `python -m course_lib.grading.executor IN OUT`.

The cells run in this process on an IPython shell (course_lib.grading.executor_shell): the engine of a
Jupyter Python kernel without the kernel process and its messaging, whose start-up was half of each
submission's time. Like nbgrader it goes on after a cell's error. A cell that runs past its timeout gets
KeyboardInterrupt, as a kernel interrupt would give it; one that ignores that for GRACE_S more seconds ends the
run with status "timeout". Output is capped per cell. The executed notebook is written after every cell,
with the probe log's size after each cell (the offsets a trusted reference run uses to give records to
cells), so a killed run keeps what it executed.

The last line this process prints is its status ("ok" or "timeout: ..."). Cells run in this process, so a
submission could print a false status line or exit early: that changes the status shown, never a score,
which `course grade` decides from the probe log outside the sandbox.
"""

import argparse
import json
import os
import signal
import sys
import threading
import time

import nbformat  # course_lib.grading's __init__ (run first) already skipped jsonschema's slow optional import

from course_lib.grading.executor_shell import Capture, CapturedStream, CellOutput, new_shell
from course_lib.grading.sandbox import STATUS_PREFIX

GRACE_S = 3.0


class Watchdog(threading.Thread):
    """Interrupts the main thread when a cell passes its deadline; calls `give_up` (which must end the
    process) when the cell is still running GRACE_S seconds later."""

    def __init__(self, give_up):
        super().__init__(daemon=True)
        self.give_up, self.deadline, self.interrupted_at = give_up, None, None

    def arm(self, seconds: float) -> None:
        self.interrupted_at, self.deadline = None, time.monotonic() + seconds

    def disarm(self) -> None:
        self.deadline = None

    def run(self) -> None:
        while True:
            time.sleep(0.05)
            deadline, now = self.deadline, time.monotonic()
            if deadline is None or now < deadline:
                continue
            if self.interrupted_at is None:
                self.interrupted_at = now
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            elif now - self.interrupted_at > GRACE_S:
                self.give_up()

    def on_sigint(self, signum, frame) -> None:
        """SIGINT handler: KeyboardInterrupt while a cell runs, nothing between cells."""
        if self.deadline is not None:
            raise KeyboardInterrupt


def _log_size() -> int | None:
    """Bytes in the probe log now (None without one)."""
    path = os.environ.get("RECTIFIED_PROBE_LOG")
    return os.path.getsize(path) if path and os.path.exists(path) else (0 if path else None)


def execute(nb, cell_timeout: float, max_cell_output: int, save=lambda nb, offsets: None,
            give_up=lambda index: os._exit(0)) -> str:
    """Execute `nb`'s code cells in place, calling save(nb, offsets) after every cell (offsets: cell index ->
    probe-log size after it). Returns "ok", or "timeout: ..." naming the first cell that was interrupted; a
    cell that ignores the interrupt calls give_up(index), which must end the process."""
    shell, pid, status = new_shell(), os.getpid(), "ok"
    sys.stdout, sys.stderr = CapturedStream("stdout"), CapturedStream("stderr")
    offsets: dict[int, int | None] = {}
    current = {"index": 0}
    watchdog = Watchdog(lambda: give_up(current["index"]))
    watchdog.start()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        current["index"], Capture.current = index, CellOutput(max_cell_output)
        signal.signal(signal.SIGINT, watchdog.on_sigint)
        watchdog.arm(cell_timeout)
        try:
            shell.run_cell(cell.source, store_history=True)
        except KeyboardInterrupt:  # the interrupt landed just after the cell had finished
            pass
        watchdog.disarm()
        if os.getpid() != pid:
            os._exit(0)  # a process the cell forked came back here: only the executor goes on
        if watchdog.interrupted_at is not None and status == "ok":
            status = f"timeout: cell {index} ran past its {cell_timeout:g} s timeout and was interrupted"
        cell.outputs, cell.execution_count = Capture.current.outputs, shell.execution_count - 1
        offsets[index] = _log_size()
        save(nb, offsets)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook_in")
    parser.add_argument("notebook_out")
    parser.add_argument("--cell-timeout", type=float, default=120)
    parser.add_argument("--max-cell-output", type=int, default=100_000)
    args = parser.parse_args(argv)
    nb = nbformat.read(args.notebook_in, as_version=4)
    status_out = sys.stdout  # cells get their own sys.stdout; this one stays the executor's

    def report(status: str) -> None:
        status_out.write(f"{STATUS_PREFIX}{status}\n")
        status_out.flush()

    def save(notebook, offsets):  # json, not nbformat.write: its validation runs code a cell may have broken
        with open(args.notebook_out, "w") as f:
            json.dump(notebook, f)
        with open(args.notebook_out + ".offsets.json", "w") as f:
            json.dump(offsets, f)

    def give_up(index: int) -> None:
        report(f"timeout: cell {index} ran past its {args.cell_timeout:g} s timeout and ignored the interrupt")
        os._exit(0)

    save(nb, {})
    report(execute(nb, args.cell_timeout, args.max_cell_output, save, give_up))
    return 0


if __name__ == "__main__":
    sys.exit(main())
