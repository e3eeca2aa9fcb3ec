"""Fault injection on small real runs: real Postgres, Redis, Celery workers, Chromium and the world.

Each test injects one fault at a defined point (a hook the worker stops at and the test waits on,
apps/runs/faults.py), then drives the run to its end with the reaper and checks that it completed
and that no trajectory is missing, duplicated or holds interleaved steps, with rewards as the
evaluators and labels say. `pytest -m faults` (make test-faults); figures go to var/faults-report.jsonl.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pytest
import redis
from django.db import connection

from apps.rollouts.models import Step, Trajectory
from apps.runs.models import Checkpoint, Run, StageRun
from sandbox.server import free_port_block
from tests.faults.conftest import assert_intact, integrity, record
from tests.runs.helpers import make_run, make_tasks, tiny_config

pytestmark = [
    pytest.mark.faults,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(1800),
]

EXPECTED = {"demo": 3, "train": 3, "eval": 2}
TWO_SHARDS = ["rollout.slots=1", "rollout.contexts=1"]  # two instances: two shards of one slot
START_RUN = "apps.runs.tasks.start_run"


def _run(owner, *extra: str, name: str = "tiny") -> Run:
    return make_run(owner, tiny_config(phases=0, extra=list(extra)), name)


def _finish(request, cluster, fault: str, runs: list[Run]) -> list[dict]:
    figures = [integrity(r, EXPECTED) for r in runs]
    record(request.node.name, fault, cluster.injected, runs, figures)
    for run in runs:
        run.refresh_from_db()
        assert run.status == Run.Status.SUCCEEDED, f"{run.last_error}\n{cluster.logs()}"
    for f in figures:
        assert_intact(f)
    return figures


def test_a_rollout_worker_sigkilled_mid_stage(request, owner, cluster_factory):
    make_tasks(4, 2)
    run = _run(owner, *TWO_SHARDS)
    cluster = cluster_factory(["step_written:train"])
    cluster.start("gpu", "default,gpu")
    cluster.start("ra", "rollout")
    cluster.start("rb", "rollout")
    cluster.send(START_RUN, run.pk)

    hit = cluster.reached("step_written:train")  # a shard wrote an episode's first step
    victim = cluster.worker_of(hit["pid"])
    cluster.kill(victim)  # mid-episode, its Chromium with it
    cluster.start(f"{victim}-2", "rollout")
    cluster.drive(run)

    _finish(request, cluster, "SIGKILL rollout worker", [run])
    traj = Trajectory.objects.get(pk=hit["trajectory"])
    assert traj.status == "ok" and traj.attempts == 2  # its episode ran again, once


def test_a_gpu_worker_sigkilled_mid_stage_resumes_from_the_last_completed_stage(
    request, owner, cluster_factory
):
    """Also the old flaky `test_a_killed_training_worker_resumes_from_the_last_completed_stage`:
    the kill happens when orm_init has started, whatever the speed of the machine."""
    make_tasks(4, 2)
    run = _run(owner)
    cluster = cluster_factory(["stage_started:orm_init"])
    cluster.start("gpu", "default,gpu")
    cluster.start("ro", "rollout")
    cluster.send(START_RUN, run.pk)

    hit = cluster.reached("stage_started:orm_init")
    assert cluster.worker_of(hit["pid"]) == "gpu"
    done_before = set(
        StageRun.objects.filter(phase__run=run, status="done").values_list("name", "finished_at")
    )
    # The evaluation runs on the rollout queue beside orm_init: done or not yet, whichever won.
    assert {"sft", "rollout"} <= {name for name, _ in done_before} <= {"sft", "rollout", "eval"}
    cluster.kill("gpu")
    cluster.start("gpu2", "default,gpu")
    cluster.drive(run)

    _finish(request, cluster, "SIGKILL gpu worker", [run])
    after = set(
        StageRun.objects.filter(phase__run=run, status="done").values_list("name", "finished_at")
    )
    assert done_before <= after  # completed stages were not run again
    orm_init = StageRun.objects.get(phase__run=run, name="orm_init")
    assert orm_init.attempts == 2 and orm_init.status == "done"
    assert Checkpoint.objects.filter(run=run, kind="orm").count() == 1


def test_chromium_killed_mid_episode(request, owner, cluster_factory):
    make_tasks(4, 2)
    run = _run(owner)  # one shard, two slots in one browser
    cluster = cluster_factory(["step_written:train"])
    cluster.start("gpu", "default,gpu")
    cluster.start("ro", "rollout")
    cluster.send(START_RUN, run.pk)

    hit = cluster.reached("step_written:train")
    os.kill(hit["browser_pid"], signal.SIGKILL)
    cluster.injected += 1
    cluster.release("step_written:train")
    cluster.drive(run)

    _finish(request, cluster, "Chromium killed", [run])
    traj = Trajectory.objects.get(pk=hit["trajectory"])
    # re-run on a relaunched browser, whichever action the kill interrupted (a Search's error
    # once read "search: browser disconnected: …" and was taken for the agent's failure)
    assert traj.status == "ok" and traj.attempts >= 2, (traj.status, traj.attempts, traj.error)


def _redis_server(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    client = redis.Redis(port=port)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            if client.ping():
                return proc
        except redis.ConnectionError:
            time.sleep(0.2)
    raise RuntimeError("redis-server did not start")


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_the_broker_redis_restarted_mid_phase(request, owner, cluster_factory):
    """The broker is a Redis of this test's own (never the shared one), restarted empty."""
    port = free_port_block(1)
    server = _redis_server(port)
    try:
        make_tasks(4, 2)
        run = _run(owner, *TWO_SHARDS)
        cluster = cluster_factory(["step_written:train"], broker_url=f"redis://127.0.0.1:{port}/0")
        cluster.start("gpu", "default,gpu")
        cluster.start("ra", "rollout")
        cluster.start("rb", "rollout")
        cluster.send(START_RUN, run.pk)

        cluster.reached("step_written:train")
        server.terminate()
        server.wait(15)
        time.sleep(2)
        server = _redis_server(port)  # empty: every queued message is gone
        cluster.injected += 1
        cluster.release("step_written:train")
        cluster.drive(run)

        _finish(request, cluster, "Redis restarted", [run])
    finally:
        server.terminate()
        server.wait(15)


