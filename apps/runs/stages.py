"""What each stage of a phase does, reading its inputs from the database and writing its outputs there.

Training stages (sft, orm_init, orm, replay, critic, actor, curriculum) run in one process; the browser
stages (rollout, eval) are prepared here and run by shards in `apps.runs.browser_stage`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from apps.curriculum.models import Task
from apps.reviews.services import record_orm_verdict
from apps.rollouts.models import Trajectory
from apps.runs.errors import StageError
from apps.runs.models import Checkpoint, Phase, Run, StageRun
from apps.runs.reporter import DjangoReporter
from apps.runs.rows import (
    SUCCESS,
    demo_rows,
    finished_train,
    records_of,
    trajectory_rows,
    world_tasks,
)
from trainer.config import RunConfig
from trainer.phase import choose_demo_tasks, choose_tasks


@dataclass
class StageContext:
    run: Run
    phase: Phase
    stage: StageRun
    config: RunConfig
    reporter: DjangoReporter
    should_stop: object  # Callable[[], bool]

    def dir(self, name: str) -> Path:
        root = Path(self.config.engine.checkpoint_root)
        if not root.is_absolute():
            root = Path(settings.CHECKPOINT_ROOT)
        path = root / f"run-{self.run.pk}" / f"phase-{self.phase.index}" / name
        path.mkdir(parents=True, exist_ok=True)
        return path


# --- inputs -----------------------------------------------------------------------------------


def latest_checkpoint(run_id: int, kind: str, before_phase: int | None = None) -> Checkpoint | None:
    qs = Checkpoint.objects.filter(run_id=run_id, kind=kind)
    if before_phase is not None:
        qs = qs.filter(phase__index__lt=before_phase)
    return qs.order_by("-phase__index", "-created_at").first()


def require_checkpoint(run_id: int, kind: str, before_phase: int | None = None) -> Checkpoint:
    ckpt = latest_checkpoint(run_id, kind, before_phase)
    if ckpt is None:
        raise StageError(f"no {kind} checkpoint yet: the stage that writes it has not run")
    return ckpt


def rollout_task_ids(ctx: StageContext) -> list[int]:
    """This phase's rollout tasks: the previous phase's generated tasks, topped up from the train split."""
    n = ctx.config.rollout.tasks_per_phase
    generated = list(
        Task.objects.filter(
            run=ctx.run,
            generating_phase__index=ctx.phase.index - 1,
            status=Task.Status.APPROVED,
        ).values_list("pk", "sites")
    )
    train = list(world_tasks(ctx.config, "train").values_list("pk", "sites"))
    pool = generated if len(generated) >= n else generated + train
    keys = [str(pk) for pk, _ in pool]
    sites = [s[0] if s else "" for _, s in pool]
    seed = ctx.config.seed * 1000 + ctx.phase.index
    return sorted({int(k) for k in choose_tasks(keys, sites, n, seed)})


def demo_task_ids(config: RunConfig) -> list[int]:
    """The train tasks whose oracle demonstrations phase 0 fine-tunes on: `sft.demos_per_template`
    of every template, topped up template by template to `sft.demo_tasks`. Chosen by task key, so
    every run (in any database) picks the same tasks and the demonstration cache serves them."""
    pool = world_tasks(config, "train").values_list(
        "pk", "key", "template_id", "config__intent_template_id"
    )
    pks, templates = {}, {}
    for pk, key, template, from_config in pool:
        pks[key] = pk
        templates[key] = template if template is not None else from_config
    keys = list(pks)
    n = config.sft.demo_tasks or config.rollout.tasks_per_phase
    chosen = choose_demo_tasks(
        keys, [templates[k] for k in keys], n, config.sft.demos_per_template, -1
    )
    return sorted(pks[k] for k in chosen)


# --- stages -----------------------------------------------------------------------------------


def stage_sft(ctx: StageContext) -> dict:
    """Phase 0: oracle demonstrations of a train subset (collected through the browser), then SFT."""
    from apps.runs import demo_cache
    from apps.runs.browser_stage import demo_step_limit, run_inline
    from trainer.learn.pretrain import needs_pretraining, pretrain_tiny
    from trainer.learn.sft import train_sft

    task_ids = demo_task_ids(ctx.config)
    if not task_ids:
        raise StageError(
            f"no approved train tasks of world {ctx.config.world!r}: run `manage.py load_world_tasks`"
        )
    limit = demo_step_limit(ctx.config)
    tasks = Task.objects.filter(pk__in=task_ids)
    cached = demo_cache.restore(ctx.run.pk, ctx.phase.pk, ctx.config, tasks, limit)
    run_inline(ctx, "demo", task_ids, on_progress=ctx.reporter.on_progress)
    if ctx.should_stop():
        return {}
    demo_cache.store(ctx.phase.pk, ctx.config, limit)
    demos = demo_rows(ctx.run.pk)
    records = records_of(demos, ctx.config.actor.gamma, variant=ctx.config.rollout.prompt)
    if not records:
        raise StageError("no successful oracle demonstration to fine-tune on (is the world up?)")
    init = None
    if needs_pretraining(ctx.config):
        pre = pretrain_tiny(ctx.config, records, ctx.dir("pretrain"),
                            on_step=ctx.reporter.on_train_step("pretrain"),
                            should_stop=ctx.should_stop)  # fmt: skip
        if not pre.get("model_dir"):
            return {}
        init = pre["model_dir"]
    out = ctx.dir("sft")
    result = train_sft(
        ctx.config, records, out, init=init, on_step=ctx.reporter.on_train_step("sft"),
        should_stop=ctx.should_stop,
    )  # fmt: skip
    if not result.get("model_dir"):
        return {}
    metrics = {"sft/steps": result["steps"], "sft/loss": result["loss"] or 0.0,
               "sft/records": len(records), **demo_metrics(ctx, demos, cached)}  # fmt: skip
    if init is not None:
        metrics["pretrain/steps"] = float(pre["steps"])
    ctx.reporter.on_checkpoint("actor", result["model_dir"], result["steps"], metrics,
                               ctx.config.to_dict())  # fmt: skip
    return metrics


def demo_metrics(ctx: StageContext, demos: list[dict], cached: int) -> dict:
    """How many demonstrations SFT learns from, of how many templates, how many came from the
    cache and how many oracle waiting steps were dropped from them."""
    steps = Trajectory.objects.filter(pk__in=[d["id"] for d in demos]).values_list(
        "step_count", "task__template_id"
    )
    return {
        "sft/demos": float(len(demos)),
        "sft/demo_templates": float(len({t for _, t in steps if t is not None})),
        "sft/demos_from_cache": float(cached),
        "sft/waiting_steps_dropped": float(
            sum(n for n, _ in steps) - sum(len(d["responses"]) for d in demos)
        ),
    }


def label_with_orm(ctx: StageContext, orm: Checkpoint, rows: list[dict]) -> dict:
    """ORM verdicts on every row; reward = human label, else the ORM's; figures against ground truth."""
    from apps.runs.orm_sets import orm_threshold, score_examples
    from trainer.learn.orm import classification_metrics
    from trainer.learn.orm_data import example

    if not rows:
        return {"orm/labelled": 0.0}
    probs = score_examples(ctx.config, orm, [example(r, False, "policy") for r in rows])
    threshold = orm_threshold(ctx.config, orm)
    truth_rewards = ctx.config.orm.reward_source == "ground_truth"
    with transaction.atomic():
        for row, p in zip(rows, probs, strict=True):
            truth = None
            if truth_rewards and row["score"] is not None:
                truth = 1.0 if row["score"] >= SUCCESS else 0.0
            # the reward follows a human label given while the ORM was scoring (one UPDATE)
            row["reward"] = record_orm_verdict(row["id"], orm, p, threshold, truth)
    scored = [
        (p, r["score"] >= SUCCESS)
        for p, r in zip(probs, rows, strict=True)
        if r["score"] is not None
    ]
    metrics = {"orm/labelled": float(len(rows)), "orm/threshold": threshold,
               "orm/success_rate": sum(r["reward"] for r in rows) / len(rows)}  # fmt: skip
    if scored:
        truth = classification_metrics([p for p, _ in scored], [y for _, y in scored], threshold)
        metrics.update({k: v for k, v in truth.items() if k != "orm/heldout"})
        metrics["orm/scored"] = float(len(scored))
    return metrics


