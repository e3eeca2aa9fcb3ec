"""Persisting episodes as Trajectory and Step rows (+ screenshot files), idempotently.

A trajectory row exists (pending) before its episode runs; a worker claims it pending → running,
writes steps as they happen and finishes it. Each claim has a token that every write must present,
so a worker whose claim was reset writes nothing. A row whose shard stopped beating for it is reset:
partial steps deleted.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import timedelta

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Exists, F, Q
from django.utils import timezone

from apps.rollouts.models import Step, Trajectory, screenshot_path

_STATUS = {
    "ok": Trajectory.Status.OK,
    "error": Trajectory.Status.ERROR,
    "timeout": Trajectory.Status.TIMEOUT,
    "cancelled": Trajectory.Status.CANCELLED,
}
log = logging.getLogger(__name__)


def pg_text(value: str | None) -> str | None:
    """Text Postgres can store: a model may emit NUL characters, which text columns refuse; each
    becomes U+FFFD (the token ids keep what was really sampled)."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


def prepare_trajectories(
    run_id: int,
    phase_id: int,
    purpose: str,
    task_ids: Iterable[int],
    samples: int = 1,
    checkpoint_id: int | None = None,
) -> int:
    """Create the pending rows of a stage (one per task and sample); existing rows stay as they are."""
    rows = [
        Trajectory(
            run_id=run_id,
            phase_id=phase_id,
            purpose=purpose,
            task_id=task_id,
            sample_index=i,
            checkpoint_id=checkpoint_id,
        )
        for task_id in task_ids
        for i in range(samples)
    ]
    Trajectory.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    return Trajectory.objects.filter(phase_id=phase_id, purpose=purpose).count()


def claim_next(
    phase_id: int,
    purpose: str,
    worker: str,
    shard: int = 0,
    shards: int = 1,
    *,
    stage: tuple[int, str] | None = None,
):
    """Take one pending trajectory (pending → running), this shard's first, or return None.

    The returned row's `token` fences every later write of this claim. Shards split by task id so
    workers rarely race; once a shard's own rows are gone it takes any other pending row (a dead
    shard's leftovers). The conditional update settles races. With `stage=(id, token)` nothing is
    claimed unless that stage claim still holds (a stale shard takes no new work).
    """
    pending = Trajectory.objects.filter(
        phase_id=phase_id, purpose=purpose, status=Trajectory.Status.PENDING
    ).order_by("task_id", "sample_index")
    rows = list(pending.values_list("pk", "task_id")[:200])
    mine = [pk for pk, task_id in rows if shards <= 1 or task_id % shards == shard]
    others = [pk for pk, task_id in rows if pk not in set(mine)]
    for pk in mine + others:
        token = uuid.uuid4().hex
        now = timezone.now()
        qs = Trajectory.objects.filter(pk=pk, status=Trajectory.Status.PENDING)
        if stage is not None:
            from apps.runs.models import StageRun

            qs = qs.filter(
                Exists(
                    StageRun.objects.filter(
                        pk=stage[0], status=StageRun.Status.RUNNING, token=stage[1] or "-"
                    )
                )
            )
        taken = qs.update(
            status=Trajectory.Status.RUNNING,
            claimed_by=worker,
            token=token,
            started_at=now,
            heartbeat_at=now,
            attempts=F("attempts") + 1,
        )
        if taken:
            return Trajectory.objects.select_related("task").get(pk=pk)
        if stage is not None and not _stage_holds(stage):
            return None
    return None


def _stage_holds(stage: tuple[int, str]) -> bool:
    from apps.runs.models import StageRun

    return StageRun.objects.filter(
        pk=stage[0], status=StageRun.Status.RUNNING, token=stage[1] or "-"
    ).exists()


def _held(trajectory_id: int, token: str | None):
    return Trajectory.objects.filter(
        pk=trajectory_id, status=Trajectory.Status.RUNNING, token=token or "-"
    )


def _refused(what: str, trajectory_id: int, token: str | None) -> None:
    current = Trajectory.objects.filter(pk=trajectory_id).values_list("status", "claimed_by")
    log.warning(
        "stale %s refused: trajectory %s, token %s (now %s)",
        what, trajectory_id, (token or "")[:8], current.first() or "gone",
    )  # fmt: skip


def beat_trajectories(claims: Iterable[tuple[int, str]]) -> int:
    """Heartbeat of the episodes a shard is running: (trajectory id, token) pairs; returns how
    many are still held. A live episode is never taken as an orphan, however slow its steps."""
    claims = list(claims)
    if not claims:
        return 0
    held = Q()
    for pk, token in claims:
        held |= Q(pk=pk, token=token or "-")
    return Trajectory.objects.filter(held, status=Trajectory.Status.RUNNING).update(
        heartbeat_at=timezone.now()
    )


