"""Grading on a Dask.distributed cluster: `course grade --dask SCHEDULER_ADDRESS`.

Each submission becomes one Dask task, `submission.grade_task`, which runs the submission's sandbox on whichever
worker takes it (claiming a sandbox slot on that worker's machine) and returns plain data: the result, the
executed notebook and the rendered feedback page. Results come back to the one gradebook writer, the calling
process, which saves each as it arrives, exactly as with local threads. A worker that dies mid-task loses
nothing: the scheduler runs its tasks again elsewhere, and each task's future completes once, so each result
is saved once. Nothing is written on the workers but their scratch folders.

Before any grading starts, `DaskWorkers.connect` checks the scheduler answers, has workers, and that every
worker can run the sandbox (bubblewrap, root) with the same grading code as this process; any failure is a
one-line `ClusterUnusable`, and so is a task the scheduler gives up on after its workers died too often.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from distributed import Client, KilledWorker, as_completed

from course_lib.errors import CourseError
from course_lib.grading.grade.plan import grading_code_version
from course_lib.grading.sandbox.bubblewrap import missing_requirement

CONNECT_TIMEOUT_S = 10


class ClusterUnusable(CourseError, RuntimeError):
    """The scheduler cannot be reached, has no workers, or a worker cannot grade."""


def _check_workers(client: Client, address: str) -> None:
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
    except TimeoutError:
        raise ClusterUnusable(f"the Dask scheduler at {address} has no workers") from None
    for worker, missing in sorted(client.run(missing_requirement).items()):
        if missing:
            raise ClusterUnusable(f"Dask worker {worker} cannot grade: {missing}")
    ours = grading_code_version()
    for worker, version in sorted(client.run(grading_code_version).items()):
        if version != ours:
            raise ClusterUnusable(f"Dask worker {worker} runs different grading code from this machine's "
                                  "(install the same version of the course on every worker)")


class DaskWorkers:
    """An executor for `grade.grade`: one Dask task per submission on the cluster `client` is connected to."""

    def __init__(self, client: Client):
        self.client = client

    @classmethod
    @contextmanager
    def connect(cls, address: str) -> Iterator["DaskWorkers"]:
        """Connect to the scheduler at `address` and check its workers; close the connection afterwards."""
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ClusterUnusable(f"cannot reach the Dask scheduler at {address}: {reason}") from None
        try:
            _check_workers(client, address)
            yield cls(client)
        finally:
            client.close()

    def map(self, task, plan, todo, limits):
        """Submit every submission at once (the scheduler spreads them); yield results as they complete. The
        plan travels inside each task rather than scattered once, so losing a worker cannot lose it."""
        students = {self.client.submit(task, plan, sub, fingerprint, limits, pure=False): sub.student_id
                    for sub, fingerprint in todo}
        for future in as_completed(list(students), loop=self.client.loop):
            try:
                result = future.result()
            except KilledWorker:
                raise ClusterUnusable(f"Dask workers kept dying while grading {students[future]} (the scheduler's "
                                      "allowed-failures); the results saved so far are kept: run again to grade "
                                      "the rest") from None
            future.release()
            yield result
