"""Finding and running the benchmarks in bench/ for `course bench`.

A benchmark is a module bench/bench_<name>.py whose docstring's first line describes it and whose
`run(quick: bool) -> list[Measurement]` measures everything it compares within one run, so ratios
are not skewed by a machine that got busier between runs. `quick=True` is a smoke run for the tests.
"""

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from course_lib.paths import course_root


@dataclass(frozen=True)
class Measurement:
    """One figure a benchmark prints: e.g. ("relu / copy throughput", 0.83, "x", "aim >= 0.7x")."""

    label: str
    value: float
    unit: str
    aim: str = ""


def bench_dir() -> Path:
    return course_root() / "bench"


def available() -> dict[str, Path]:
    """Benchmark name -> file, for every bench/bench_<name>.py."""
    return {p.stem.removeprefix("bench_"): p for p in sorted(bench_dir().glob("bench_*.py"))}


def load(name: str) -> ModuleType:
    """Import bench/bench_<name>.py; a KeyError lists the names that exist."""
    files = available()
    if name not in files:
        raise KeyError(f"no benchmark {name!r}; available: {', '.join(files) or 'none'}")
    spec = importlib.util.spec_from_file_location(f"bench_{name}", files[name])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def describe(module: ModuleType) -> str:
    return (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""


def format_table(rows: list[Measurement]) -> str:
    """A plain fixed-width table, one measurement a line."""
    width = max((len(r.label) for r in rows), default=10)
    return "\n".join(f"  {r.label:<{width}}  {r.value:10.3f} {r.unit:<6} {r.aim}".rstrip() for r in rows)
