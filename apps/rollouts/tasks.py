"""Celery tasks on the `rollout` queue: open a browser stage and run its shards."""

from __future__ import annotations

import asyncio

from celery import shared_task


@shared_task(name="apps.rollouts.tasks.start_browser_stage")
def start_browser_stage(stage_id: int) -> int:
    """Claim a rollout/eval stage, create its pending trajectories and enqueue one task per shard."""
    from apps.runs.orchestrator import worker_id
    from apps.runs.runner import start_browser_stage as start

    return start(stage_id, lambda *args: rollout_shard.delay(*args), worker_id())


@shared_task(name="apps.rollouts.tasks.rollout_shard")
def rollout_shard(stage_id: int, token: str, shard: int, shards: int, slots: int) -> str:
    """Episodes of one shard until none is left to claim; the last shard closes the stage."""
    from apps.runs.browser_stage import run_shard
    from apps.runs.dbretry import retrying
    from apps.runs.dispatch import dispatch
    from apps.runs.models import StageRun
    from apps.runs.orchestrator import worker_id
    from apps.runs.runner import finish_browser_stage

    if not StageRun.objects.filter(
        pk=stage_id, status=StageRun.Status.RUNNING, token=token
    ).exists():
        return "not running"
    outcome = asyncio.run(run_shard(stage_id, token, shard, shards, slots, worker=worker_id()))
    retrying(finish_browser_stage)(stage_id, token, outcome, dispatch)
    return outcome
