"""The stage graph of a run: phase and stage rows, claiming by conditional UPDATE, advancing, reaping.

Workers (Celery tasks) and the in-process driver (`train_run`) share these functions; the database
is the only truth about who works on what. A dispatcher callable decides where a stage runs.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.runs.models import Phase, Run, StageRun
from trainer.config import RunConfig
from trainer.phase import phase_stages

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
FINISHED = (StageRun.Status.DONE, StageRun.Status.SKIPPED)
Dispatch = Callable[[StageRun], None]


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def new_token() -> str:
    return uuid.uuid4().hex


def run_config(run: Run) -> RunConfig:
    return RunConfig.from_dict(run.config)


def ensure_phases(run: Run) -> None:
    """Create the Phase and StageRun rows of the whole run (idempotent)."""
    config = run_config(run)
    for index in range(config.run.phases + 1):
        phase, _ = Phase.objects.get_or_create(run=run, index=index)
        for order, name in enumerate(phase_stages(index, config.run.phases)):
            StageRun.objects.get_or_create(phase=phase, name=name, defaults={"order": order})


def start_run(run_id: int) -> bool:
    """queued → running with every phase and stage created, in one transaction; False when the
    run is not queued (someone started or cancelled it)."""
    now = timezone.now()
    with transaction.atomic():
        started = Run.objects.filter(pk=run_id, status=Run.Status.QUEUED).update(
            status=Run.Status.RUNNING, started_at=now, heartbeat_at=now
        )
        if started:
            ensure_phases(Run.objects.get(pk=run_id))
    return bool(started)


def next_stage(run_id: int) -> StageRun | None:
    """The first stage of the run (phase by phase, in order) that is not finished."""
    return (
        StageRun.objects.filter(phase__run_id=run_id)
        .exclude(status__in=FINISHED)
        .select_related("phase", "phase__run")
        .order_by("phase__index", "order")
        .first()
    )


def claim_stage(stage_id: int, worker: str) -> str | None:
    """pending → running; returns the claim's token, None when another worker has it."""
    now = timezone.now()
    token = new_token()
    with transaction.atomic():
        claimed = StageRun.objects.filter(pk=stage_id, status=StageRun.Status.PENDING).update(
            status=StageRun.Status.RUNNING,
            claimed_by=worker,
            token=token,
            heartbeat_at=now,
            started_at=now,
            finished_at=None,
            error="",
            attempts=F("attempts") + 1,
        )
        if claimed:
            stage = StageRun.objects.select_related("phase").get(pk=stage_id)
            Phase.objects.filter(pk=stage.phase_id).update(stage=stage.name)
            Phase.objects.filter(pk=stage.phase_id, status=Phase.Status.PENDING).update(
                status=Phase.Status.RUNNING, started_at=now
            )
            Run.objects.filter(pk=stage.phase.run_id).update(heartbeat_at=now)
    return token if claimed else None


def held(stage_id: int, token: str | None):
    """The stage's row while the claim `token` still holds it (empty otherwise)."""
    return StageRun.objects.filter(pk=stage_id, status=StageRun.Status.RUNNING, token=token or "")


def _refused(what: str, stage_id: int, token: str | None) -> None:
    current = StageRun.objects.filter(pk=stage_id).values_list("status", "token").first()
    log.warning(
        "stale %s refused: stage %s, token %s (the stage is %s with token %s)",
        what, stage_id, (token or "")[:8], *(current or ("gone", "")),
    )  # fmt: skip


def beat(stage_id: int, token: str | None, progress: dict | None = None) -> bool:
    """Heartbeat of a working stage (and its run); merges `progress` into the stage's JSON.
    False (and nothing written) when `token` no longer holds the stage."""
    now = timezone.now()
    with transaction.atomic():
        stage = held(stage_id, token).select_for_update().only("progress", "phase").first()
        if stage is None:
            _refused("beat", stage_id, token)
            return False
        fields: dict = {"heartbeat_at": now}
        if progress is not None:
            fields["progress"] = {**stage.progress, **progress}
        held(stage_id, token).update(**fields)
        Run.objects.filter(phases__stages__pk=stage_id).update(heartbeat_at=now)
    return True


