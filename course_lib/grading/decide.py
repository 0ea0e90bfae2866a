"""Deciding tests outside the sandbox, from the probe log's plain records.

`expected_checks` learns, from the reference solution's own graded run, which checks each test cell makes.
A student's test cell then earns its points only if every one of those checks has a record and every record
of it passes when re-judged here. Two kinds of record exist: "elementwise" (inputs re-created from the seed,
reference values computed in this process, only from REFERENCE_MODULES, outcomes compared by
course_lib.grading.verdict) and "judged" (the exercise's own judge_* function called here on the record's
plain data; course_lib.grading.judged). A record this module cannot read or re-judge counts as a failure; so
does a missing one (a crashed, exited or sabotaged run).
"""

import importlib
import json
from collections.abc import Iterable

import numpy as np

from course_lib.grading import judged
from course_lib.grading.inputs import elementwise_inputs
from course_lib.grading.probes import Outcome
from course_lib.grading.verdict import elementwise_verdict

REFERENCE_MODULES = ("course_lib.activations",)


class UndecidableCheck(ValueError):
    """A check kind that cannot be decided outside the sandbox (yet)."""


def read_log(text: str, max_records: int = 10_000) -> list[dict]:
    """The well-formed JSON object lines of a probe log (at most `max_records`); other lines are skipped."""
    records = []
    for line in text.splitlines()[:max_records]:
        try:
            item = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(item, dict) and isinstance(item.get("kind"), str):
            records.append(item)
    return records


OUTCOME_FIELDS = ("outcomes", "data")


def key(record: dict) -> str:
    """What identifies a check: everything but what the student's code produced."""
    return json.dumps({k: v for k, v in record.items() if k not in OUTCOME_FIELDS}, sort_keys=True)


def _outcome(item: dict) -> Outcome:
    value = None
    if item.get("value") is not None:
        flat = np.array([float(v) for v in item["value"]["flat"]], dtype=np.float64)
        value = flat.reshape(item["value"]["shape"])
    return Outcome(value, item.get("dtype"), item.get("type_name"), item.get("error"),
                   tuple(item.get("warnings") or ()))


def _reference(dotted: str):
    module, _, name = dotted.rpartition(".")
    if module not in REFERENCE_MODULES or name.startswith("_"):
        raise ValueError(f"not an allowed reference: {dotted}")
    return getattr(importlib.import_module(module), name)


def passes(record: dict) -> bool:
    """Re-judge one record here; anything malformed is a failure."""
    if record.get("kind") == "judged":
        return judged.passes(record)
    if record.get("kind") != "elementwise":
        raise UndecidableCheck(f"checks of kind {record.get('kind')!r} cannot be decided outside the sandbox yet")
    try:
        reference = _reference(record["reference"])
        extra = tuple(record["extra"])
        inputs = elementwise_inputs(int(record["seed"]), extremes=bool(record["extremes"]))
        outcomes = [_outcome(o) for o in record["outcomes"]]
        if len(outcomes) != len(inputs):
            return False
        expected = [np.asarray(reference(x, *extra), dtype=np.float64) for x in inputs]
        return elementwise_verdict(record["name"], outcomes, inputs, expected, (), bool(record["hidden"]),
                                   bool(record["warn_free"])) is None
    except (KeyError, TypeError, ValueError, AttributeError):
        return False


def expected_checks(records_by_cell: dict[str, Iterable[dict]]) -> dict[str, set[str]]:
    """From the reference solution's run: test cell grade id -> the keys of the checks it makes."""
    return {cell: {key(r) for r in records} for cell, records in records_by_cell.items()}


def decide(expected: dict[str, set[str]], student_records: list[dict]) -> dict[str, bool]:
    """Test cell grade id -> passed, from the student's records alone."""
    by_key: dict[str, list[dict]] = {}
    for r in student_records:
        by_key.setdefault(key(r), []).append(r)
    verdicts = {}
    for cell, keys in expected.items():
        verdicts[cell] = bool(keys) and all(k in by_key and all(passes(r) for r in by_key[k]) for k in keys)
    return verdicts