def heldout_task_ids(config: RunConfig) -> list[int]:
    """Test tasks with an oracle plan whose oracle runs are the ORM's held-out successes."""
    n = config.orm.heldout_tasks
    pool = list(
        world_tasks(config, "test").filter(config__has_key="oracle").values_list("pk", "sites")
    )
    if not n or not pool:
        return []
    keys = [str(pk) for pk, _ in pool]
    sites = [s[0] if s else "" for _, s in pool]
    return sorted(int(k) for k in choose_tasks(keys, sites, min(n, len(pool)), -2))


def orm_heldout_metrics(ctx: StageContext, orm: Checkpoint) -> dict:
    """`orm_heldout/<figure>/<group>` of the ORM on the run's held-out test-task trajectories."""
    from apps.runs.orm_sets import heldout_examples, heldout_figures, heldout_metrics

    groups = heldout_examples(ctx.run, ctx.config)
    if not any(groups.values()):
        return {}
    return heldout_metrics(heldout_figures(ctx.config, orm, groups))


def record_phase_metrics(ctx: StageContext, metrics: dict) -> None:
    ctx.reporter.on_metrics(metrics, ctx.phase.index)
    with transaction.atomic():
        phase = Phase.objects.select_for_update().get(pk=ctx.phase.pk)
        phase.metrics = {**phase.metrics, **metrics}
        phase.save(update_fields=["metrics"])


