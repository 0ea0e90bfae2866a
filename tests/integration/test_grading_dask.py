"""`course grade` on a real Dask LocalCluster (2 worker processes): 100 submissions get the same results as
local workers, a worker killed midway still leaves every submission graded and saved exactly once, an
unchanged class is not graded again, a killed grading run re-run finishes the rest, and an unreachable
scheduler is one line before anything is written."""

import csv
import logging
import os
import signal
import subprocess
import threading
import time

import dask
import pytest
from distributed import Client, LocalCluster
from nbgrader.api import Gradebook
from sqlalchemy import create_engine, inspect

from course_lib.grading.grade import grade
from course_lib.grading.grade.cluster import ClusterUnusable, DaskWorkers
from course_lib.grading.grade.intake import Submission
from course_lib.grading.grade.store import Store
from course_lib.grading.grade.workers import LocalWorkers
from course_lib.grading.sandbox.bubblewrap import Limits
from tests import grading_fixtures as fx
from tests.conftest import ROOT, free_port

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")]
LIMITS = Limits(wall_s=40, cell_timeout_s=10)
KINDS = ("full", "wrong_relu", "blank", "patch_channel", "edit_test")  # graded, each in about a second
COURSE = [str(ROOT / ".venv" / "bin" / "course") if (ROOT / ".venv").exists() else "course"]


def _class(course, n: int) -> dict[str, str]:
    """n submissions cycling through KINDS; returns student -> kind."""
    kinds = {f"s{i:03d}-{KINDS[i % len(KINDS)].replace('_', '-')}": KINDS[i % len(KINDS)] for i in range(n)}
    notebooks = {kind: fx.CASES[kind][0](ROOT) for kind in KINDS}
    for student, kind in kinds.items():
        fx.submit(course / "submitted", student, notebooks[kind])
    return kinds


def _plain(g):
    return g.status, g.score, g.flags, g.cell_scores


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as local, Client(local) as client:
        yield local, client


def _worker_pids(client) -> dict[str, int]:
    return client.run(os.getpid)


def _kill_a_worker_after(state, count: int, client, killed: list) -> threading.Thread:
    """In the background: once `count` results are saved, SIGKILL one Dask worker process mid-task."""

    def watch():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and len(list(state.glob("[!.]*.json"))) < count:
            time.sleep(0.1)
        address, pid = sorted(_worker_pids(client).items())[0]
        os.kill(pid, signal.SIGKILL)
        killed.append((address, pid))

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.sandbox
def test_100_submissions_on_dask_match_local_workers_and_a_killed_worker_loses_none(tmp_path, monkeypatch,
                                                                                     cluster):
    local_cluster, client = cluster
    local = fx.make_course(ROOT, tmp_path / "local")
    for i, kind in enumerate(KINDS):  # one of each kind: grading depends only on the notebook
        fx.submit(local / "submitted", f"local-{i}", fx.CASES[kind][0](ROOT))
    monkeypatch.setenv("RECTIFIED_ROOT", str(local))
    graded = grade(fx.A, local / "submitted", limits=LIMITS, executor=LocalWorkers(2), progress=False)
    by_kind = {kind: _plain(g) for kind, g in zip(KINDS, graded, strict=True)}  # sorted by student: local-0...
    assert {k: v[:2] for k, v in by_kind.items()} == {k: fx.CASES[k][1:] for k in KINDS}

    course = fx.make_course(ROOT, tmp_path / "dask")
    kinds = _class(course, 100)
    monkeypatch.setenv("RECTIFIED_ROOT", str(course))
    saves, real_record = [], Store.record
    monkeypatch.setattr(Store, "record", lambda self, g: saves.append(g.student_id) or real_record(self, g))
    pids_before, killed = _worker_pids(client), []
    watcher = _kill_a_worker_after(course / "grading" / fx.A / "state", 30, client, killed)
    with DaskWorkers.connect(local_cluster.scheduler_address) as executor:
        results = grade(fx.A, course / "submitted", limits=LIMITS, executor=executor, progress=False)
    watcher.join(timeout=5)

    assert killed and killed[0][1] in pids_before.values()
    assert killed[0][1] not in _worker_pids(client).values()  # the nanny started a fresh worker process
    lost = [key for key, start, finish, *_ in local_cluster.scheduler.transition_log
            if start == "processing" and finish == "released"]
    assert lost  # the killed worker was running a task, and the scheduler ran it again elsewhere
    assert sorted(saves) == sorted(kinds)  # every submission saved exactly once
    assert {g.student_id: _plain(g) for g in results} == {s: by_kind[k] for s, k in kinds.items()}
    with open(course / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["student_id"] for r in rows) == sorted(kinds)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        scores = {s.student.id: s.code_score for s in gradebook.assignment_submissions(fx.A)}
    assert scores == {s: fx.CASES[k][2] for s, k in kinds.items()}

    submitted = []
    monkeypatch.setattr(DaskWorkers, "map", lambda self, task, setup, todo, *a: submitted.extend(todo) or iter(()))
    with DaskWorkers.connect(local_cluster.scheduler_address) as executor:
        again = grade(fx.A, course / "submitted", limits=LIMITS, executor=executor, progress=False)
    assert submitted == [] and [_plain(g) for g in again] == [_plain(g) for g in results]


