"""Finding runs whose workers stopped sending heartbeats."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from apps.runs.models import Run


def reap_stale_runs(stale_after_s: int | None = None) -> list[int]:
    """Mark running runs with a heartbeat older than the limit as failed; return their ids."""
    limit = stale_after_s if stale_after_s is not None else settings.RUN_HEARTBEAT_STALE_S
    cutoff = timezone.now() - timedelta(seconds=limit)
    stale = list(
        Run.objects.filter(
            status__in=[Run.Status.RUNNING, Run.Status.CANCELLING], heartbeat_at__lt=cutoff
        ).values_list("pk", flat=True)
    )
    reaped = []
    for pk in stale:
        updated = Run.objects.filter(pk=pk, heartbeat_at__lt=cutoff).update(
            status=Run.Status.FAILED,
            finished_at=timezone.now(),
            last_error=f"No heartbeat for more than {limit} s: the worker died or hung.",
        )
        if updated:
            reaped.append(pk)
    return reaped
