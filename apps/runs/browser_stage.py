"""Browser stages (rollout, eval, and phase 0's demonstrations): pending trajectories claimed by shards.

A shard is one process with one browser and `slots` contexts; slot j drives its own world instance,
reset before every episode. The stage row's heartbeat is beaten by every live shard.
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

from apps.rollouts.models import Trajectory
from apps.rollouts.writer import (
    claim_next,
    fail_trajectory,
    finish_trajectory,
    prepare_trajectories,
    reset_running,
    stage_counts,
    write_step,
)
from apps.runs import orchestrator
from apps.runs.errors import StageError
from apps.runs.models import Run, StageRun
from apps.runs.reporter import DjangoReporter
from trainer.config import RunConfig
from trainer.phase import policy_from_generator, success_rates

log = logging.getLogger(__name__)

BEAT_S = 2.0


def orphan_after_s() -> float:
    """A running trajectory with no new step for this long lost its worker; any shard may retake it."""
    return float(settings.TRAJECTORY_STALE_S)


def stage_purpose(stage: StageRun) -> str:
    return Trajectory.Purpose.EVAL if stage.name == "eval" else Trajectory.Purpose.TRAIN


def prepare(ctx, purpose: str, task_ids: list[int], model_dir: str | None) -> dict:
    """Create the stage's pending trajectories and remember what the shards need in `progress`."""
    total = prepare_trajectories(ctx.run.pk, ctx.phase.pk, purpose, task_ids)
    info = {"purpose": purpose, "model_dir": model_dir, "total": total}
    orchestrator.beat(ctx.stage.pk, info)
    ctx.stage.progress = {**ctx.stage.progress, **info}
    return info


def check_world_seed(world, config: RunConfig) -> None:
    """The built-in world at WORLD_URL must have been built from the run's `world_seed`: its tasks'
    answers and oracle plans name that world's products, people and places."""
    if config.world != "sandbox":
        return
    served = world.seed()
    if served != config.world_seed:
        raise StageError(
            f"the world at {settings.WORLD_URL} was built from seed {served}, but this run's "
            f"tasks are those of seed {config.world_seed}: serve it with "
            f"`python manage.py world serve --seed {config.world_seed}`"
        )


