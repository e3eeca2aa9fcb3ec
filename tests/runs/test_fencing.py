"""Stage and trajectory claims carry an attempt token: a stale worker's writes are refused and logged."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from apps.rollouts.models import Step, Trajectory
from apps.rollouts.writer import (
    beat_trajectories,
    claim_next,
    fail_trajectory,
    finish_trajectory,
    prepare_trajectories,
    reset_running,
    write_step,
)
from apps.runs import orchestrator as orch
from apps.runs import runner
from apps.runs.models import Phase, Run, StageRun
from tests.runs.helpers import make_run, make_tasks, tiny_config
from tests.runs.test_writer import _record, _result

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(owner):
    return make_run(owner, tiny_config(phases=1))


def _first_stage(run) -> StageRun:
    sent: list[StageRun] = []
    orch.advance(run.pk, sent.append)
    return sent[0]


def _reclaim(stage: StageRun, worker: str) -> str:
    """What the reaper does to a stage that looks dead, then a new worker claims it."""
    StageRun.objects.filter(pk=stage.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert orch.reap_stale_stages(60) == [stage.pk]
    token = orch.claim_stage(stage.pk, worker)
    assert token
    return token


def test_a_claim_hands_out_a_new_token_every_attempt(run):
    stage = _first_stage(run)
    first = orch.claim_stage(stage.pk, "host:1")
    second = _reclaim(stage, "host:1")
    assert first and second and first != second
    stage.refresh_from_db()
    assert stage.token == second and stage.attempts == 2


def test_a_stale_worker_cannot_beat_complete_or_fail_the_new_attempt(run, caplog):
    stage = _first_stage(run)
    old = orch.claim_stage(stage.pk, "host:1")
    new = _reclaim(stage, "host:1")  # same worker id: only the token tells them apart
    caplog.set_level(logging.WARNING, logger="apps.runs.orchestrator")

    assert not orch.beat(stage.pk, old, {"step": 99})
    assert not orch.complete_stage(stage.pk, old, {"loss": 1.0})
    assert not orch.fail_stage(stage.pk, old, "boom from the past")

    stage.refresh_from_db()
    run.refresh_from_db()
    assert stage.status == "running" and stage.token == new and "step" not in stage.progress
    assert run.status == Run.Status.RUNNING and run.last_error == ""
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 3, refused
    assert orch.beat(stage.pk, new, {"step": 1})
    assert orch.complete_stage(stage.pk, new, {"loss": 0.5})


def test_a_stale_worker_cannot_cancel_the_new_attempt(run, owner):
    from apps.runs.services import cancel_run

    stage = _first_stage(run)
    old = orch.claim_stage(stage.pk, "a")
    _reclaim(stage, "b")
    cancel_run(run, owner)
    assert not orch.stop_stage_cancelled(stage.pk, old)
    assert StageRun.objects.get(pk=stage.pk).status == "running"


def test_a_reset_trajectory_refuses_its_old_claimant_even_under_the_same_worker_id(
    owner, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    run = make_run(owner, tiny_config())
    phase = Phase.objects.create(run=run, index=1)
    (task,) = make_tasks(1, 0)
    prepare_trajectories(run.pk, phase.pk, "train", [task.pk])
    old = claim_next(phase.pk, "train", "host:1")
    assert write_step(old.pk, old.token, _record(0))
    reset_running(phase.pk, "train")
    new = claim_next(phase.pk, "train", "host:1")
    assert new.pk == old.pk and new.token != old.token

    assert not write_step(old.pk, old.token, _record(1))
    assert not finish_trajectory(old.pk, old.token, _result(2))
    assert not fail_trajectory(old.pk, old.token, "from the past")
    assert write_step(new.pk, new.token, _record(0))
    assert list(Step.objects.filter(trajectory=new).values_list("index", flat=True)) == [0]
    assert Trajectory.objects.get(pk=new.pk).status == "running"


def test_a_live_episode_in_a_slow_step_is_not_taken_as_an_orphan(owner):
    run = make_run(owner, tiny_config())
    phase = Phase.objects.create(run=run, index=1)
    tasks = make_tasks(2, 0)
    prepare_trajectories(run.pk, phase.pk, "train", [t.pk for t in tasks])
    slow = claim_next(phase.pk, "train", "host:1:s0.0")
    dead = claim_next(phase.pk, "train", "host:2:s0.0")
    long_ago = timezone.now() - timedelta(minutes=10)
    Trajectory.objects.filter(pk__in=[slow.pk, dead.pk]).update(
        started_at=long_ago, heartbeat_at=long_ago
    )
    # No step for ten minutes (the policy is slow), but its shard still beats for it.
    assert beat_trajectories([(slow.pk, slow.token)]) == 1
    assert reset_running(phase.pk, "train", older_than_s=60) == 1
    assert Trajectory.objects.get(pk=slow.pk).status == "running"
    assert Trajectory.objects.get(pk=dead.pk).status == "pending"


def test_each_slot_of_a_shard_has_its_own_worker_id():
    from apps.runs.browser_stage import slot_worker

    ids = {slot_worker("host:7", shard, slot) for shard in range(2) for slot in range(3)}
    assert len(ids) == 6 and all(i.startswith("host:7:") for i in ids)


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_thread_survives_database_errors(run, monkeypatch):
    stage = _first_stage(run)
    token = orch.claim_stage(stage.pk, "w")
    real_beat = orch.beat
    calls = {"n": 0}

    def flaky_beat(stage_id, tok, progress=None):
        calls["n"] += 1
        if calls["n"] <= 2:
            raise OperationalError("server closed the connection unexpectedly")
        return real_beat(stage_id, tok, progress)

    monkeypatch.setattr(orch, "beat", flaky_beat)
    StageRun.objects.filter(pk=stage.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    done = threading.Event()
    thread = threading.Thread(target=runner._beat_until, args=(stage.pk, token, done, 0.05))
    thread.start()
    deadline = time.time() + 20
    while calls["n"] < 4 and time.time() < deadline:
        time.sleep(0.05)
    alive = thread.is_alive()
    done.set()
    thread.join(5)
    assert alive and calls["n"] >= 4
    stage.refresh_from_db()
    assert stage.heartbeat_at > timezone.now() - timedelta(minutes=1)


def test_a_stage_past_its_hard_time_limit_is_failed_by_the_reaper(run, settings):
    settings.STAGE_TIME_LIMIT_S = 60
    stage = _first_stage(run)
    token = orch.claim_stage(stage.pk, "w")
    StageRun.objects.filter(pk=stage.pk).update(started_at=timezone.now() - timedelta(minutes=5))
    assert orch.beat(stage.pk, token)  # alive, beating, and still over its limit
    assert orch.reap_stale_stages(300) == [stage.pk]
    stage.refresh_from_db()
    run.refresh_from_db()
    assert stage.status == "failed" and "time limit" in stage.error
    assert run.status == Run.Status.FAILED and "time limit" in run.last_error
    assert not orch.complete_stage(stage.pk, token, {})


def test_a_training_stage_that_overruns_its_time_limit_fails_instead_of_completing(
    run, settings, monkeypatch
):
    from apps.runs import stages

    settings.STAGE_TIME_LIMIT_S = 1

    def slow_sft(ctx):
        deadline = time.time() + 10
        while not ctx.should_stop() and time.time() < deadline:
            time.sleep(0.05)
        return {}

    monkeypatch.setitem(stages.TRAINING_STAGES, "sft", slow_sft)
    monkeypatch.setattr(runner, "TRAINING_STAGES", stages.TRAINING_STAGES)
    stage = _first_stage(run)
    started = time.time()
    runner.execute_stage(stage.pk, lambda s: None, "w")
    stage.refresh_from_db()
    assert stage.status == "failed" and "time limit" in stage.error
    assert time.time() - started < 9  # stopped by the limit, not by the stage's own deadline