def reset_running(phase_id: int, purpose: str, older_than_s: float | None = None) -> int:
    """Put running trajectories back to pending and delete their partial steps.

    With `older_than_s`, only orphans: no heartbeat from their shard for that long.
    """
    qs = Trajectory.objects.filter(
        phase_id=phase_id, purpose=purpose, status=Trajectory.Status.RUNNING
    )
    if older_than_s is not None:
        cutoff = timezone.now() - timedelta(seconds=older_than_s)
        qs = qs.filter(
            Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
        )
    reset = 0
    for pk, token in list(qs.values_list("pk", "token")):
        if release_trajectory(pk, token):
            reset += 1
    return reset


def release_trajectory(trajectory_id: int, token: str | None) -> bool:
    """running → pending with its partial steps deleted, while `token` holds it (its episode is
    to run again: its worker died, lost its world instance, or its browser crashed)."""
    with transaction.atomic():
        updated = _held(trajectory_id, token).update(
            status=Trajectory.Status.PENDING,
            claimed_by="",
            token="",
            started_at=None,
            heartbeat_at=None,
            step_count=0,
        )
        if updated:
            _delete_steps(Step.objects.filter(trajectory_id=trajectory_id))
    return bool(updated)


def _delete_steps(steps) -> None:
    for name in steps.exclude(screenshot="").values_list("screenshot", flat=True):
        if name:
            default_storage.delete(name)
    steps.delete()


def write_step(trajectory_id: int, token: str | None, record) -> bool:
    """Store one StepRecord while the episode runs; False when the claim was lost (stop writing)."""
    with transaction.atomic():
        owned = _held(trajectory_id, token).select_for_update().exists()
        if not owned:
            _refused("step", trajectory_id, token)
            return False
        _upsert_step(trajectory_id, record, token)
        Trajectory.objects.filter(pk=trajectory_id).update(
            step_count=record.index + 1, heartbeat_at=timezone.now()
        )
    return True


def _upsert_step(trajectory_id: int, record, token: str | None = None) -> Step:
    step, _ = Step.objects.update_or_create(
        trajectory_id=trajectory_id,
        index=record.index,
        defaults={
            "observation": pg_text(record.observation),
            "response": pg_text(record.response),
            "token_ids": list(record.token_ids) if record.token_ids else None,
            "action": json_for_postgres(record.action),
            "url": pg_text(record.url),
            "error": pg_text(record.error or ""),
            "elapsed_ms": record.elapsed_ms,
            "claim": token or "",
        },
    )
    if record.screenshot:
        name = screenshot_path(step, "")
        if default_storage.exists(name):
            default_storage.delete(name)
        step.screenshot.save(name, ContentFile(record.screenshot), save=True)
    return step


def finish_trajectory(trajectory_id: int, token: str | None, result) -> bool:
    """Write the whole EpisodeResult (steps the live writer missed included) and close the row.

    Returns False, writing nothing, when this claim (`token`) no longer holds the row.
    """
    with transaction.atomic():
        traj = _held(trajectory_id, token).select_for_update().first()
        if traj is None:
            _refused("finish", trajectory_id, token)
            return False
        have = set(Step.objects.filter(trajectory_id=trajectory_id).values_list("index", flat=True))
        for record in result.steps:
            if record.index not in have:
                _upsert_step(trajectory_id, record, token)
        _delete_steps(
            Step.objects.filter(trajectory_id=trajectory_id, index__gte=len(result.steps))
        )
        traj.status = _STATUS.get(result.status, Trajectory.Status.ERROR)
        traj.score = result.score
        traj.final_answer = pg_text(result.final_answer)
        traj.final_url = pg_text(result.final_url or "")
        traj.step_count = len(result.steps)
        traj.error = pg_text((result.error or "")[:5000])
        traj.env_version = result.env_version or ""
        traj.evaluator_version = result.evaluator_version or ""
        traj.eval_detail = json_for_postgres(result.eval_detail or {})
        traj.finished_at = timezone.now()
        traj.save()
    return True


def fail_trajectory(trajectory_id: int, token: str | None, error: str) -> bool:
    """Close a claimed trajectory as an error (the episode could not run at all)."""
    failed = _held(trajectory_id, token).update(
        status=Trajectory.Status.ERROR, error=pg_text(error[:5000]), finished_at=timezone.now()
    )
    if not failed:
        _refused("failure", trajectory_id, token)
    return bool(failed)


def json_for_postgres(value):
    """A JSON round trip (str() for the rest) with NUL characters replaced: jsonb refuses them too."""
    import json

    return _no_nul(json.loads(json.dumps(value, default=str)))


def _no_nul(value):
    if isinstance(value, str):
        return pg_text(value)
    if isinstance(value, list):
        return [_no_nul(v) for v in value]
    if isinstance(value, dict):
        return {pg_text(k): _no_nul(v) for k, v in value.items()}
    return value


def stage_counts(phase_id: int, purpose: str) -> dict[str, int]:
    """Trajectory counts per status for one stage's rows."""
    counts = {s: 0 for s in Trajectory.Status.values}
    qs = Trajectory.objects.filter(phase_id=phase_id, purpose=purpose)
    for status in qs.values_list("status", flat=True):
        counts[status] += 1
    return counts
