"""Celery tasks for runs: start a run, run a training stage on the `gpu` queue, reap stale work.

Tasks take ids, re-fetch, and claim their work first; running one twice is harmless.
"""

from __future__ import annotations

from celery import shared_task

from apps.runs.dispatch import dispatch
from apps.runs.models import Run, StageRun


@shared_task(name="apps.runs.tasks.start_run")
def start_run(run_id: int) -> None:
    """queued → running, then the first stage goes out (enqueued by `launch_run` after commit)."""
    from apps.runs.orchestrator import advance

    advance(run_id, dispatch)


@shared_task(name="apps.runs.tasks.run_gpu_stage")
def run_gpu_stage(stage_id: int) -> None:
    """One training stage, start to end, in this worker (queue `gpu`, concurrency 1)."""
    from apps.runs.orchestrator import worker_id
    from apps.runs.runner import execute_stage

    if StageRun.objects.filter(pk=stage_id).exists():
        execute_stage(stage_id, dispatch, worker_id())


@shared_task(name="apps.runs.tasks.reap_runs")
def reap_runs(stale_after_s: float | None = None) -> int:
    """Re-queue stages whose workers went silent, re-send lost messages, start lost starts."""
    from apps.runs.reaper import reap

    return sum(len(ids) for ids in reap(stale_after_s, dispatch).values())


@shared_task(name="apps.runs.tasks.prune_screenshots")
def prune_screenshots() -> int:
    """Screenshots of phases older than each run's newest SCREENSHOT_KEEP_PHASES."""
    from apps.runs.retention import prune_screenshots as prune

    return prune()


__all__ = ["Run", "dispatch", "prune_screenshots", "reap_runs", "run_gpu_stage", "start_run"]
