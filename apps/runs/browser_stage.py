"""Browser stages (rollout, eval, and phase 0's demonstrations): pending trajectories claimed by shards.

A shard is one process with one browser and `slots` contexts; slot j drives its own world instance,
reset before every episode. Every live shard beats the stage row (with the stage claim's token) and
the trajectories it runs; a trajectory whose shard stopped beating is re-run by another.
"""

from __future__ import annotations

import asyncio
import logging
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, connections
from django.utils import timezone

from apps.rollouts.models import Trajectory
from apps.rollouts.writer import (
    beat_trajectories,
    claim_next,
    fail_trajectory,
    finish_trajectory,
    prepare_trajectories,
    release_trajectory,
    reset_running,
    stage_counts,
    write_step,
)
from apps.runs import faults, orchestrator
from apps.runs import leases as leasing
from apps.runs.dbretry import retrying
from apps.runs.errors import StageError
from apps.runs.models import Run, StageRun
from apps.runs.reporter import DjangoReporter
from trainer.config import RunConfig
from trainer.phase import policy_from_generator, success_rates

log = logging.getLogger(__name__)

BEAT_S = 2.0
MAX_EPISODE_ATTEMPTS = 3


def orphan_after_s() -> float:
    """A running trajectory whose shard has not beaten for it (`beat_trajectories`, every BEAT_S
    while its episode runs, however slow a step) for this long lost its worker; any shard may
    retake it."""
    return float(settings.TRAJECTORY_STALE_S)


def stage_purpose(stage: StageRun) -> str:
    return Trajectory.Purpose.EVAL if stage.name == "eval" else Trajectory.Purpose.TRAIN


def prepare(ctx, purpose: str, task_ids: list[int], model_dir: str | None) -> dict:
    """Create the stage's pending trajectories and remember what the shards need in `progress`."""
    total = prepare_trajectories(ctx.run.pk, ctx.phase.pk, purpose, task_ids)
    info = {"purpose": purpose, "model_dir": model_dir, "total": total}
    if not orchestrator.beat(ctx.stage.pk, ctx.stage.token, info):
        raise StageError("the stage's claim was lost")
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
        arguments=r.arguments,
        block_noop_repeats=r.block_noop_repeats,
        answer_questions=r.answer_questions,
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


def infrastructure_fault(result) -> bool:
    """The episode broke because its browser did, not because of what the agent did: run it again."""
    return result.status == "error" and result.browser_fault


