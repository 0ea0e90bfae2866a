"""The IPython shell the executor runs cells on, with every output captured into nbformat outputs.

This is the engine inside every Jupyter Python kernel (IPython's InteractiveShell) without the kernel around
it: no second process and no ZeroMQ messaging, which inside a one-notebook sandbox only cost start-up time.
Streams, rich displays, results and tracebacks of the current cell go to a `CellOutput`, which keeps at most
`limit` characters per cell (then a note, then nothing), so 100 MB of printing costs neither memory nor disk.
Outputs are built as plain nodes, never validated here: validation would run code (jsonschema) that a cell
may have broken, e.g. by replacing builtins.all.
"""

import io
import sys

import nbformat
from IPython.core.displayhook import DisplayHook
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

TRUNCATED = "[output truncated by the grader: {limit} bytes per cell]\n"


def _output(output_type: str, **fields) -> nbformat.NotebookNode:
    return nbformat.NotebookNode(output_type=output_type, **fields)


def _size(output) -> int:
    return len(str(output.get("text", ""))) + len(str(output.get("data", ""))) + len(str(output.get("traceback", "")))


class CellOutput:
    """One cell's outputs in nbformat form, at most `limit` characters in all."""

    def __init__(self, limit: int):
        self.outputs, self.size, self.limit, self.full = [], 0, limit, False

    def stream(self, name: str, text: str) -> None:
        """Append printed text, merged into the previous output when it is the same stream."""
        if self.full or not text:
            return
        room = self.limit - self.size
        kept = text[:max(room, 0)]
        last = self.outputs[-1] if self.outputs else None
        if kept and last is not None and last.output_type == "stream" and last.name == name:
            last.text += kept
        elif kept:
            self.outputs.append(_output("stream", name=name, text=kept))
        self.size += len(kept)
        if len(kept) < len(text):
            self._cut()

    def add(self, output) -> None:
        """Append a display, result or error output (or cut here if it does not fit)."""
        if self.full:
            return
        if self.size + _size(output) > self.limit:
            self._cut()
            return
        self.outputs.append(output)
        self.size += _size(output)

    def clear(self) -> None:
        if not self.full:
            self.outputs, self.size = [], 0

    def _cut(self) -> None:
        self.outputs.append(_output("stream", name="stderr", text=TRUNCATED.format(limit=self.limit)))
        self.full = True


class Capture:
    """Where the running cell's output goes: `current` is replaced before each cell."""

    current = CellOutput(0)


class CapturedStream(io.TextIOBase):
    """sys.stdout / sys.stderr for cells: text goes to the current cell's outputs."""

    def __init__(self, name: str):
        super().__init__()
        self.stream_name = name

    encoding = "utf-8"

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        """The executor's own descriptor (for libraries that write below Python: their text is not kept)."""
        return sys.__stdout__.fileno() if self.stream_name == "stdout" else sys.__stderr__.fileno()

    def write(self, text) -> int:
        text = str(text)
        Capture.current.stream(self.stream_name, text)
        return len(text)


class CapturedDisplays(DisplayPublisher):
    """display(...) and figures become display_data outputs of the current cell."""

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs) -> None:
        Capture.current.add(_output("display_data", data=dict(data), metadata=dict(metadata or {})))

    def clear_output(self, wait=False) -> None:
        Capture.current.clear()


class CapturedResults(DisplayHook):
    """A cell's last expression becomes its execute_result output (no "Out[n]:" printed)."""

    def write_output_prompt(self) -> None:
        pass

    def write_format_data(self, format_dict, md_dict=None) -> None:
        Capture.current.add(_output("execute_result", data=dict(format_dict), metadata=dict(md_dict or {}),
                                    execution_count=self.prompt_count))

    def finish_displayhook(self) -> None:
        pass


def _record_traceback(etype, evalue, stb) -> None:
    Capture.current.add(_output("error", ename=getattr(etype, "__name__", str(etype)), evalue=str(evalue),
                                traceback=list(stb)))


def new_shell() -> InteractiveShell:
    """An IPython shell whose outputs and tracebacks go to Capture.current (no history file)."""
    config = Config({"HistoryManager": {"enabled": False}})
    shell = InteractiveShell.instance(config=config, displayhook_class=CapturedResults,
                                      display_pub_class=CapturedDisplays)
    shell._showtraceback = _record_traceback
    shell.enable_gui = lambda gui=None: None  # `%matplotlib inline` needs no event loop (a kernel's does the same)
    return shell