@pytest.mark.sandbox
def test_a_killed_dask_grading_run_finishes_the_rest_when_run_again(tmp_path, cluster):
    local_cluster, _ = cluster
    course = fx.make_course(ROOT, tmp_path / "course")
    kinds = _class(course, 8)
    command = COURSE + ["grade", fx.A, "--dask", local_cluster.scheduler_address]
    env = dict(os.environ, RECTIFIED_ROOT=str(course))
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = course / "grading" / fx.A / "state"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(state.glob("[!.]*.json"))) < 3:
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    first.wait()
    done_before = len(list(state.glob("[!.]*.json")))
    assert 3 <= done_before < len(kinds)
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    with open(course / "grades.csv", newline="") as f:
        rows = {r["student_id"]: (r["status"], float(r["score"])) for r in csv.DictReader(f)}
    assert rows == {s: fx.CASES[k][1:] for s, k in kinds.items()}


@pytest.mark.sandbox
@pytest.mark.postgresql
def test_an_unreachable_scheduler_is_one_line_before_anything_is_written(tmp_path, postgres_database):
    course, db_url = fx.make_course(ROOT, tmp_path / "course"), postgres_database()
    _class(course, 2)
    before = {p.relative_to(course) for p in course.rglob("*")}
    result = subprocess.run(COURSE + ["grade", fx.A, "--dask", f"tcp://127.0.0.1:{free_port()}", "--db", db_url],
                            capture_output=True, text=True, env=dict(os.environ, RECTIFIED_ROOT=str(course)),
                            timeout=120)
    assert result.returncode == 1 and result.stderr.startswith("Error: cannot reach the Dask scheduler")
    assert result.stderr.count("\n") == 1, result.stderr
    assert {p.relative_to(course) for p in course.rglob("*")} == before  # no state, csv, gradebook or cache
    with create_engine(db_url).connect() as connection:
        assert inspect(connection).get_table_names() == []  # not even nbgrader's tables


def test_workers_and_dask_together_are_refused_in_one_line():
    result = subprocess.run(COURSE + ["grade", fx.A, "--dask", "tcp://127.0.0.1:1", "--workers", "2"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stderr.startswith("Error: --workers sets local sandboxes")


@pytest.mark.sandbox
def test_a_task_that_keeps_killing_its_workers_stops_the_run_in_one_line():
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), LocalCluster(
            n_workers=1, threads_per_worker=1, dashboard_address=None, silence_logs=logging.CRITICAL) as local:
        with DaskWorkers.connect(local.scheduler_address) as executor:
            with pytest.raises(ClusterUnusable, match="kept dying while grading s1"):
                list(executor.map(lambda *_: os._exit(1), None, [(Submission("s1"), "")], LIMITS))
