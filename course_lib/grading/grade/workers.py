"""Where the sandboxes of a grading run execute: the `Executor` contract and `LocalWorkers`, threads on this
machine. `cluster.DaskWorkers` (the instructor extra) keeps the same contract on a Dask cluster."""

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Protocol

from course_lib.grading.grade.plan import Plan
from course_lib.grading.grade.submission import Result
from course_lib.grading.sandbox.bubblewrap import Limits

Task = Callable[..., Result]


class Executor(Protocol):
    """Runs `task(plan, submission, fingerprint, limits)` for each (submission, fingerprint) in `todo` and
    yields each result once, as it completes."""

    def map(self, task: Task, plan: Plan, todo: list, limits: Limits) -> Iterator[Result]: ...


@dataclass(frozen=True)
class LocalWorkers:
    """`workers` threads on this machine, each running one sandbox (a separate process) at a time."""

    workers: int

    def map(self, task, plan, todo, limits):
        with ThreadPoolExecutor(self.workers) as pool:
            futures = [pool.submit(task, plan, sub, fingerprint, limits) for sub, fingerprint in todo]
            for future in as_completed(futures):
                yield future.result()
