"""The probe log: plain records of what the student's code produced, for a verdict decided elsewhere.

When RECTIFIED_PROBE_LOG names a file (the grading sandbox sets it), every check appends one JSON line:
what was checked (kind, name, reference, seed, options) and the plain outcomes. `course grade` reads these
lines outside the sandbox and decides each test itself (course_lib.grading.decide); it never reads a
pass/fail from the student's kernel. Without the variable nothing is written.
"""

import json
import math
import os

from course_lib.grading.probes import Outcome

LOG_VARIABLE = "RECTIFIED_PROBE_LOG"


def _json_floats(values):
    """JSON has no NaN/inf: write those as strings ("nan", "inf") that float() reads back."""
    return [v if math.isfinite(v) else repr(v) for v in values]


def outcome_to_json(outcome: Outcome) -> dict:
    value = None
    if outcome.value is not None:
        value = {"shape": list(outcome.value.shape), "flat": _json_floats(outcome.value.reshape(-1).tolist())}
    return {"value": value, "dtype": outcome.dtype, "type_name": outcome.type_name, "error": outcome.error,
            "warnings": list(outcome.warnings)}


def record(kind: str, **fields) -> None:
    """Append one record to the probe log, if one is configured."""
    path = os.environ.get(LOG_VARIABLE)
    if not path:
        return
    with open(path, "a") as log:
        log.write(json.dumps({"kind": kind, **fields}) + "\n")
