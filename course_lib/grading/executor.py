"""Execute one notebook inside the sandbox: `python -m course_lib.grading.executor IN OUT`.

Runs every cell on the course kernel, continuing after errors as nbgrader does; a cell that runs past its
timeout is interrupted (and its kernel restarted if it ignores the interrupt); a kernel that dies ends the run
with what was executed so far. Output is capped per cell and in total, so 100 MB of printing cannot fill the
grader's disk or memory. The executed notebook is written to OUT in every case.
"""

import argparse
import json
import os
import sys

import nbformat  # course_lib.grading's __init__ (run first) already skipped jsonschema's slow optional import
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

TRUNCATED = "[output truncated by the grader: {limit} bytes per cell]\n"


def _size(output) -> int:
    return len(str(output.get("text", ""))) + len(str(output.get("data", ""))) + len(str(output.get("traceback", "")))


class CappedClient(NotebookClient):
    """A NotebookClient that keeps at most `max_cell_output` bytes of output per cell: the output that crosses
    the cap is cut (a stream) or dropped, a note says so, and the cell's later output is discarded."""

    max_cell_output = 100_000

    def output(self, outs, msg, display_id, cell_index):
        capped = self.__dict__.setdefault("_capped_cells", set())
        if cell_index in capped:
            return None
        out = super().output(outs, msg, display_id, cell_index)
        excess = sum(_size(o) for o in outs) - self.max_cell_output
        if excess > 0:
            last = outs.pop()
            if last.get("output_type") == "stream" and len(last.text) > excess:
                last.text = last.text[: len(last.text) - excess]
                outs.append(last)
            outs.append(nbformat.v4.new_output("stream", name="stderr",
                                               text=TRUNCATED.format(limit=self.max_cell_output)))
            capped.add(cell_index)
        return out


def _log_size() -> int | None:
    """Bytes in the probe log now (None without one): lets a trusted run attribute records to cells."""
    path = os.environ.get("RECTIFIED_PROBE_LOG")
    return os.path.getsize(path) if path and os.path.exists(path) else (0 if path else None)


def execute(nb, cell_timeout: float, max_cell_output: int, kernel: str = "rectified",
            save=lambda nb, offsets: None) -> str:
    """Execute `nb` in place, calling save(nb, offsets) after every cell so a killed run keeps what it
    executed (offsets: cell index -> probe-log size after that cell); return "ok", "crashed: ..." (the
    kernel died) or "timeout: ..."."""
    client = CappedClient(nb, kernel_name=kernel, timeout=cell_timeout, allow_errors=True,
                          interrupt_on_timeout=True, record_timing=False, shutdown_kernel="immediate")
    client.max_cell_output = max_cell_output
    offsets: dict[int, int | None] = {}

    def after_cell(cell_index, **_):
        offsets[cell_index] = _log_size()
        save(nb, offsets)

    client.on_cell_executed = after_cell
    try:
        client.execute()
    except DeadKernelError as err:
        return f"crashed: the kernel died ({str(err)[:200]})"
    except TimeoutError as err:
        return f"timeout: {str(err)[:200]}"
    return "ok"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook_in")
    parser.add_argument("notebook_out")
    parser.add_argument("--cell-timeout", type=float, default=120)
    parser.add_argument("--max-cell-output", type=int, default=100_000)
    args = parser.parse_args(argv)
    nb = nbformat.read(args.notebook_in, as_version=4)
    def save(notebook, offsets):
        nbformat.write(notebook, args.notebook_out)
        with open(args.notebook_out + ".offsets.json", "w") as f:
            json.dump(offsets, f)

    status = execute(nb, args.cell_timeout, args.max_cell_output, save=save)
    nbformat.write(nb, args.notebook_out)
    print(status)
    return 0


if __name__ == "__main__":
    sys.exit(main())