def test_postgres_connections_terminated_mid_phase(request, owner, cluster_factory):
    make_tasks(4, 2)
    run = _run(owner, *TWO_SHARDS)
    cluster = cluster_factory(["step_written:train"])
    cluster.start("gpu", "default,gpu")
    cluster.start("ra", "rollout")
    cluster.start("rb", "rollout")
    cluster.send(START_RUN, run.pk)

    cluster.reached("step_written:train")
    with connection.cursor() as cursor:  # every other connection to this test's database
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        (terminated,) = cursor.fetchone()
    assert terminated >= 3  # at least one connection of each worker
    cluster.injected += 1
    cluster.release("step_written:train")
    cluster.drive(run)

    _finish(request, cluster, "Postgres connections terminated", [run])


def test_stage_messages_delivered_twice(request, owner, cluster_factory):
    make_tasks(4, 2)
    run = _run(owner, *TWO_SHARDS)
    cluster = cluster_factory(["shards_sent:rollout", "stage_started:orm_init"])
    cluster.start("gpu", "default,gpu")
    for name in ("ra", "rb", "rc"):  # a spare worker runs the duplicate shard at once
        cluster.start(name, "rollout")
    cluster.send(START_RUN, run.pk)
    cluster.send(START_RUN, run.pk)
    cluster.injected += 1

    sent = cluster.reached("shards_sent:rollout")
    for shard in range(sent["shards"]):
        cluster.send("apps.rollouts.tasks.rollout_shard", sent["stage"], sent["token"], shard,
                     sent["shards"], sent["slots"], queue="rollout")  # fmt: skip
        cluster.injected += 1
    cluster.send("apps.rollouts.tasks.start_browser_stage", sent["stage"], queue="rollout")
    cluster.injected += 1
    cluster.release("shards_sent:rollout")
    started = cluster.reached("stage_started:orm_init")
    cluster.send("apps.runs.tasks.run_gpu_stage", started["stage"], queue="gpu")
    cluster.injected += 1
    cluster.release("stage_started:orm_init")
    cluster.drive(run)

    _finish(request, cluster, "stage messages delivered twice", [run])
    assert set(StageRun.objects.filter(phase__run=run).values_list("attempts", flat=True)) == {1}


def test_two_runs_launched_at_once(request, owner, cluster_factory):
    make_tasks(4, 2)
    runs = [_run(owner, *TWO_SHARDS, name=f"run {i}") for i in range(2)]
    cluster = cluster_factory([])
    cluster.start("gpu", "default,gpu")
    cluster.start("ra", "rollout")
    cluster.start("rb", "rollout")
    for run in runs:
        cluster.send(START_RUN, run.pk)
    cluster.injected += 1
    cluster.drive(*runs)

    _finish(request, cluster, "two runs at once", runs)
    assert Step.objects.filter(trajectory__run__in=runs).exists()