async def run_shard(
    stage_id: int,
    token: str,
    shard: int,
    shards: int,
    slots: int,
    *,
    worker: str,
    on_progress=None,
) -> str:
    """Work through this stage's pending trajectories; 'drained', 'cancelled', 'lost' (the stage
    claim `token` no longer holds) or 'timeout' (past the stage's time limit)."""
    from sandbox.client import WorldClient
    from trainer.env.pool import BrowserPool
    from trainer.env.webarena import resolve_placeholders

    stage = await _db(StageRun.objects.select_related("phase", "phase__run").get)(pk=stage_id)
    run, phase = stage.phase.run, stage.phase
    config = RunConfig.from_dict(run.config)
    purpose = stage.progress.get("purpose") or stage_purpose(stage)
    limits = _limits(config, purpose)
    policy_for = await asyncio.to_thread(
        _policy_factory, config, purpose, stage.progress.get("model_dir")
    )
    reporter = DjangoReporter(run.pk, phase.pk, stage.name)
    world = WorldClient(settings.WORLD_URL)
    state: dict = {"stop": None}
    live: dict[int, str] = {}  # trajectory id -> claim token, of the episodes running now
    held: list[leasing.Lease] = []  # this shard's world instances
    lost: set[int] = set()  # instances whose lease expired under us: stop using them
    deadline = (stage.started_at or timezone.now()).timestamp() + orchestrator.time_limit_s()

    async def watch() -> None:
        while state["stop"] is None:
            try:
                counts = await _db(stage_counts)(phase.pk, purpose)
                beating = await _db(orchestrator.beat)(stage_id, token, {"counts": counts})
                await _db(beat_trajectories)(list(live.items()))
                if held:
                    kept = await _db(leasing.renew)(list(held))
                    lost.update(lease.instance for lease in held if lease not in kept)
                if on_progress is not None:
                    on_progress({"counts": counts})
                run_status = await _db(_run_status)(run.pk)
            except DatabaseError:  # a dropped connection: beat again next time round
                log.warning(
                    "shard %s of stage %s: heartbeat failed", shard, stage_id, exc_info=True
                )
                await sync_to_async(connections.close_all)()
            else:
                if run_status != Run.Status.RUNNING:
                    state["stop"] = "cancelled"
                elif not beating:
                    state["stop"] = "lost"
                elif time.time() >= deadline:
                    state["stop"] = "timeout"
            await asyncio.sleep(BEAT_S)

    async def slot_loop(slot: int, lease: leasing.Lease) -> None:
        me = slot_worker(worker, shard, slot)
        while state["stop"] is None and lease.instance not in lost:
            traj = await _db(claim_next)(
                phase.pk, purpose, me, shard, shards, stage=(stage_id, token)
            )
            if traj is None:
                orphans = await _db(reset_running)(phase.pk, purpose, orphan_after_s())
                if orphans:
                    continue
                return
            live[traj.pk] = traj.token
            try:
                await _episode(slot, lease, traj)
            finally:
                live.pop(traj.pk, None)

    async def _episode(slot: int, lease: leasing.Lease, traj: Trajectory) -> None:
        claim = {"held": True}
        instance = lease.instance

        def should_stop() -> bool:
            return state["stop"] is not None or not claim["held"] or instance in lost

        try:
            await asyncio.to_thread(leasing.reset, world, lease)
            urls = await asyncio.to_thread(world.site_urls, instance)
            task = resolve_placeholders(traj.task.config, urls)
            task.setdefault("intent", traj.task.intent)

            async def on_step(record) -> None:
                if not await _db(write_step)(traj.pk, traj.token, record):
                    claim["held"] = False  # reset and maybe re-run elsewhere: stop writing
                    return
                await reporter.aon_frame(slot, record.screenshot, traj.task.intent[:120])
                if faults.armed("step_written", purpose):
                    await faults.ahook("step_written", purpose, trajectory=traj.pk,
                                       step=record.index, browser_pid=await pool.browser_pid())  # fmt: skip

            result = await pool.run_episode(
                task,
                policy_for(task),
                limits=limits,
                allowed_origins=await asyncio.to_thread(world.allowed_origins, instance),
                storage_state=await asyncio.to_thread(world.storage_state, instance),
                on_step=on_step,
                should_stop=should_stop,
            )
        except leasing.LeaseLost:
            lost.add(instance)
            await _db(release_trajectory)(traj.pk, traj.token)
            return
        except Exception as exc:  # one broken task must not stop the shard
            log.exception("episode of trajectory %s failed", traj.pk)
            await _db(fail_trajectory)(traj.pk, traj.token, f"{type(exc).__name__}: {exc}")
            return
        if not claim["held"]:
            return
        if instance in lost:  # another holder may have reset the world under this episode
            await _db(release_trajectory)(traj.pk, traj.token)
            return
        if infrastructure_fault(result) and traj.attempts < MAX_EPISODE_ATTEMPTS:
            log.warning("trajectory %s: %s; running it again", traj.pk, result.error)
            await _db(release_trajectory)(traj.pk, traj.token)
            return
        if result.status == "cancelled" and state["stop"] in ("lost", "timeout"):
            await _db(release_trajectory)(traj.pk, traj.token)
            return
        await _db(finish_trajectory)(traj.pk, traj.token, result)

    async def lease_instances() -> None:
        """Wait for free world instances while there is work left (other runs may hold all)."""
        count = await asyncio.to_thread(world.instances)
        holder = f"{worker} stage {stage_id} shard {shard}"
        while state["stop"] is None:
            got = await _db(leasing.acquire)(
                settings.WORLD_URL, count, slots, run_id=run.pk, holder=holder
            )
            if got:
                held.extend(got)
                return
            await _db(reset_running)(phase.pk, purpose, orphan_after_s())
            if await _db(stage_drained)(phase.pk, purpose):
                return
            await asyncio.sleep(BEAT_S)

    watcher = asyncio.create_task(watch())
    try:
        await lease_instances()
        if held:
            contexts = len(held)
            async with BrowserPool(
                contexts=contexts, executable_path=settings.CHROMIUM_PATH
            ) as pool:
                await asyncio.gather(*(slot_loop(j, lease) for j, lease in enumerate(held)))
    finally:
        stop = state["stop"]
        state["stop"] = state["stop"] or "drained"
        watcher.cancel()
        world.close()
        try:
            await _db(leasing.release)(list(held))
        except DatabaseError:  # they expire by themselves
            log.warning("shard %s of stage %s: leases not released", shard, stage_id)
        try:
            counts = await _db(stage_counts)(phase.pk, purpose)
            await _db(orchestrator.beat)(stage_id, token, {"counts": counts})
        except DatabaseError:
            log.warning("shard %s of stage %s: last beat failed", shard, stage_id, exc_info=True)
        await sync_to_async(connections.close_all)()
    return stop or "drained"


def _db(fn):
    """`fn` run in the sync thread, retried on a dropped database connection."""
    return sync_to_async(retrying(fn))


def slot_worker(worker: str, shard: int, slot: int) -> str:
    """The worker id of one episode slot: two slots of one process never share an id."""
    return f"{worker}:s{shard}.{slot}"


def _run_status(run_id: int) -> str:
    return Run.objects.values_list("status", flat=True).get(pk=run_id)


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
            ctx.stage.pk,
            ctx.stage.token,
            0,
            1,
            slots,
            worker=orchestrator.worker_id(),
            on_progress=on_progress,
        )
    )