def stage_orm_init(ctx: StageContext) -> dict:
    """Phase 0: the oracle on held-out test tasks, then the initial ORM, trained (§4.2) on the train
    tasks' oracle successes, near-misses and SFT rollouts, or the LLM judge; its verdicts on the
    phase's rollouts and its held-out figures."""
    from apps.runs.browser_stage import run_inline
    from apps.runs.orm_sets import JUDGE_FORMAT, orm_training_examples
    from trainer.learn.orm import train_orm

    heldout = heldout_task_ids(ctx.config)
    if heldout:
        run_inline(ctx, Trajectory.Purpose.HELDOUT, heldout, on_progress=ctx.reporter.on_progress)
        if ctx.should_stop():
            return {}
    o = ctx.config.orm
    if o.backend == "openai":
        orm = ctx.reporter.on_checkpoint("orm", f"{o.judge_url}#{o.judge_model}", 0, {},
                                         ctx.config.to_dict())  # fmt: skip
        Checkpoint.objects.filter(pk=orm.pk).update(format=JUDGE_FORMAT)
        orm.format = JUDGE_FORMAT
        metrics: dict = {}
    else:
        examples = orm_training_examples(ctx.run, ctx.phase, ctx.config)
        if not examples:
            raise StageError("no labelled trajectory to train the ORM on")
        actor = require_checkpoint(ctx.run.pk, "actor")
        result = train_orm(ctx.config, examples, ctx.dir("orm"), init=actor.path,
                           on_step=ctx.reporter.on_train_step("orm_train"), should_stop=ctx.should_stop)  # fmt: skip
        if not result.get("model_dir"):
            return {}
        held = {
            f"orm_init/{k.split('/')[-1]}": v for k, v in result.items() if k.startswith("orm/")
        }
        orm = ctx.reporter.on_checkpoint("orm", result["model_dir"], result["steps"], held,
                                         ctx.config.to_dict())  # fmt: skip
        metrics = {"orm_init/examples": float(len(examples)), **held}
    metrics.update(label_with_orm(ctx, orm, trajectory_rows(finished_train(ctx.phase))))
    metrics.update(orm_heldout_metrics(ctx, orm))
    record_phase_metrics(ctx, metrics)
    return metrics


def stage_orm(ctx: StageContext) -> dict:
    orm = require_checkpoint(ctx.run.pk, "orm")
    metrics = label_with_orm(ctx, orm, trajectory_rows(finished_train(ctx.phase)))
    metrics.update(orm_heldout_metrics(ctx, orm))
    record_phase_metrics(ctx, metrics)
    return metrics


def replay_path(ctx: StageContext) -> Path:
    return ctx.dir("data") / "phase_filter.jsonl"


