"""Running one claimed stage (in a Celery worker or in-process) and driving a whole run in-process.

Every path ends the same way: complete, cancel or fail the stage, then `advance` the run.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable

from apps.runs import orchestrator
from apps.runs.browser_stage import (
    browser_metrics,
    check_world_seed,
    plan_shards,
    prepare,
    run_inline,
    stage_drained,
    stage_purpose,
)
from apps.runs.errors import StageError
from apps.runs.models import Run, StageRun
from apps.runs.reporter import DjangoReporter
from apps.runs.stages import (
    TRAINING_STAGES,
    StageContext,
    dump,
    record_phase_metrics,
    require_checkpoint,
    rollout_task_ids,
    world_tasks,
)
from trainer.phase import BROWSER_STAGES

log = logging.getLogger(__name__)


def stop_checker(run_id: int, stage_id: int, every_s: float = 2.0) -> Callable[[], bool]:
    """`should_stop` for the trainer: beats the stage and reads the run's status, at most every 2 s."""
    last = {"t": 0.0, "stop": False}

    def should_stop() -> bool:
        now = time.monotonic()
        if now - last["t"] >= every_s:
            last["t"] = now
            orchestrator.beat(stage_id)
            last["stop"] = orchestrator.cancel_requested(run_id)
        return last["stop"]

    return should_stop


def context(stage_id: int, on_progress=None) -> StageContext:
    stage = StageRun.objects.select_related("phase", "phase__run").get(pk=stage_id)
    run = stage.phase.run
    return StageContext(
        run=run,
        phase=stage.phase,
        stage=stage,
        config=orchestrator.run_config(run),
        reporter=DjangoReporter(run.pk, stage.phase.pk, stage.name, on_progress=on_progress),
        should_stop=stop_checker(run.pk, stage.pk),
    )


def _close(ctx: StageContext, metrics: dict) -> None:
    if orchestrator.cancel_requested(ctx.run.pk):
        orchestrator.stop_stage_cancelled(ctx.stage.pk)
    else:
        orchestrator.complete_stage(ctx.stage.pk, dump(metrics))


def execute_stage(
    stage_id: int, dispatch: orchestrator.Dispatch, worker: str, on_progress=None
) -> None:
    """Claim and run a training stage here (or a browser stage inline), then advance the run."""
    if not orchestrator.claim_stage(stage_id, worker):
        return
    ctx = context(stage_id, on_progress)
    beating = threading.Event()
    threading.Thread(target=_beat_until, args=(stage_id, beating), daemon=True).start()
    try:
        if ctx.stage.name in BROWSER_STAGES:
            purpose, task_ids, model_dir = browser_inputs(ctx)
            run_inline(ctx, purpose, task_ids, model_dir, on_progress=on_progress)
            metrics = finish_metrics(ctx)
        else:
            metrics = TRAINING_STAGES[ctx.stage.name](ctx)
        _close(ctx, metrics)
    except Exception as exc:
        log.exception("stage %s failed", stage_id)
        orchestrator.fail_stage(
            stage_id, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
        )
    finally:
        beating.set()
    orchestrator.advance(ctx.run.pk, dispatch)


def _beat_until(stage_id: int, done: threading.Event, every_s: float = 5.0) -> None:
    """The stage's heartbeat while this process lives, whatever the length of one training step."""
    from django.db import connection

    try:
        while not done.wait(every_s):
            orchestrator.beat(stage_id)
    finally:
        connection.close()


def browser_inputs(ctx: StageContext) -> tuple[str, list[int], str]:
    """(purpose, task ids, policy checkpoint) of a rollout or eval stage."""
    purpose = stage_purpose(ctx.stage)
    actor = require_checkpoint(ctx.run.pk, "actor")
    if purpose == "eval":
        task_ids = list(world_tasks(ctx.config, ctx.config.eval.split).values_list("pk", flat=True))
    else:
        task_ids = rollout_task_ids(ctx)
    if not task_ids:
        raise StageError(f"no {purpose} tasks: run `manage.py load_world_tasks` first")
    return purpose, task_ids, actor.path


def finish_metrics(ctx: StageContext) -> dict:
    metrics = browser_metrics(ctx.phase.pk, stage_purpose(ctx.stage))
    record_phase_metrics(ctx, metrics)
    return metrics


def start_browser_stage(
    stage_id: int, enqueue_shard: Callable[[int, int, int, int], None], worker: str
) -> int:
    """Claim a browser stage, create its trajectories and enqueue its shards; returns the shard count."""
    from django.conf import settings

    from sandbox.client import WorldClient

    if not orchestrator.claim_stage(stage_id, worker):
        return 0
    ctx = context(stage_id)
    try:
        purpose, task_ids, model_dir = browser_inputs(ctx)
        prepare(ctx, purpose, task_ids, model_dir)
        with WorldClient(settings.WORLD_URL) as world:
            check_world_seed(world, ctx.config)
            shards, slots = plan_shards(ctx.config, world.instances())
        orchestrator.beat(stage_id, {"shards": shards, "slots": slots})
    except Exception as exc:
        orchestrator.fail_stage(stage_id, f"{type(exc).__name__}: {exc}")
        return 0
    for k in range(shards):
        enqueue_shard(stage_id, k, shards, slots)
    return shards


def finish_browser_stage(stage_id: int, outcome: str, dispatch: orchestrator.Dispatch) -> bool:
    """After a shard: close the stage once no trajectory is pending or running, then advance."""
    stage = StageRun.objects.select_related("phase").get(pk=stage_id)
    run_id = stage.phase.run_id
    if stage.status != StageRun.Status.RUNNING:
        return False
    if outcome == "cancelled" or orchestrator.cancel_requested(run_id):
        orchestrator.stop_stage_cancelled(stage_id)
        return True
    if not stage_drained(stage.phase_id, stage.progress.get("purpose") or stage_purpose(stage)):
        return False
    ctx = context(stage_id)
    if orchestrator.complete_stage(stage_id, dump(finish_metrics(ctx))):
        orchestrator.advance(run_id, dispatch)
        return True
    return False


def drive_inline(run_id: int, on_stage: Callable[[StageRun], Callable | None] | None = None) -> str:
    """Run every remaining stage of a run in this process (the CLI's `train_run`); returns the status."""
    worker = orchestrator.worker_id()
    queue: list[StageRun] = []
    orchestrator.advance(run_id, queue.append)
    while queue:
        stage = queue.pop(0)
        progress = on_stage(stage) if on_stage else None
        execute_stage(stage.pk, queue.append, worker, on_progress=progress)
    return Run.objects.values_list("status", flat=True).get(pk=run_id)
