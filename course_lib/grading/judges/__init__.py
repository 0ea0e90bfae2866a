"""The host's half of every check: what inputs it gets, and the judge that decides from what came back.

Host side only: this package holds the references, labels and misconceptions, and is never copied into the
sandbox. Each assignment has a module here (judges/ex01.py for ex01_activations) with

    JUDGES = {"relu": Judge(prepare, decide), ...}      # the check "ex01.relu"
    WRITTEN = {"course_lib.activations": ["relu", ...]}  # names students write: cut out of the sandbox library

- `prepare(params) -> Prepared(given, private)`: from the check's params (its seed, `hidden`, thresholds) the
  inputs handed to the sandbox (`given`, plain data: never a label, a reference output, or a seed from which
  either follows) and what only the judge sees (`private`). Under `course grade` the seed is a secret one per
  student, and `shared_seed` one per class (see `secret_params`); locally only the notebook's seed is set.
- `decide(data, prepared, params) -> message or None`: the verdict, from the probe's plain data alone; every
  reference value is computed here, on this side.

Locally (a student's Jupyter, plain nbgrader) `judge_here` runs both halves in the kernel, with the
notebook's seed, so students see the same messages before they submit.
"""

import hashlib
import hmac
import importlib
from collections.abc import Callable
from dataclasses import dataclass, replace

from course_lib.grading import plain

SEED_BITS = 32  # what every generator takes (numpy's legacy seeding, scikit-learn, mnist1d); see docs/architecture.md


@dataclass(frozen=True)
class Prepared:
    """A check's inputs: `given` goes into the sandbox; `private` (labels, reference values) stays here."""

    given: object
    private: object = None


@dataclass(frozen=True)
class Judge:
    """The host's half of one check. Checks with the same `group` and notebook seed share one secret seed
    (ex06's trainings: every test cell with seed=1 reuses one run)."""

    prepare: Callable[[dict], Prepared]
    decide: Callable[[object, Prepared, dict], str | None]
    group: str | None = None


@dataclass(frozen=True)
class Served:
    """What the host answered one check with: its params (secret seed) and what was prepared from them."""

    check: str
    params: dict
    prepared: Prepared

    @property
    def given(self):
        return self.prepared.given


class UnknownCheck(LookupError):
    """A check name that no judges module defines."""


def _module(check: str):
    assignment, _, _ = check.partition(".")
    if not (assignment.startswith("ex") and assignment[2:].isdigit()):
        raise UnknownCheck(f"no judge for {check!r}")
    try:
        return importlib.import_module(f"{__name__}.{assignment}")
    except ModuleNotFoundError:
        raise UnknownCheck(f"no judge for {check!r}") from None


def lookup(check: str) -> Judge:
    """The Judge of a check name such as "ex01.relu"; UnknownCheck otherwise."""
    judge = getattr(_module(check), "JUDGES", {}).get(check.partition(".")[2])
    if judge is None:
        raise UnknownCheck(f"no judge for {check!r}")
    return judge


def written(assignment: str) -> dict[str, list[str]]:
    """The names an assignment asks students to write, by module (removed from the sandbox library)."""
    return dict(getattr(_module(assignment.split("_")[0] + ".x"), "WRITTEN", {}))


def secret_seed(secret: bytes, *parts) -> int:
    """A seed nobody without `secret` can predict, derived from it and `parts` (assignment, student, ...)."""
    message = "\0".join(str(p) for p in parts).encode()
    return int.from_bytes(hmac.new(secret, message, hashlib.sha256).digest()[:8], "big") >> (64 - SEED_BITS)


def secret_params(check: str, params: dict, secret: bytes, assignment: str, student: str) -> dict:
    """`params` with its seed replaced by a secret one for this student, and `shared_seed` added: a secret
    seed the whole class shares, for data too costly to draw per student (MNIST-1D held-out sets). Both are
    the same for every check of one group with the same notebook seed."""
    group, seed = lookup(check).group or check, params.get("seed")
    return {**params, "seed": secret_seed(secret, assignment, student, group, seed),
            "shared_seed": secret_seed(secret, assignment, "", group, seed)}


def serve(check: str, params: dict) -> Served:
    return Served(check, params, lookup(check).prepare(params))


def roundtrip(value):
    """`value` as the other side of the channel receives it: encoded and decoded as plain data."""
    return plain.decode(plain.encode(value))


def verdict_on(served: Served, data, observed: dict | None = None) -> str | None:
    """The judge's message on `data` (None: passed); a judge that fails on malformed data fails the check.
    `observed`: what the host measured of the run (`course grade` only), added to the params the judge sees:
    "host_cpu_seconds", the CPU seconds the whole submission had used (every cell so far, its threads and
    child processes) when the cell making this check ended. A judge uses them when present and falls back
    on the probe's own figures locally."""
    try:
        return lookup(served.check).decide(data, served.prepared, {**served.params, **(observed or {})})
    except Exception as err:  # noqa: BLE001 - a record no judge can read is a failed check, never a crashed run
        return f"{served.check}: the grader could not read what the check returned ({type(err).__name__})"


def judge_here(check: str, probe: Callable, params: dict) -> str | None:
    """Both halves in this process, with the notebook's params: what a local check (and nbgrader) shows."""
    served = serve(check, params)
    served = replace(served, prepared=Prepared(roundtrip(served.given), served.prepared.private))
    return verdict_on(served, roundtrip(probe(served.given)))
