"""Celery tasks for runs: start a run, run a training stage on the `gpu` queue, reap stale work.

Tasks take ids, re-fetch, and claim their work first; running one twice is harmless.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

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
    """Re-queue stages whose workers went silent, then fail runs with no live stage at all."""
    from apps.runs.orchestrator import reap_stale_stages
    from apps.runs.reaper import reap_stale_runs

    limit = stale_after_s if stale_after_s is not None else settings.RUN_HEARTBEAT_STALE_S
    stages = reap_stale_stages(limit, dispatch)
    return len(stages) + len(reap_stale_runs(int(limit)))


__all__ = ["Run", "dispatch", "reap_runs", "run_gpu_stage", "start_run"]
