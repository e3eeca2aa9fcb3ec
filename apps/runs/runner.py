"""Running one claimed stage (in a Celery worker or in-process) and driving a whole run in-process.

Every path ends the same way: complete, cancel or fail the stage, then `advance` the run.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable

from django.db import DatabaseError, connection

from apps.runs import faults, orchestrator
from apps.runs.browser_stage import (
    browser_metrics,
    check_world_seed,
    plan_shards,
    prepare,
    run_inline,
    stage_drained,
    stage_purpose,
)
from apps.runs.dbretry import retrying
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


class StageTimeLimit(StageError):
    """The stage ran past STAGE_TIME_LIMIT_S."""


def stop_checker(
    run_id: int, stage_id: int, token: str, every_s: float = 2.0, deadline: float | None = None
) -> Callable[[], bool]:
    """`should_stop` for the trainer: beats the stage and reads the run's status, at most every
    2 s. True once the run is cancelled, the claim is lost, or the stage's time limit has passed."""
    last = {"t": 0.0, "stop": False}

    def should_stop() -> bool:
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            last["stop"] = True
        elif now - last["t"] >= every_s:
            last["t"] = now
            try:
                held = orchestrator.beat(stage_id, token)
                last["stop"] = not held or orchestrator.cancel_requested(run_id)
            except DatabaseError:  # a lost connection: the next check reconnects
                log.warning("stage %s: heartbeat failed", stage_id, exc_info=True)
                connection.close()
        return last["stop"]

    return should_stop


def context(stage_id: int, token: str, on_progress=None, deadline: float | None = None):
    stage = StageRun.objects.select_related("phase", "phase__run").get(pk=stage_id)
    stage.token = token  # this claim's token, whatever the row says by now
    run = stage.phase.run
    return StageContext(
        run=run,
        phase=stage.phase,
        stage=stage,
        config=orchestrator.run_config(run),
        reporter=DjangoReporter(run.pk, stage.phase.pk, stage.name, on_progress=on_progress),
        should_stop=stop_checker(run.pk, stage.pk, token, deadline=deadline),
    )


def _close(ctx: StageContext, metrics: dict, deadline: float | None) -> None:
    token = ctx.stage.token
    if orchestrator.cancel_requested(ctx.run.pk):
        orchestrator.stop_stage_cancelled(ctx.stage.pk, token)
    elif deadline is not None and time.monotonic() >= deadline:
        raise StageTimeLimit(f"over the stage time limit of {orchestrator.time_limit_s():.0f} s")
    else:
        orchestrator.complete_stage(ctx.stage.pk, token, dump(metrics))


def execute_stage(
    stage_id: int, dispatch: orchestrator.Dispatch, worker: str, on_progress=None
) -> None:
    """Claim and run a training stage here (or a browser stage inline), then advance the run."""
    token = orchestrator.claim_stage(stage_id, worker)
    if not token:
        return
    deadline = time.monotonic() + orchestrator.time_limit_s()
    ctx = context(stage_id, token, on_progress, deadline)
    faults.hook("stage_started", ctx.stage.name, stage=stage_id, run=ctx.run.pk)
    beating = threading.Event()
    threading.Thread(target=_beat_until, args=(stage_id, token, beating), daemon=True).start()
    try:
        if ctx.stage.name in BROWSER_STAGES:
            purpose, task_ids, model_dir = browser_inputs(ctx)
            run_inline(ctx, purpose, task_ids, model_dir, on_progress=on_progress)
            metrics = finish_metrics(ctx)
        else:
            metrics = TRAINING_STAGES[ctx.stage.name](ctx)
        retrying(_close)(ctx, metrics, deadline)
    except Exception as exc:
        log.exception("stage %s failed", stage_id)
        retrying(orchestrator.fail_stage)(
            stage_id, token, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
        )
    finally:
        beating.set()
    retrying(orchestrator.advance)(ctx.run.pk, dispatch)


def _beat_until(stage_id: int, token: str, done: threading.Event, every_s: float = 5.0) -> None:
    """The stage's heartbeat while this process lives, whatever the length of one training step.
    A database error (a restarted server, a dropped connection) is logged and the next beat
    reconnects; the thread stops when the stage ends or its claim is lost."""
    try:
        while not done.wait(every_s):
            try:
                if not orchestrator.beat(stage_id, token):
                    return
            except Exception:
                log.warning("stage %s: heartbeat failed; retrying", stage_id, exc_info=True)
                connection.close()
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
    stage_id: int, enqueue_shard: Callable[[int, str, int, int, int], None], worker: str
) -> int:
    """Claim a browser stage, create its trajectories and enqueue its shards; returns the shard count."""
    from django.conf import settings

    from sandbox.client import WorldClient

    token = orchestrator.claim_stage(stage_id, worker)
    if not token:
        return 0
    ctx = context(stage_id, token)
    try:
        purpose, task_ids, model_dir = browser_inputs(ctx)
        prepare(ctx, purpose, task_ids, model_dir)
        with WorldClient(settings.WORLD_URL) as world:
            check_world_seed(world, ctx.config)
            shards, slots = plan_shards(ctx.config, world.instances())
        orchestrator.beat(stage_id, token, {"shards": shards, "slots": slots})
    except Exception as exc:
        orchestrator.fail_stage(stage_id, token, f"{type(exc).__name__}: {exc}")
        return 0
    for k in range(shards):
        enqueue_shard(stage_id, token, k, shards, slots)
    faults.hook("shards_sent", ctx.stage.name, stage=stage_id, token=token, shards=shards,
                slots=slots)  # fmt: skip
    return shards


def finish_browser_stage(
    stage_id: int, token: str, outcome: str, dispatch: orchestrator.Dispatch
) -> bool:
    """After a shard: close the stage once no trajectory is pending or running, then advance."""
    stage = StageRun.objects.select_related("phase").get(pk=stage_id)
    run_id = stage.phase.run_id
    if stage.status != StageRun.Status.RUNNING or stage.token != token:
        return False
    if outcome == "cancelled" or orchestrator.cancel_requested(run_id):
        orchestrator.stop_stage_cancelled(stage_id, token)
        return True
    if outcome == "timeout":
        limit = orchestrator.time_limit_s()
        if orchestrator.fail_stage(stage_id, token, f"over the stage time limit of {limit:.0f} s"):
            orchestrator.advance(run_id, dispatch)
        return True
    if not stage_drained(stage.phase_id, stage.progress.get("purpose") or stage_purpose(stage)):
        return False
    ctx = context(stage_id, token)
    if orchestrator.complete_stage(stage_id, token, dump(finish_metrics(ctx))):
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
