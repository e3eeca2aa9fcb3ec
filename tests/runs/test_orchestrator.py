"""Stages are claimed once, run in order, re-queued when stale, and stop on cancel."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.rollouts.models import Step, Trajectory
from apps.rollouts.writer import claim_next, prepare_trajectories, write_step
from apps.runs import orchestrator as orch
from apps.runs.models import Phase, Run, StageRun
from apps.runs.services import cancel_run
from tests.runs.helpers import make_run, make_tasks, tiny_config
from tests.runs.test_writer import _record

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(owner):
    return make_run(owner, tiny_config(phases=1))


def _finish(stage: StageRun) -> None:
    token = orch.claim_stage(stage.pk, "w")
    assert token
    assert orch.complete_stage(stage.pk, token, {"ok": 1})


def test_starting_a_run_creates_every_phase_and_stage_once(run):
    assert orch.start_run(run.pk)
    assert not orch.start_run(run.pk)
    orch.ensure_phases(run)
    names = [
        (s.phase.index, s.name)
        for s in StageRun.objects.filter(phase__run=run).order_by("phase__index", "order")
    ]
    assert names[:2] == [(0, "sft"), (0, "rollout")]
    assert names[-1] == (1, "eval")
    assert len(names) == 5 + 6


def test_a_stage_is_claimed_by_one_worker_only(run):
    orch.start_run(run.pk)
    stage = orch.next_stage(run.pk)
    assert orch.claim_stage(stage.pk, "a")
    assert not orch.claim_stage(stage.pk, "b")
    stage.refresh_from_db()
    assert stage.claimed_by == "a" and stage.attempts == 1 and stage.status == "running"


def test_advancing_dispatches_stages_in_order_and_finishes_the_run(run):
    sent = []
    orch.advance(run.pk, sent.append)
    assert [s.name for s in sent] == ["sft"]
    while sent:
        _finish(sent.pop())
        orch.advance(run.pk, sent.append)
    run.refresh_from_db()
    assert run.status == Run.Status.SUCCEEDED
    assert set(Phase.objects.filter(run=run).values_list("status", flat=True)) == {"done"}


def test_advancing_while_a_stage_runs_dispatches_nothing(run):
    sent = []
    orch.advance(run.pk, sent.append)
    orch.claim_stage(sent[0].pk, "w")
    orch.advance(run.pk, sent.append)
    assert len(sent) == 1


def test_a_failed_stage_fails_the_run_with_its_message(run):
    sent = []
    orch.advance(run.pk, sent.append)
    token = orch.claim_stage(sent[0].pk, "w")
    orch.fail_stage(sent[0].pk, token, "StageError: no demonstrations")
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED
    assert "phase 0 sft: StageError: no demonstrations" in run.last_error


def test_cancel_ends_the_run_once_the_running_stage_stops(run, owner):
    sent = []
    orch.advance(run.pk, sent.append)
    token = orch.claim_stage(sent[0].pk, "w")
    assert cancel_run(run, owner)
    assert orch.cancel_requested(run.pk)
    orch.advance(run.pk, sent.append)  # the stage is still running: nothing happens yet
    run.refresh_from_db()
    assert run.status == Run.Status.CANCELLING
    orch.stop_stage_cancelled(sent[0].pk, token)
    run.refresh_from_db()
    assert run.status == Run.Status.CANCELLED
    assert not StageRun.objects.filter(phase__run=run, status__in=["pending", "running"]).exists()


def test_a_stale_stage_is_requeued_with_its_unfinished_trajectories_reset(run, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    sent = []
    orch.advance(run.pk, sent.append)
    _finish(sent.pop())
    orch.advance(run.pk, sent.append)
    rollout = sent.pop()
    assert rollout.name == "rollout"
    token = orch.claim_stage(rollout.pk, "dead")
    tasks = make_tasks(2, 0)
    prepare_trajectories(run.pk, rollout.phase_id, "train", [t.pk for t in tasks])
    orch.beat(rollout.pk, token, {"purpose": "train"})
    traj = claim_next(rollout.phase_id, "train", "dead")
    write_step(traj.pk, traj.token, _record(0))
    StageRun.objects.filter(pk=rollout.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))

    reaped = orch.reap_stale_stages(60, sent.append)

    assert reaped == [rollout.pk]
    assert [s.pk for s in sent] == [rollout.pk]
    assert Trajectory.objects.get(pk=traj.pk).status == "pending"
    assert not Step.objects.filter(trajectory=traj).exists()
    assert Trajectory.objects.filter(phase_id=rollout.phase_id).count() == 2


def test_a_stage_stale_too_often_fails_the_run(run):
    sent = []
    orch.advance(run.pk, sent.append)
    StageRun.objects.filter(pk=sent[0].pk).update(
        status="running",
        attempts=orch.MAX_ATTEMPTS,
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )
    orch.reap_stale_stages(60, sent.append)
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED and "attempts" in run.last_error


def test_resuming_a_failed_run_continues_from_its_last_completed_stage(run):
    sent = []
    orch.advance(run.pk, sent.append)
    _finish(sent.pop())
    orch.advance(run.pk, sent.append)
    token = orch.claim_stage(sent[0].pk, "w")
    orch.fail_stage(sent.pop().pk, token, "worker lost")
    orch.resume_run(run.pk)
    orch.advance(run.pk, sent.append)
    run.refresh_from_db()
    assert run.status == Run.Status.RUNNING
    assert [(s.phase.index, s.name) for s in sent] == [(0, "rollout")]
    assert StageRun.objects.get(phase__run=run, phase__index=0, name="sft").status == "done"
