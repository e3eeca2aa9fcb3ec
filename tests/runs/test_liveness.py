"""The reaper tells waiting from dead: it fails only runs with a stale running stage, re-sends
stages whose message was lost, starts queued runs whose start was lost; start-up is atomic."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from apps.runs import dispatch as dispatching
from apps.runs import orchestrator as orch
from apps.runs import reaper
from apps.runs.models import Phase, Run, StageRun
from tests.runs.helpers import make_run, tiny_config

pytestmark = pytest.mark.django_db

LONG_AGO = timedelta(hours=1)


@pytest.fixture
def broker(settings):
    """The test's own Redis database as the broker, emptied before and after."""
    url = os.environ.get("REDIS_URL", settings.REDIS_URL)
    client = redis.Redis.from_url(url)
    for key in client.keys("*"):
        if client.type(key) == b"list" or key == b"unacked":
            client.delete(key)
    yield client
    for key in client.keys("*"):
        if client.type(key) == b"list" or key == b"unacked":
            client.delete(key)


@pytest.fixture
def run(owner):
    return make_run(owner, tiny_config(phases=1))


def _dispatched(run) -> StageRun:
    sent: list[StageRun] = []
    orch.advance(run.pk, sent.append)
    return StageRun.objects.get(pk=sent[0].pk)


def test_a_run_whose_stage_waits_in_the_queue_is_not_failed(run):
    stage = _dispatched(run)
    # The gpu worker is busy with another run's stage for an hour: nothing beats this run.
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - LONG_AGO)
    StageRun.objects.filter(pk=stage.pk).update(dispatched_at=timezone.now() - timedelta(seconds=5))
    reaper.reap(300, dispatch=[].append, in_flight=set())
    run.refresh_from_db()
    assert run.status == Run.Status.RUNNING and run.last_error == ""


def test_a_run_with_a_stale_running_stage_is_failed_after_its_last_attempt(run):
    stage = _dispatched(run)
    token = orch.claim_stage(stage.pk, "w")
    StageRun.objects.filter(pk=stage.pk).update(
        attempts=orch.MAX_ATTEMPTS, heartbeat_at=timezone.now() - LONG_AGO
    )
    result = reaper.reap(300, dispatch=[].append, in_flight=set())
    run.refresh_from_db()
    assert result["stages"] == [stage.pk]
    assert run.status == Run.Status.FAILED and "no heartbeat" in run.last_error
    assert not orch.complete_stage(stage.pk, token, {})


def test_a_pending_stage_whose_message_was_lost_is_sent_again(run, broker):
    stage = _dispatched(run)  # sent to a list that no broker holds: the message is lost
    StageRun.objects.filter(pk=stage.pk).update(dispatched_at=timezone.now() - LONG_AGO)
    sent: list[StageRun] = []
    result = reaper.reap(300, dispatch=sent.append)
    assert [s.pk for s in sent] == [stage.pk] and result["resent"] == [stage.pk]
    stage.refresh_from_db()
    assert stage.dispatched_at > timezone.now() - timedelta(minutes=1)
    # Sent again just now: the next sweep leaves it alone.
    assert reaper.reap(300, dispatch=sent.append)["resent"] == []


def test_a_stage_whose_message_still_waits_in_the_broker_is_not_sent_twice(run, broker):
    stage = _dispatched(run)
    dispatching.dispatch(stage)  # a real message in the real broker's gpu list, no worker on it
    assert ("apps.runs.tasks.run_gpu_stage", stage.pk) in dispatching.messages_in_flight()
    StageRun.objects.filter(pk=stage.pk).update(dispatched_at=timezone.now() - LONG_AGO)
    sent: list[StageRun] = []
    assert reaper.reap(300, dispatch=sent.append)["resent"] == []
    assert sent == []


def test_a_queued_run_whose_start_message_was_lost_is_started(run, broker):
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - LONG_AGO)
    sent: list[StageRun] = []
    result = reaper.reap(300, dispatch=sent.append)
    run.refresh_from_db()
    assert result["started"] == [run.pk] and run.status == Run.Status.RUNNING
    assert [s.name for s in sent] == ["sft"]


def test_a_just_launched_run_is_left_to_its_start_message(run, broker):
    sent: list[StageRun] = []
    assert reaper.reap(300, dispatch=sent.append)["started"] == []
    run.refresh_from_db()
    assert run.status == Run.Status.QUEUED and sent == []


def test_start_up_is_one_transaction(run, monkeypatch):
    real = orch.ensure_phases

    def crash_half_way(r):
        Phase.objects.create(run=r, index=0)
        raise RuntimeError("worker lost between the status and the phases")

    monkeypatch.setattr(orch, "ensure_phases", crash_half_way)
    with pytest.raises(RuntimeError):
        orch.start_run(run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.QUEUED and not Phase.objects.filter(run=run).exists()
    monkeypatch.setattr(orch, "ensure_phases", real)
    sent: list[StageRun] = []
    orch.advance(run.pk, sent.append)
    assert [s.name for s in sent] == ["sft"]


def test_a_running_run_without_stages_is_not_declared_a_success(run):
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING)  # a crash before this fix
    sent: list[StageRun] = []
    orch.advance(run.pk, sent.append)
    run.refresh_from_db()
    assert run.status == Run.Status.RUNNING and [s.name for s in sent] == ["sft"]


def test_a_cancelling_run_with_nothing_running_is_finished_by_the_sweep(run, owner):
    from apps.runs.services import cancel_run

    _dispatched(run)
    cancel_run(run, owner)
    reaper.reap(300, dispatch=[].append, in_flight=set())
    run.refresh_from_db()
    assert run.status == Run.Status.CANCELLED
