"""The stage graph of a run: phase and stage rows, claiming by conditional UPDATE, advancing, reaping.

Workers (Celery tasks) and the in-process driver (`train_run`) share these functions; the database
is the only truth about who works on what. A dispatcher callable decides where a stage runs.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import timedelta

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
    """queued → running; False when the run is not queued (someone started or cancelled it)."""
    now = timezone.now()
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


def claim_stage(stage_id: int, worker: str) -> bool:
    """pending → running; zero rows updated means another worker has it."""
    now = timezone.now()
    with transaction.atomic():
        claimed = StageRun.objects.filter(pk=stage_id, status=StageRun.Status.PENDING).update(
            status=StageRun.Status.RUNNING,
            claimed_by=worker,
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
    return bool(claimed)


def beat(stage_id: int, progress: dict | None = None) -> None:
    """Heartbeat of a working stage (and its run); merges `progress` into the stage's JSON."""
    now = timezone.now()
    fields: dict = {"heartbeat_at": now}
    if progress is not None:
        stage = StageRun.objects.only("progress").get(pk=stage_id)
        fields["progress"] = {**stage.progress, **progress}
    StageRun.objects.filter(pk=stage_id, status=StageRun.Status.RUNNING).update(**fields)
    Run.objects.filter(phases__stages__pk=stage_id).update(heartbeat_at=now)


def complete_stage(stage_id: int, metrics: dict) -> bool:
    """running → done with its metrics; the phase is done when its last stage is."""
    now = timezone.now()
    with transaction.atomic():
        done = StageRun.objects.filter(pk=stage_id, status=StageRun.Status.RUNNING).update(
            status=StageRun.Status.DONE, finished_at=now, heartbeat_at=now, metrics=metrics
        )
        if done:
            phase = StageRun.objects.get(pk=stage_id).phase
            if not phase.stages.exclude(status__in=FINISHED).exists():
                Phase.objects.filter(pk=phase.pk).update(
                    status=Phase.Status.DONE, finished_at=now, stage=""
                )
    return bool(done)


def fail_stage(stage_id: int, error: str) -> None:
    """A stage raised: the stage and its run fail with the message (no automatic retry of bugs)."""
    now = timezone.now()
    with transaction.atomic():
        StageRun.objects.filter(pk=stage_id).update(
            status=StageRun.Status.FAILED, error=error[:10000], finished_at=now
        )
        stage = StageRun.objects.select_related("phase").get(pk=stage_id)
        Phase.objects.filter(pk=stage.phase_id).update(status=Phase.Status.FAILED)
        Run.objects.filter(pk=stage.phase.run_id, status__in=Run.ACTIVE).update(
            status=Run.Status.FAILED,
            finished_at=now,
            last_error=f"phase {stage.phase.index} {stage.name}: {error}"[:10000],
        )


def cancel_requested(run_id: int) -> bool:
    return not Run.objects.filter(pk=run_id, status=Run.Status.RUNNING).exists()


def stop_stage_cancelled(stage_id: int) -> None:
    """A stage that noticed the cancel request stops here; the run ends as cancelled."""
    now = timezone.now()
    stage = StageRun.objects.select_related("phase").get(pk=stage_id)
    StageRun.objects.filter(pk=stage_id, status=StageRun.Status.RUNNING).update(
        status=StageRun.Status.CANCELLED, finished_at=now
    )
    Phase.objects.filter(pk=stage.phase_id).update(status=Phase.Status.CANCELLED)
    finish_cancelled(stage.phase.run_id)


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
    if stage is None:
        Run.objects.filter(pk=run_id, status=Run.Status.RUNNING).update(
            status=Run.Status.SUCCEEDED, finished_at=timezone.now()
        )
        log.info("run %s succeeded", run_id)
        return None
    if stage.status == StageRun.Status.PENDING:
        log.info("run %s: dispatching phase %s %s", run_id, stage.phase.index, stage.name)
        dispatch(stage)
        return stage
    if stage.status in (StageRun.Status.FAILED, StageRun.Status.CANCELLED):
        Run.objects.filter(pk=run_id, status=Run.Status.RUNNING).update(
            status=Run.Status.FAILED,
            finished_at=timezone.now(),
            last_error=f"phase {stage.phase.index} {stage.name} {stage.status}: {stage.error}",
        )
    return None


def reset_stage(stage: StageRun) -> None:
    """running → pending, and a browser stage's unfinished trajectories back to pending."""
    purpose = stage.progress.get("purpose")
    if purpose:  # browser stages and phase 0's demonstrations
        from apps.rollouts.writer import reset_running

        reset_running(stage.phase_id, purpose)
    StageRun.objects.filter(pk=stage.pk, status=StageRun.Status.RUNNING).update(
        status=StageRun.Status.PENDING, claimed_by=""
    )


def reap_stale_stages(stale_after_s: float, dispatch: Dispatch | None = None) -> list[int]:
    """Stages whose workers stopped beating: re-queue them (up to MAX_ATTEMPTS), else fail the run."""
    cutoff = timezone.now() - timedelta(seconds=stale_after_s)
    stale = StageRun.objects.filter(
        status=StageRun.Status.RUNNING, heartbeat_at__lt=cutoff
    ).select_related("phase")
    reaped = []
    for stage in stale:
        if stage.attempts >= MAX_ATTEMPTS:
            fail_stage(
                stage.pk, f"no heartbeat for {stale_after_s:.0f} s after {stage.attempts} attempts"
            )
            reaped.append(stage.pk)
            continue
        log.warning("stage %s (%s) is stale: re-queueing", stage.pk, stage.name)
        reset_stage(stage)
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