def complete_stage(stage_id: int, token: str | None, metrics: dict) -> bool:
    """running → done with its metrics; the phase is done when its last stage is."""
    now = timezone.now()
    with transaction.atomic():
        done = held(stage_id, token).update(
            status=StageRun.Status.DONE, finished_at=now, heartbeat_at=now, metrics=metrics
        )
        if done:
            phase = StageRun.objects.get(pk=stage_id).phase
            if not phase.stages.exclude(status__in=FINISHED).exists():
                Phase.objects.filter(pk=phase.pk).update(
                    status=Phase.Status.DONE, finished_at=now, stage=""
                )
    if not done:
        _refused("completion", stage_id, token)
    return bool(done)


def fail_stage(stage_id: int, token: str | None, error: str) -> bool:
    """A stage raised: the stage and its run fail with the message (no automatic retry of bugs).
    Refused (False) when `token` no longer holds the stage."""
    now = timezone.now()
    with transaction.atomic():
        failed = held(stage_id, token).update(
            status=StageRun.Status.FAILED, error=error[:10000], finished_at=now
        )
        if failed:
            stage = StageRun.objects.select_related("phase").get(pk=stage_id)
            Phase.objects.filter(pk=stage.phase_id).update(status=Phase.Status.FAILED)
            Run.objects.filter(pk=stage.phase.run_id, status__in=Run.ACTIVE).update(
                status=Run.Status.FAILED,
                finished_at=now,
                last_error=f"phase {stage.phase.index} {stage.name}: {error}"[:10000],
            )
    if not failed:
        _refused("failure", stage_id, token)
    return bool(failed)


def cancel_requested(run_id: int) -> bool:
    return not Run.objects.filter(pk=run_id, status=Run.Status.RUNNING).exists()


def stop_stage_cancelled(stage_id: int, token: str | None) -> bool:
    """A stage that noticed the cancel request stops here; the run ends as cancelled."""
    now = timezone.now()
    stopped = held(stage_id, token).update(status=StageRun.Status.CANCELLED, finished_at=now)
    if not stopped:
        _refused("cancellation", stage_id, token)
        return False
    stage = StageRun.objects.select_related("phase").get(pk=stage_id)
    Phase.objects.filter(pk=stage.phase_id).update(status=Phase.Status.CANCELLED)
    finish_cancelled(stage.phase.run_id)
    return True


def finish_cancelled(run_id: int) -> bool:
    now = timezone.now()
    done = Run.objects.filter(pk=run_id, status=Run.Status.CANCELLING).update(
        status=Run.Status.CANCELLED, finished_at=now
    )
    if done:
        StageRun.objects.filter(
            phase__run_id=run_id, status__in=[StageRun.Status.PENDING, StageRun.Status.RUNNING]
        ).update(status=StageRun.Status.CANCELLED)
        Phase.objects.filter(
            run_id=run_id, status__in=[Phase.Status.PENDING, Phase.Status.RUNNING]
        ).update(status=Phase.Status.CANCELLED)
    return bool(done)


def advance(run_id: int, dispatch: Dispatch) -> StageRun | None:
    """Move the run on: dispatch its next pending stage, or finish it. Safe to call any time."""
    run = Run.objects.filter(pk=run_id).first()
    if run is None:
        return None
    if run.status == Run.Status.QUEUED:
        start_run(run_id)
        run.refresh_from_db()
    if run.status == Run.Status.CANCELLING:
        if not StageRun.objects.filter(
            phase__run_id=run_id, status=StageRun.Status.RUNNING
        ).exists():
            finish_cancelled(run_id)
        return None
    if run.status != Run.Status.RUNNING:
        return None
    stage = next_stage(run_id)
    if stage is None and not StageRun.objects.filter(phase__run_id=run_id).exists():
        ensure_phases(run)  # started before start-up was one transaction, and crashed half-way
        stage = next_stage(run_id)
    if stage is None:
        Run.objects.filter(pk=run_id, status=Run.Status.RUNNING).update(
            status=Run.Status.SUCCEEDED, finished_at=timezone.now()
        )
        log.info("run %s succeeded", run_id)
        return None
    if stage.status == StageRun.Status.PENDING:
        log.info("run %s: dispatching phase %s %s", run_id, stage.phase.index, stage.name)
        StageRun.objects.filter(pk=stage.pk).update(dispatched_at=timezone.now())
        dispatch(stage)
        return stage
    if stage.status in (StageRun.Status.FAILED, StageRun.Status.CANCELLED):
        Run.objects.filter(pk=run_id, status=Run.Status.RUNNING).update(
            status=Run.Status.FAILED,
            finished_at=timezone.now(),
            last_error=f"phase {stage.phase.index} {stage.name} {stage.status}: {stage.error}",
        )
    return None