def stage_replay(ctx: StageContext) -> dict:
    """§5: current steps (all) + earlier successes in the actor's confidence band, capped, shuffled."""
    from trainer.learn.data import write_steps
    from trainer.learn.replay import build_phase_data

    gamma, variant = ctx.config.actor.gamma, ctx.config.rollout.prompt
    current = records_of(trajectory_rows(finished_train(ctx.phase)), gamma, variant=variant)
    past_qs = Trajectory.objects.filter(
        run=ctx.run, purpose=Trajectory.Purpose.TRAIN, status=Trajectory.Status.OK,
        phase__index__lt=ctx.phase.index, reward__gte=0.5,
    )  # fmt: skip
    past = records_of(trajectory_rows(past_qs), gamma, variant=variant)
    if ctx.config.replay.include_sft:
        past = records_of(demo_rows(ctx.run.pk), gamma, variant=variant) + past
    if not current:
        raise StageError("this phase has no finished rollout to train on")
    actor = require_checkpoint(ctx.run.pk, "actor", before_phase=ctx.phase.index)
    data, stats = build_phase_data(ctx.config, current, past, actor.path)
    write_steps(replay_path(ctx), data)
    stats["replay/records"] = float(len(data))
    record_phase_metrics(ctx, stats)
    return stats


def _phase_records(ctx: StageContext) -> list[dict]:
    from trainer.learn.data import read_steps

    path = replay_path(ctx)
    if not path.exists():
        raise StageError(f"{path} is missing: the replay stage has not run")
    return read_steps(path)


def stage_critic(ctx: StageContext) -> dict:
    """§1.3.6: one critic epoch; phase 1 starts from the SFT backbone, later phases from the last critic."""
    from trainer.learn.critic import train_critic

    previous = latest_checkpoint(ctx.run.pk, "critic", before_phase=ctx.phase.index)
    init = previous.path if previous else require_checkpoint(ctx.run.pk, "actor", 1).path
    result = train_critic(ctx.config, _phase_records(ctx), init, ctx.dir("critic"),
                          on_step=ctx.reporter.on_train_step("critic"), should_stop=ctx.should_stop)  # fmt: skip
    if not result.get("model_dir"):
        return {}
    metrics = {"critic/steps": result["steps"], "critic/loss": result["loss"] or 0.0}
    ctx.reporter.on_checkpoint("critic", result["model_dir"], result["steps"], metrics,
                               ctx.config.to_dict())  # fmt: skip
    return metrics


def stage_actor(ctx: StageContext) -> dict:
    """§1.3.7: the actor update against the phase-start policy π_ref with the new critic's advantages."""
    from trainer.learn.actor import train_actor

    start = require_checkpoint(ctx.run.pk, "actor", before_phase=ctx.phase.index)
    critic = require_checkpoint(ctx.run.pk, "critic")
    result = train_actor(ctx.config, _phase_records(ctx), start.path, start.path, critic.path,
                         ctx.dir("actor"), on_step=ctx.reporter.on_train_step("actor"),
                         should_stop=ctx.should_stop)  # fmt: skip
    if not result.get("model_dir"):
        return {}
    metrics = {"actor/steps": result["steps"], "actor/loss": result["loss"] or 0.0}
    ctx.reporter.on_checkpoint("actor", result["model_dir"], result["steps"], metrics,
                               ctx.config.to_dict())  # fmt: skip
    return metrics


def stage_curriculum(ctx: StageContext) -> dict:
    """One generation + filter round of the curriculum app (§6)."""
    from apps.curriculum.round import run_curriculum_round

    result = run_curriculum_round(ctx.run, ctx.phase.index)
    metrics = {k: float(v) for k, v in (result or {}).items() if isinstance(v, int | float)}
    record_phase_metrics(ctx, metrics)
    return metrics


TRAINING_STAGES = {
    "sft": stage_sft,
    "orm_init": stage_orm_init,
    "orm": stage_orm,
    "replay": stage_replay,
    "critic": stage_critic,
    "actor": stage_actor,
    "curriculum": stage_curriculum,
}


def dump(metrics: dict) -> dict:
    return json.loads(json.dumps(metrics, default=float))
