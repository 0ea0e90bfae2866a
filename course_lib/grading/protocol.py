"""What passes between the grading host and the sandbox it drives: the one module both sides import.

The host (`course grade`, course_lib.grading.sandbox.session) runs a notebook in a sandbox one cell at a time. It
writes commands to the sandbox executor's standard input and reads replies from its standard output, one
JSON object per line:

    host -> sandbox   {"op": "cell", "index": 4, "source": "..."}        run this code cell
                      {"op": "given", "ok": true, "given": <plain>}      the inputs a check asked for
                      {"op": "given", "ok": false, "error": "..."}       (or why it gets none)
                      {"op": "end"}                                      no more cells
    sandbox -> host   {"op": "ready"}                                    the executor started
                      {"op": "ask", "check": "ex01.relu", "params": {...}}   a check wants its inputs
                      {"op": "data", "check": "ex01.relu", "data": <plain>}   what the probe computed
                      {"op": "data", "check": "ex01.relu", "error": "..."}    (or why it has nothing)
                      {"op": "reference", "name": "course_lib.activations.relu"}   a removed name was used
                      {"op": "done", "index": 4, "ok": true, "outputs": [...]}  the cell finished

Everything the sandbox says is a claim by code the student controls: the host caps what it reads
(`MAX_LINE_BYTES`, `MAX_MESSAGES_PER_CELL`), decides status from what it observed itself, and gives a check
its inputs only while the test cell that makes it runs. An ask's params (seed, hidden, thresholds) are read
only from the reference solution's run; a student's run gets the reference run's params, with the seed
replaced by a secret one. <plain> is course_lib.grading.plain's encoding.
"""

import json

READY, CELL, GIVEN, END = "ready", "cell", "given", "end"
ASK, DATA, REFERENCE, DONE = "ask", "data", "reference", "done"

MAX_LINE_BYTES = 8 * 2**20  # one message; a longer line is a protocol violation
MAX_MESSAGES_PER_CELL = 200

# How a submission's run ended, as the host observed it (never as the submission said).
GRADED, TIMEOUT, CRASHED, ERROR, FLAGGED, INVALID, MISSING = (
    "graded", "timeout", "crashed", "error", "flagged", "invalid", "missing")

# Environment variables (the sandbox is started with a cleared environment and these only).
CACHE_VARIABLE = "RECTIFIED_CACHE"  # the read-only data-set cache (course_lib.data.cache_dir)
ROOT_VARIABLE = "RECTIFIED_ROOT"  # the course folder (host side only; never set inside the sandbox)


class ProtocolError(ValueError):
    """A line that is not one well-formed message."""


def encode(message: dict) -> bytes:
    """One message as a line of JSON (NaN and infinities are plain.encode's job before this)."""
    return json.dumps(message, allow_nan=False, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict:
    """The message on one line; ProtocolError for anything that is not a JSON object with a string "op"."""
    try:
        message = json.loads(line)
    except (ValueError, RecursionError) as err:
        raise ProtocolError(f"not JSON ({type(err).__name__})") from None
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise ProtocolError("not a message")
    return message