def plan_shards(config: RunConfig, instances: int) -> tuple[int, int]:
    """(shards, slots per shard): every slot needs its own world instance."""
    slots = max(1, min(config.rollout.slots, config.rollout.contexts, instances))
    return max(1, instances // slots), slots


def demo_step_limit(config: RunConfig) -> int:
    """Most steps of an oracle demonstration: the oracle needs up to 30 whatever the policy's limit."""
    return max(config.rollout.max_steps, 30)


def _limits(config: RunConfig, purpose: str):
    from trainer.env.types import EpisodeLimits

    r = config.rollout
    oracle = purpose in (Trajectory.Purpose.DEMO, Trajectory.Purpose.HELDOUT)
    steps = demo_step_limit(config) if oracle else r.max_steps
    return EpisodeLimits(
        max_steps=steps,
        max_repeats=r.max_repeats,
        max_parse_failures=r.max_parse_failures,
        episode_timeout_s=float(settings.EPISODE_TIMEOUT_S),
        view=r.observation,
        prompt=r.prompt,
        decoding="free" if purpose == Trajectory.Purpose.DEMO else r.decoding,
    )


def _policy_factory(config: RunConfig, purpose: str, model_dir: str | None):
    """task -> Policy: the oracle for demonstrations, else one batching policy over the checkpoint."""
    if purpose in (Trajectory.Purpose.DEMO, Trajectory.Purpose.HELDOUT):
        from sandbox.oracle import oracle_policy

        return oracle_policy
    from trainer.serve.backends import make_generator
    from trainer.serve.sampling import Decoding

    if not model_dir:
        raise StageError("the browser stage has no policy checkpoint")
    decoding = (
        Decoding.evaluation(config)
        if purpose == Trajectory.Purpose.EVAL
        else Decoding.rollout(config)
    )
    shared = policy_from_generator(
        make_generator(config, model_dir, decoding), batch_size=config.rollout.batch_size
    )
    return lambda task: shared


async def run_shard(
    stage_id: int,
    shard: int,
    shards: int,
    slots: int,
    *,
    worker: str,
    first_instance: int = 0,
    on_progress=None,
) -> str:
    """Work through this stage's pending trajectories; 'drained', 'cancelled' or 'lost'."""
    from sandbox.client import WorldClient
    from trainer.env.pool import BrowserPool
    from trainer.env.webarena import resolve_placeholders

    stage = await sync_to_async(StageRun.objects.select_related("phase", "phase__run").get)(
        pk=stage_id
    )
    run, phase = stage.phase.run, stage.phase
    config = RunConfig.from_dict(run.config)
    purpose = stage.progress.get("purpose") or stage_purpose(stage)
    limits = _limits(config, purpose)
    policy_for = await asyncio.to_thread(
        _policy_factory, config, purpose, stage.progress.get("model_dir")
    )
    reporter = DjangoReporter(run.pk, phase.pk, stage.name)
    world = WorldClient(settings.WORLD_URL)
    state = {"stop": None}

    async def watch() -> None:
        while state["stop"] is None:
            counts = await sync_to_async(stage_counts)(phase.pk, purpose)
            await sync_to_async(orchestrator.beat)(stage_id, {"counts": counts})
            if on_progress is not None:
                on_progress({"counts": counts})
            run_status, stage_status = await sync_to_async(_statuses)(run.pk, stage_id)
            if run_status != Run.Status.RUNNING:
                state["stop"] = "cancelled"
            elif stage_status != StageRun.Status.RUNNING:
                state["stop"] = "lost"
            await asyncio.sleep(BEAT_S)

    async def slot_loop(slot: int, instance: int) -> None:
        while state["stop"] is None:
            traj = await sync_to_async(claim_next)(phase.pk, purpose, worker, shard, shards)
            if traj is None:
                orphans = await sync_to_async(reset_running)(phase.pk, purpose, orphan_after_s())
                if orphans:
                    continue
                return
            await _episode(slot, instance, traj)

    async def _episode(slot: int, instance: int, traj: Trajectory) -> None:
        try:
            await asyncio.to_thread(world.reset, instance)
            urls = await asyncio.to_thread(world.site_urls, instance)
            task = resolve_placeholders(traj.task.config, urls)
            task.setdefault("intent", traj.task.intent)

            async def on_step(record) -> None:
                await sync_to_async(write_step)(traj.pk, worker, record)
                await reporter.aon_frame(slot, record.screenshot, traj.task.intent[:120])

            result = await pool.run_episode(
                task,
                policy_for(task),
                limits=limits,
                allowed_origins=await asyncio.to_thread(world.allowed_origins, instance),
                storage_state=await asyncio.to_thread(world.storage_state, instance),
                on_step=on_step,
                should_stop=lambda: state["stop"] is not None,
            )
        except Exception as exc:  # one broken task must not stop the shard
            log.exception("episode of trajectory %s failed", traj.pk)
            await sync_to_async(fail_trajectory)(traj.pk, worker, f"{type(exc).__name__}: {exc}")
            return
        await sync_to_async(finish_trajectory)(traj.pk, worker, result)

    watcher = asyncio.create_task(watch())
    try:
        async with BrowserPool(contexts=slots, executable_path=settings.CHROMIUM_PATH) as pool:
            await asyncio.gather(
                *(slot_loop(j, first_instance + shard * slots + j) for j in range(slots))
            )
    finally:
        stop = state["stop"]
        state["stop"] = state["stop"] or "drained"
        watcher.cancel()
        world.close()
        counts = await sync_to_async(stage_counts)(phase.pk, purpose)
        await sync_to_async(orchestrator.beat)(stage_id, {"counts": counts})
        await sync_to_async(connections.close_all)()
    return stop or "drained"


def _statuses(run_id: int, stage_id: int) -> tuple[str, str]:
    return (
        Run.objects.values_list("status", flat=True).get(pk=run_id),
        StageRun.objects.values_list("status", flat=True).get(pk=stage_id),
    )


def browser_metrics(phase_id: int, purpose: str) -> dict:
    """Counts and ground-truth success per site (%) of one stage's trajectories."""
    qs = Trajectory.objects.filter(phase_id=phase_id, purpose=purpose).select_related("task")
    rows = [(t.task.site_label, t.score) for t in qs]
    counts = stage_counts(phase_id, purpose)
    prefix = "eval" if purpose == Trajectory.Purpose.EVAL else "rollout"
    metrics = {f"{prefix}/{k}": float(v) for k, v in counts.items() if v}
    for site, rate in success_rates(rows).items():
        key = "success_rate" if site == "avg" else f"success_rate/{site}"
        metrics[f"{prefix}/{key}"] = rate
    return metrics


def stage_drained(phase_id: int, purpose: str) -> bool:
    counts = stage_counts(phase_id, purpose)
    return counts[Trajectory.Status.PENDING] == 0 and counts[Trajectory.Status.RUNNING] == 0


def run_inline(
    ctx, purpose: str, task_ids: list[int], model_dir: str | None = None, on_progress=None
) -> str:
    """Prepare and run all shards of a browser stage in this process (train_run, phase 0 demos)."""
    from sandbox.client import WorldClient

    prepare(ctx, purpose, task_ids, model_dir)
    reset_running(ctx.phase.pk, purpose)  # this process is the only worker: leftovers are orphans
    with WorldClient(settings.WORLD_URL) as world:
        check_world_seed(world, ctx.config)
        instances = world.instances()
    _, slots = plan_shards(ctx.config, instances)
    return asyncio.run(
        run_shard(
            ctx.stage.pk, 0, 1, slots, worker=orchestrator.worker_id(), on_progress=on_progress
        )
    )