def reset_stage(stage: StageRun) -> bool:
    """running → pending, and a browser stage's unfinished trajectories back to pending, in one
    transaction; only while `stage.token` still holds it (False otherwise)."""
    with transaction.atomic():
        row = held(stage.pk, stage.token).select_for_update().only("progress").first()
        if row is None:
            return False
        purpose = row.progress.get("purpose")
        if purpose:  # browser stages and phase 0's demonstrations
            from apps.rollouts.writer import reset_running

            reset_running(stage.phase_id, purpose)
        held(stage.pk, stage.token).update(
            status=StageRun.Status.PENDING, claimed_by="", token="", dispatched_at=None
        )
    return True


def time_limit_s() -> float:
    return float(settings.STAGE_TIME_LIMIT_S)


def reap_stale_stages(stale_after_s: float, dispatch: Dispatch | None = None) -> list[int]:
    """Stages whose workers stopped beating: re-queue them (up to MAX_ATTEMPTS), else fail the run.
    A stage running for longer than STAGE_TIME_LIMIT_S fails, beating or not."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=stale_after_s)
    reaped = []
    overdue = StageRun.objects.filter(
        status=StageRun.Status.RUNNING, started_at__lt=now - timedelta(seconds=time_limit_s())
    )
    for stage in overdue:
        if fail_stage(
            stage.pk, stage.token, f"over the stage time limit of {time_limit_s():.0f} s"
        ):
            reaped.append(stage.pk)
    stale = StageRun.objects.filter(
        status=StageRun.Status.RUNNING, heartbeat_at__lt=cutoff
    ).select_related("phase")
    for stage in stale:
        if stage.attempts >= MAX_ATTEMPTS:
            why = f"no heartbeat for {stale_after_s:.0f} s after {stage.attempts} attempts"
            if fail_stage(stage.pk, stage.token, why):
                reaped.append(stage.pk)
            continue
        log.warning("stage %s (%s) is stale: re-queueing", stage.pk, stage.name)
        if not reset_stage(stage):
            continue  # it beat, finished or was reset meanwhile
        Run.objects.filter(pk=stage.phase.run_id).update(heartbeat_at=timezone.now())
        reaped.append(stage.pk)
        if dispatch is not None:
            advance(stage.phase.run_id, dispatch)
    return reaped


def resume_run(run_id: int) -> None:
    """Make a stopped run (failed, or running with dead workers) continue from its last done stage."""
    with transaction.atomic():
        for stage in StageRun.objects.filter(
            phase__run_id=run_id,
            status__in=[StageRun.Status.RUNNING, StageRun.Status.FAILED, StageRun.Status.CANCELLED],
        ).select_related("phase"):
            StageRun.objects.filter(pk=stage.pk).update(status=StageRun.Status.RUNNING)
            stage.status = StageRun.Status.RUNNING
            reset_stage(stage)
        Phase.objects.filter(
            run_id=run_id, status__in=[Phase.Status.FAILED, Phase.Status.CANCELLED]
        ).update(status=Phase.Status.RUNNING)
        Run.objects.filter(pk=run_id).exclude(status=Run.Status.QUEUED).update(
            status=Run.Status.RUNNING, finished_at=None, last_error="", heartbeat_at=timezone.now()
        )
