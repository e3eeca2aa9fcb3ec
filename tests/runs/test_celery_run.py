"""A tiny run on real Celery workers (subprocesses), Redis, Postgres, Chromium and the world.

The workers get their own Redis database, so other test sessions' workers never take our tasks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from celery import Celery
from django.db import connection

from apps.rollouts.models import Step, Trajectory
from apps.runs.models import Checkpoint, MetricPoint, Run, StageRun
from apps.runs.services import cancel_run
from sandbox.server import WorldThread, free_port_block
from tests.conftest import ROOT, start_worker, stop_worker
from tests.runs.helpers import make_run, make_tasks, tiny_config

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.browser,
    pytest.mark.timeout(1200),
]

TWO_SHARDS = ["rollout.slots=1", "rollout.contexts=1"]


@pytest.fixture(scope="module")
def world():
    with WorldThread(instances=2, port=free_port_block()) as w:
        yield w


@pytest.fixture
def env(world, tmp_path, settings):
    db = connection.settings_dict
    # The test's own Redis database (TEST_REDIS_URL): a database picked from the pid could be
    # another session's, and is emptied below.
    broker = os.environ.get("REDIS_URL", settings.REDIS_URL)
    values = {
        "DATABASE_URL": f"postgres://{db['USER']}{':' + db['PASSWORD'] if db.get('PASSWORD') else ''}"
        f"@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": broker,
        "WORLD_URL": world.url,
        "MEDIA_ROOT": str(tmp_path / "media"),
        "CHECKPOINT_ROOT": str(tmp_path / "ckpt"),
        "TRAJECTORY_STALE_S": "20",
        "LOG_LEVEL": "WARNING",
    }
    settings.MEDIA_ROOT = values["MEDIA_ROOT"]
    from tests.faults.conftest import clear_broker

    clear_broker(broker)  # the queues only, not the database
    _no_other_workers()
    return values


def _no_other_workers() -> None:
    """A worker left by another test (its own world and checkpoint root) would take our tasks and
    the run would wait for ever: fail at once, naming it."""
    from apps.dashboard.health import queue_states

    others = {q: s["workers"] for q, s in queue_states(timeout=1.0).items() if s["workers"]}
    assert not others, f"other workers consume this test's queues: {others}"


class Workers:
    def __init__(self, env: dict):
        self.env = env
        self.procs: dict[str, subprocess.Popen] = {}
        self.client = Celery(broker=env["REDIS_URL"], backend=env["REDIS_URL"])

    def start(self, name: str, queues: str) -> subprocess.Popen:
        self.procs[name] = start_worker(queues, name, self.env)
        return self.procs[name]

    def kill(self, name: str) -> None:
        os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait()

    def send(self, task: str, *args) -> None:
        self.client.send_task(task, args=list(args), queue="default")

    def reap(self, stale_after: float) -> str:
        out = subprocess.run(
            [sys.executable, "manage.py", "reap_runs", "--stale-after", str(stale_after)],
            cwd=ROOT, env={**os.environ, **self.env}, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        return out.stdout + out.stderr

    def stop(self) -> None:
        for proc in self.procs.values():
            stop_worker(proc)


@pytest.fixture
def workers(env):
    w = Workers(env)
    yield w
    w.stop()


def wait_for(predicate, timeout: float, what: str, every: float = 1.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        _trace()
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _trace() -> None:
    """Where the run is, for the log of a slow or failed test."""
    path = os.environ.get("WEBRL_TEST_TRACE")
    if path:
        rows = StageRun.objects.exclude(status="pending").values_list(
            "phase__index", "name", "status", "attempts", "progress"
        )
        with open(path, "a") as fh:
            fh.write(f"{time.strftime('%X')} {[r[:4] + (r[4].get('counts'),) for r in rows]}\n")


def _status(run: Run) -> str:
    return Run.objects.values_list("status", flat=True).get(pk=run.pk)


def test_a_run_survives_a_killed_rollout_worker_and_finishes_with_every_row_linked(owner, workers):
    make_tasks(4, 2)
    run = make_run(owner, tiny_config(phases=1, extra=TWO_SHARDS))
    workers.start("gpu", "default,gpu")
    workers.start("ra", "rollout")
    workers.start("rb", "rollout")
    workers.send("apps.runs.tasks.start_run", run.pk)

    rollout = wait_for(
        lambda: StageRun.objects.filter(
            phase__run=run, phase__index=0, name="rollout", status="running"
        ).first(),
        400,
        "phase 0's rollout stage",
    )
    ra_pid = workers.procs["ra"].pid
    victim = wait_for(
        lambda: Trajectory.objects.filter(
            phase=rollout.phase,
            purpose="train",
            status="running",
            claimed_by__contains=f":{ra_pid}:",
        ).first(),
        120,
        "a trajectory claimed by worker ra",
        every=0.2,
    )
    workers.kill("ra")
    workers.start("ra2", "rollout")
    # Either the surviving shard retakes the orphaned trajectory, or (when it finished first) the
    # stage goes silent and the reaper (beat's job, run here by hand) re-queues it. 60 s, not less:
    # a live stage may go that long between beats (loading a model, a curriculum round), and a
    # reaper that re-queues it while it works leaves the run waiting on a busy queue until the
    # run-level reaper fails it (seen with 15 s on a quiet 2-core machine).
    wait_for(
        lambda: _status(run) not in Run.ACTIVE or (workers.reap(60) and False),
        900,
        "the run to finish",
        every=3,
    )
    run.refresh_from_db()
    assert run.status == Run.Status.SUCCEEDED, run.last_error
    train = Trajectory.objects.filter(run=run, purpose="train")
    for phase in run.phases.all():
        rows = list(train.filter(phase=phase).values_list("task_id", "sample_index"))
        assert len(rows) == len(set(rows)) == 3  # none missing, none twice
        assert not train.filter(phase=phase).exclude(status="ok").exists()
    victim.refresh_from_db()
    assert victim.status == "ok" and f":{ra_pid}:" not in victim.claimed_by
    steps = list(Step.objects.filter(trajectory=victim).values_list("index", flat=True))
    assert steps == list(range(victim.step_count))
    # tasks → trajectories → steps → verdicts → checkpoints → metrics
    for traj in train:
        assert traj.task_id and traj.steps.exists() and traj.verdicts.count() == 1
        assert traj.reward is not None and traj.score is not None
    assert {c.kind for c in Checkpoint.objects.filter(run=run)} == {"actor", "critic", "orm"}
    assert MetricPoint.objects.filter(run=run, name="orm/accuracy").count() == 2
    assert MetricPoint.objects.filter(run=run, name__startswith="actor/").exists()


def test_cancel_stops_a_run_at_the_next_step_boundary(owner, workers):
    make_tasks(4, 2)
    run = make_run(owner, tiny_config(phases=1, extra=["rollout.tasks_per_phase=4"]))
    workers.start("gpu", "default,gpu")
    workers.start("ro", "rollout")
    workers.send("apps.runs.tasks.start_run", run.pk)
    wait_for(
        lambda: Step.objects.filter(trajectory__run=run, trajectory__purpose="demo").exists(),
        300,
        "the first demonstration step",
        every=0.5,
    )
    assert cancel_run(run, owner)
    wait_for(lambda: _status(run) == Run.Status.CANCELLED, 120, "the run to be cancelled")
    assert not StageRun.objects.filter(phase__run=run, status__in=["pending", "running"]).exists()
    assert not Checkpoint.objects.filter(run=run).exists()


# The killed training worker (formerly a slow, flaky test here that polled for orm_init to be
# running and missed it on a fast machine) is tests/faults/test_faults.py's
# test_a_gpu_worker_sigkilled_mid_stage_resumes_from_the_last_completed_stage: a hook in the stage
# loop holds the worker at orm_init's start until the test has killed it.
