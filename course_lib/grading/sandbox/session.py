"""Drive one notebook through a sandbox, one cell at a time, and keep only what the host observed.

The host sends each code cell and waits for its `done`, at most the cell timeout plus a grace period; while a
cell runs it answers the checks that ask for inputs (through `serve`, which says what this cell may be
given: see course_lib.grading.grade) and keeps the data each check hands back. Everything read from the
sandbox is capped as it is read. The status is what the host saw: a cell past its timeout, no answer
within the grace period (the sandbox is killed), the wall-time cap, a memory cap, the process ending early,
a broken channel. Nothing that runs after the last cell (atexit hooks, threads) is read.
"""

import json
import os
import queue
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.data import cache_dir
from course_lib.grading import plain, protocol
from course_lib.grading.sandbox import library, slots
from course_lib.grading.sandbox.bubblewrap import Limits, Sandbox

GRACE_S = 3.0  # how long a cell may ignore its interrupt before the sandbox is killed
MAX_RUN_BYTES = 64 * 2**20  # everything read from one sandbox (bounds the host's decoding work)
EOF = object()


@dataclass
class Asked:
    """One check a cell asked for: the host's answer (`served`: what `serve` returned, kept on this side; or
    `refused`, why not) and what the probe handed back (`data`, decoded plain data) or why nothing usable
    came back (`problem`)."""

    check: str
    served: object = None
    refused: str | None = None
    data: object = None
    answered: bool = False
    problem: str | None = None


@dataclass
class CellRun:
    """What the host saw of one code cell."""

    index: int
    done: bool = False
    ok: bool = False
    seconds: float = 0.0
    timed_out: bool = False
    outputs: list = field(default_factory=list)
    execution_count: int | None = None
    asks: list[Asked] = field(default_factory=list)
    cpu_seconds: float = 0.0  # the whole run's CPU seconds when the cell finished


@dataclass
class SessionResult:
    cells: dict[int, CellRun]
    status: str
    cpu_seconds: float
    peak_memory_mb: float
    seconds: float
    references: tuple[str, ...] = ()


# (cell index, position of the check in the cell, check name, the params the ask claims) -> what it is served
# (an object whose `given` is sent); raise Refused to give it nothing.
Serve = Callable[[int, int, str, dict], object]


class Refused(Exception):
    """`serve` refuses a check its inputs; the message is what the student sees."""


class Violation(Exception):
    """The sandbox broke the protocol (a malformed, oversized or out-of-place message)."""


