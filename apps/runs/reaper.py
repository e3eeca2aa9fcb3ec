"""Liveness: telling a run that waits from one whose worker died (beat runs `reap` every minute).

A run fails only through its stages: a running stage whose heartbeat went stale is re-queued, and
fails the run after MAX_ATTEMPTS. A stage waiting in a queue is never stale (it has no heartbeat to
lose); if its message is in no queue and no worker holds it, the message was lost and is sent again.
A queued run whose start message was lost is started.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from apps.runs import orchestrator
from apps.runs.models import Run, StageRun

log = logging.getLogger(__name__)


def reap(
    stale_after_s: float | None = None,
    dispatch: orchestrator.Dispatch | None = None,
    in_flight: set[tuple[str, int]] | None = None,
) -> dict[str, list[int]]:
    """One pass: stale and overdue stages, lost stage messages, lost starts, finished cancels.

    `dispatch` None only re-queues (nothing is sent); `in_flight` defaults to reading the broker.
    Returns the ids acted on: {"stages", "resent", "started"}.
    """
    limit = stale_after_s if stale_after_s is not None else settings.RUN_HEARTBEAT_STALE_S
    stages = orchestrator.reap_stale_stages(limit, dispatch)
    if dispatch is None:
        return {"stages": stages, "resent": [], "started": []}
    cutoff = timezone.now() - timedelta(seconds=limit)
    started = []
    for run_id in Run.objects.filter(status=Run.Status.QUEUED, created_at__lt=cutoff).values_list(
        "pk", flat=True
    ):
        log.warning("run %s was queued %.0f s ago and never started: starting it", run_id, limit)
        orchestrator.advance(run_id, dispatch)
        started.append(run_id)
    return {"stages": stages, "resent": resend_lost(limit, dispatch, in_flight), "started": started}


def resend_lost(
    lost_after_s: float,
    dispatch: orchestrator.Dispatch,
    in_flight: set[tuple[str, int]] | None = None,
) -> list[int]:
    """Active runs with no running stage: finish the cancelled, and send again the next stage of
    each run whose message was sent more than `lost_after_s` ago and is no longer in the broker."""
    from apps.runs.dispatch import messages_in_flight, stage_task

    cutoff = timezone.now() - timedelta(seconds=lost_after_s)
    idle = (
        Run.objects.filter(status__in=[Run.Status.RUNNING, Run.Status.CANCELLING])
        .exclude(phases__stages__status=StageRun.Status.RUNNING)
        .values_list("pk", "status")
    )
    resent = []
    for run_id, status in idle:
        if status == Run.Status.CANCELLING:
            orchestrator.advance(run_id, dispatch)
            continue
        stage = orchestrator.next_stage(run_id)
        if stage is None or stage.status != StageRun.Status.PENDING:
            orchestrator.advance(run_id, dispatch)  # finishes or fails it
            continue
        if stage.dispatched_at is not None and stage.dispatched_at > cutoff:
            continue  # sent recently: its worker may be about to claim it
        if in_flight is None:
            try:
                in_flight = messages_in_flight()
            except Exception as exc:  # the broker is down: sending again would not work either
                log.warning("cannot read the broker (%s); lost messages are re-sent later", exc)
                return resent
        if (stage_task(stage), stage.pk) in in_flight:
            continue  # waiting behind other work
        log.warning("run %s: the message of phase %s %s was lost; sending it again",
                    run_id, stage.phase.index, stage.name)  # fmt: skip
        if orchestrator.advance(run_id, dispatch) is not None:
            resent.append(stage.pk)
    return resent
