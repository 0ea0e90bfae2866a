"""Run a notebook's cells as the grading host sends them: `python -m course_lib.grading.kernel.executor`.

Inside the sandbox. Standard input and output are the protocol's channel to the host (course_lib.grading.
protocol); they are moved to private descriptors first, and fds 0-2 point at /dev/null, so nothing a library
writes below Python can corrupt a message. Each cell runs on an in-process IPython shell (`shell`), the engine
of a Jupyter Python kernel without the kernel process. A cell that runs past --cell-timeout gets
KeyboardInterrupt, as a kernel interrupt would give it; its outputs (capped per cell) go back with `done`.

Nothing here is trusted by the host: cells run in this process and may rewrite all of it. The host decides
status, timeouts and what is kept from the timings and caps it observes itself.
"""

import argparse
import os
import signal
import sys
import threading
import time

from course_lib.grading import protocol
from course_lib.grading.kernel import channel
from course_lib.grading.kernel.shell import Capture, CapturedStream, CellOutput, new_shell


class Link:
    """The executor's end of the protocol: one JSON message per line on two private file objects."""

    def __init__(self, incoming, outgoing):
        self.incoming, self.outgoing = incoming, outgoing

    def send(self, message: dict) -> None:
        self.outgoing.write(protocol.encode(message))
        self.outgoing.flush()

    def receive(self) -> dict:
        line = self.incoming.readline(protocol.MAX_LINE_BYTES)
        if not line:
            raise EOFError("the grading host closed the channel")
        return protocol.decode(line)


def _private_channel() -> Link:
    """Move stdin/stdout to private descriptors and point fds 0, 1 and 2 at /dev/null."""
    incoming, outgoing = os.fdopen(os.dup(0), "rb", buffering=0), os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    return Link(incoming, outgoing)


class Watchdog(threading.Thread):
    """Interrupts the main thread once when a cell passes its deadline."""

    def __init__(self):
        super().__init__(daemon=True)
        self.deadline, self.running = None, False

    def arm(self, seconds: float) -> None:
        self.deadline, self.running = time.monotonic() + seconds, True

    def disarm(self) -> None:
        self.deadline, self.running = None, False

    def run(self) -> None:
        while True:
            time.sleep(0.05)
            deadline = self.deadline
            if deadline is not None and time.monotonic() >= deadline:
                self.deadline = None
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    def on_sigint(self, signum, frame) -> None:
        """SIGINT handler: KeyboardInterrupt while a cell runs, nothing between cells."""
        if self.running:
            raise KeyboardInterrupt


def run_cell(shell, source: str, watchdog: Watchdog, timeout: float, max_output: int) -> tuple[bool, list]:
    """Run one cell; (whether it ran without an error, its outputs)."""
    Capture.current = CellOutput(max_output)
    watchdog.arm(timeout)
    ok = False
    try:
        ok = bool(shell.run_cell(source, store_history=True).success)
    except KeyboardInterrupt:  # the interrupt landed just after the cell had finished
        pass
    finally:
        watchdog.disarm()
    return ok, Capture.current.outputs


def serve(link: Link, cell_timeout: float, max_output: int) -> None:
    """Run each cell the host sends until it says `end` (or the channel closes)."""
    shell, pid, watchdog = new_shell(), os.getpid(), Watchdog()
    sys.stdout, sys.stderr = CapturedStream("stdout"), CapturedStream("stderr")
    watchdog.start()
    channel.connect(link)
    link.send({"op": protocol.READY})
    while True:
        command = link.receive()
        if command.get("op") != protocol.CELL:
            return
        signal.signal(signal.SIGINT, watchdog.on_sigint)
        ok, outputs = run_cell(shell, str(command.get("source", "")), watchdog, cell_timeout, max_output)
        if os.getpid() != pid:
            os._exit(0)  # a process the cell forked came back here: only the executor answers the host
        done = {"op": protocol.DONE, "index": command.get("index"), "ok": ok, "outputs": outputs,
                "execution_count": shell.execution_count - 1}
        try:
            link.send(done)
        except (TypeError, ValueError):  # an output JSON cannot carry (NaN in a JSON display): drop them all
            link.send({**done, "outputs": []})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell-timeout", type=float, default=60)
    parser.add_argument("--max-cell-output", type=int, default=100_000)
    args = parser.parse_args(argv)
    link = _private_channel()
    try:
        serve(link, args.cell_timeout, args.max_cell_output)
    except EOFError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