class _Reader(threading.Thread):
    """Reads the sandbox's messages into a queue, each line capped at MAX_LINE_BYTES; EOF (or a violation)
    ends it."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream, self.messages, self.total = stream, queue.Queue(), 0

    def run(self) -> None:
        try:
            while True:
                line = self.stream.readline(protocol.MAX_LINE_BYTES + 1)
                if not line:
                    break
                self.total += len(line)
                if len(line) > protocol.MAX_LINE_BYTES or not line.endswith(b"\n"):
                    raise Violation("a message over the size limit")
                if self.total > MAX_RUN_BYTES:
                    raise Violation(f"more than {MAX_RUN_BYTES // 2**20} MB sent to the grader")
                self.messages.put(protocol.decode(line))
        except (Violation, protocol.ProtocolError) as err:
            self.messages.put(Violation(str(err)))
        except (OSError, ValueError):
            pass
        self.messages.put(EOF)


def _write(fd: int, data: bytes, deadline: float) -> None:
    """Write all of `data` to a non-blocking pipe by `deadline` (a sandbox that stops reading cannot hang the
    host); TimeoutError otherwise, BrokenPipeError when it is gone."""
    view = memoryview(data)
    while view:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        _, ready, _ = select.select([], [fd], [], remaining)
        if ready:
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                continue


def _cap_outputs(outputs, limit: int) -> list[dict]:
    """The outputs that are well-formed nbformat outputs, with string fields only, at most `limit` characters
    in all (then a note): what the host keeps of what the sandbox printed."""
    kept, size = [], 0
    for out in outputs if isinstance(outputs, list) else []:
        clean = _clean_output(out)
        if clean is None:
            continue
        size += len(json.dumps(clean))
        if size > limit:
            kept.append({"output_type": "stream", "name": "stderr",
                         "text": f"[output truncated by the grader: {limit} characters per cell]\n"})
            break
        kept.append(clean)
    return kept


def _strings(value) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def _clean_output(out) -> dict | None:
    """One output as nbformat 4 expects it, or None."""
    if not isinstance(out, dict):
        return None
    kind = out.get("output_type")
    if kind == "stream" and out.get("name") in ("stdout", "stderr") and isinstance(out.get("text"), str):
        return {"output_type": "stream", "name": out["name"], "text": out["text"]}
    if kind == "error" and isinstance(out.get("ename"), str) and isinstance(out.get("evalue"), str) \
            and _strings(out.get("traceback")):
        return {"output_type": "error", "ename": out["ename"], "evalue": out["evalue"],
                "traceback": list(out["traceback"])}
    if kind in ("display_data", "execute_result") and isinstance(out.get("data"), dict):
        data = {k: v for k, v in out["data"].items()
                if isinstance(k, str) and "/" in k and (_strings(v) or k.endswith("json"))}
        clean = {"output_type": kind, "data": data, "metadata": {}}
        if kind == "execute_result":
            count = out.get("execution_count")
            clean["execution_count"] = count if isinstance(count, int) and not isinstance(count, bool) else None
        return clean
    return None


class Session:
    """Runs the code cells of one notebook in `sandbox`, answering checks with `serve`."""

    def __init__(self, sandbox: Sandbox, serve: Serve):
        self.sandbox, self.serve, self.limits = sandbox, serve, sandbox.limits
        self.reader = _Reader(sandbox.process.stdout)
        self.reader.start()
        self.fd = sandbox.process.stdin.fileno()
        os.set_blocking(self.fd, False)
        self.references: list[str] = []

    def _send(self, message: dict, deadline: float) -> None:
        _write(self.fd, protocol.encode(message), deadline)

    def _next(self, deadline: float):
        """The next message, or TimeoutError at `deadline`."""
        try:
            message = self.reader.messages.get(timeout=max(deadline - time.monotonic(), 0))
        except queue.Empty:
            raise TimeoutError from None
        if isinstance(message, Violation):
            raise message
        return message

    def end(self, deadline: float) -> None:
        """Tell the executor there are no more cells."""
        self._send({"op": protocol.END}, deadline)

    def start(self, deadline: float) -> None:
        """Wait for the executor's `ready`."""
        while True:
            message = self._next(deadline)
            if message is EOF:
                raise EOFError
            if message.get("op") == protocol.READY:
                return

    def run_cell(self, index: int, source: str, wall_deadline: float) -> CellRun:
        """Send one cell and handle messages until its `done`; TimeoutError when it ignores its timeout,
        EOFError when the process ended, Violation when the channel broke."""
        run, start = CellRun(index), time.monotonic()
        deadline = min(start + self.limits.cell_timeout_s + GRACE_S, wall_deadline)
        self._send({"op": protocol.CELL, "index": index, "source": source}, deadline)
        for _ in range(protocol.MAX_MESSAGES_PER_CELL):
            message = self._next(deadline)
            if message is EOF:
                raise EOFError
            op = message.get("op")
            if op == protocol.ASK:
                self._answer(run, str(message.get("check")), message.get("params"), deadline)
            elif op == protocol.DATA:
                _receive_data(run, message)
            elif op == protocol.REFERENCE:
                self.references.append(str(message.get("name"))[:200])
            elif op == protocol.DONE:
                if message.get("index") != index:
                    raise Violation("a cell reported as done that was not running")
                run.done, run.ok = True, message.get("ok") is True
                run.outputs = _cap_outputs(message.get("outputs"), self.limits.cell_output)
                count = message.get("execution_count")
                run.execution_count = count if isinstance(count, int) and not isinstance(count, bool) else None
                run.seconds = time.monotonic() - start
                run.timed_out = run.seconds >= self.limits.cell_timeout_s
                return run
        raise Violation(f"more than {protocol.MAX_MESSAGES_PER_CELL} messages in one cell")

    def _answer(self, run: CellRun, check: str, params, deadline: float) -> None:
        asked = Asked(check[:200])
        run.asks.append(asked)
        try:
            asked.served = self.serve(run.index, len(run.asks) - 1, asked.check, _params(params))
            reply = {"op": protocol.GIVEN, "ok": True, "given": plain.encode(asked.served.given)}
        except Refused as err:
            asked.refused = str(err)
            reply = {"op": protocol.GIVEN, "ok": False, "error": asked.refused}
        self._send(reply, deadline)


def _params(encoded) -> dict:
    """An ask's claimed params as plain data ({} when they are not a str-keyed dict of plain values)."""
    try:
        params = plain.decode(encoded)
    except (plain.PlainDataError, RecursionError, OverflowError):
        return {}
    return params if isinstance(params, dict) else {}


def _receive_data(run: CellRun, message: dict) -> None:
    """Attach a check's data to the check this cell asked for last (once); anything else is a problem."""
    asked = run.asks[-1] if run.asks else None
    if asked is None or asked.check != message.get("check") or asked.answered or asked.served is None:
        if asked is not None:
            asked.problem = "the check handed back data twice or out of turn"
        return
    asked.answered = True
    if "error" in message:
        asked.problem = str(message["error"])[:500]
        return
    try:
        asked.data = plain.decode(message.get("data"))
    except (plain.PlainDataError, RecursionError, OverflowError) as err:
        asked.problem = f"the check's data could not be read: {str(err)[:200]}"


def _drive(session: Session, cells: list[tuple[int, str]], runs: dict, limits: Limits, wall_deadline: float) -> str:
    """Run every cell through `session`, filling `runs`; the status the host observed."""
    status = protocol.GRADED
    try:
        session.start(wall_deadline)
        for index, source in cells:
            run = session.run_cell(index, source, wall_deadline)
            session.sandbox.monitor.sample()
            run.cpu_seconds = session.sandbox.monitor.cpu_seconds
            runs[index] = run
            if run.timed_out and status == protocol.GRADED:
                status = f"{protocol.TIMEOUT}: cell {index} ran past its {limits.cell_timeout_s:g} s timeout"
        session.end(min(time.monotonic() + 1, wall_deadline))
    except TimeoutError:
        if time.monotonic() >= wall_deadline:
            return f"{protocol.TIMEOUT}: over the {limits.wall_s:g} s wall-time cap"
        return (f"{protocol.TIMEOUT}: cell {_current(cells, runs)} ran past its {limits.cell_timeout_s:g} s "
                "timeout and ignored the interrupt")
    except (EOFError, BrokenPipeError):
        return f"{protocol.CRASHED}: the notebook's process ended before cell {_current(cells, runs)} finished"
    except Violation as err:
        return f"{protocol.CRASHED}: the submission broke the grader's channel ({err})"
    return status


def run_notebook(cells: list[tuple[int, str]], serve: Serve, limits: Limits, worker: int, library: Path,
                 package_dir: Path, cache: Path) -> SessionResult:
    """Run `cells` ((index, source) of each code cell, in order) in a fresh sandbox; what the host saw. The
    sandbox is gone when this returns, also when `serve` raised (that exception is passed on)."""
    start = time.monotonic()
    sandbox = Sandbox(limits, worker, library, package_dir, cache)
    runs, status = {}, None
    try:
        session = Session(sandbox, serve)
        status = _drive(session, cells, runs, limits, start + limits.wall_s)
    finally:
        cpu = sandbox.close(wait_s=1.0 if status == protocol.GRADED else 0.0)
    if sandbox.monitor.over_memory:
        status = f"{protocol.CRASHED}: over the {limits.memory_mb} MB memory cap"
    return SessionResult(runs, status, round(cpu, 2), round(sandbox.monitor.peak_bytes / 2**20, 1),
                         round(time.monotonic() - start, 2), tuple(dict.fromkeys(session.references)))


def run_in_sandbox(cells: list[tuple[int, str]], serve: Serve, limits: Limits,
                   written: dict[str, list[str]]) -> SessionResult:
    """`run_notebook` in a sandbox slot of this machine, with the sandbox library that lacks `written` (module ->
    the names the assignment asks students to write) and the grader's data cache, read-only."""
    built = library.build(written, library.library_dir())
    data_cache = cache_dir()
    data_cache.mkdir(parents=True, exist_ok=True)
    with slots.claim() as worker:
        return run_notebook(cells, serve, limits, worker, built, library.PACKAGE_DIR, data_cache)


def _current(cells, runs) -> int | str:
    """The index of the first cell without a result (the one that was running)."""
    return next((index for index, _ in cells if index not in runs), "?")
