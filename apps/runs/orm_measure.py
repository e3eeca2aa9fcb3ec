"""How well a run's ORMs tell success from failure, against ground truth (`orm_measure`).

For every ORM of the run (the initial one and any later one), and optionally for the phase-0 ORM
retrained from the run's data under other settings or for an LLM judge: the figures of
`orm_sets.FIGURES` on the held-out test-task groups and on each phase's own rollouts.
"""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings

from apps.rollouts.models import Trajectory
from apps.runs.models import Checkpoint, Phase, Run
from apps.runs.orm_sets import (
    JUDGE_FORMAT,
    figures,
    heldout_examples,
    heldout_figures,
    orm_threshold,
    orm_training_examples,
    score_examples,
)
from apps.runs.rows import SUCCESS, trajectory_rows
from trainer.config import RunConfig
from trainer.learn.orm_data import example


def rollout_examples(run: Run, phase_index: int) -> list[dict]:
    """A phase's own training rollouts that have a ground-truth score, labelled by it."""
    qs = Trajectory.objects.filter(
        run=run, phase__index=phase_index, purpose=Trajectory.Purpose.TRAIN,
        status=Trajectory.Status.OK, score__isnull=False,
    )  # fmt: skip
    rows = trajectory_rows(qs)
    for row in rows:
        row["human_label"] = None
    return [example(r, r["score"] >= SUCCESS, "policy") for r in rows]


def orm_figures(
    run: Run, config: RunConfig, orm: Checkpoint, groups: dict, from_phase: int
) -> dict:
    """Held-out figures and, per phase from `from_phase` on, the figures on its own rollouts."""
    out: dict = {"threshold": orm_threshold(config, orm), "rollouts": {}}
    out["heldout"] = heldout_figures(config, orm, groups) if any(groups.values()) else {}
    phases = Phase.objects.filter(run=run, index__gte=from_phase).order_by("index")
    for phase in phases:
        examples = rollout_examples(run, phase.index)
        if examples:
            probs = score_examples(config, orm, examples)
            out["rollouts"][str(phase.index)] = figures(probs, examples, out["threshold"])
    return out


def measure_run_orms(
    run_id: int,
    *,
    retrain: list[str] | None = None,
    judge: tuple[str, str] | None = None,
    out_root: Path | None = None,
    run_orms: bool = True,
) -> dict:
    """{"orms": [...]} for the run's ORM checkpoints, plus "retrained" (the phase-0 ORM trained
    again from the run's data with the `retrain` overrides) and "judge" ((url, model)) if asked;
    `run_orms=False` leaves the run's own ORMs out (an empty "orms")."""
    from trainer.learn.orm import train_orm

    run = Run.objects.get(pk=run_id)
    config = RunConfig.from_dict(run.config)
    groups = heldout_examples(run, config)
    result: dict = {
        "run_id": run.pk,
        "heldout_counts": {g: len(v) for g, v in groups.items()},
        "orms": [],
    }
    own = Checkpoint.objects.filter(run=run, kind=Checkpoint.Kind.ORM).order_by(
        "phase__index", "pk"
    )
    for orm in own if run_orms else []:
        index = orm.phase.index if orm.phase else 0
        entry = {"checkpoint": orm.pk, "phase": index, "path": orm.path, "format": orm.format}
        entry.update(orm_figures(run, config, orm, groups, index))
        result["orms"].append(entry)
    if retrain is not None:
        phase0 = Phase.objects.get(run=run, index=0)
        actor = (
            Checkpoint.objects.filter(run=run, kind=Checkpoint.Kind.ACTOR, phase=phase0)
            .order_by("pk")
            .first()
        )
        if actor is None:
            raise ValueError(f"run {run_id} has no phase-0 actor checkpoint to start the ORM from")
        variant = config.with_overrides(retrain)
        examples = orm_training_examples(run, phase0, variant)
        if not examples:
            raise ValueError(f"run {run_id} has no phase-0 ORM data")
        out_root = out_root or Path(settings.CHECKPOINT_ROOT) / f"run-{run.pk}" / "orm-measure"
        t0 = time.time()
        trained = train_orm(variant, examples, out_root / "retrained", init=actor.path)
        seconds = round(time.time() - t0, 1)
        orm = Checkpoint(run=run, kind=Checkpoint.Kind.ORM, path=trained["model_dir"])
        result["retrained"] = {
            "overrides": retrain,
            "train_seconds": seconds,
            "examples": _counts(examples),
            "calibration": {k: v for k, v in trained.items() if k.startswith("orm/")},
            **orm_figures(run, variant, orm, groups, 0),
        }
    if judge is not None:
        url, model = judge
        judged = config.with_overrides(
            ["orm.backend=openai", f"orm.judge_url={url}", f"orm.judge_model={model}"]
        )
        orm = Checkpoint(run=run, kind=Checkpoint.Kind.ORM, path=url, format=JUDGE_FORMAT)
        result["judge"] = {"url": url, "model": model, **orm_figures(run, judged, orm, groups, 0)}
    return result


def _counts(examples: list[dict]) -> dict:
    """Training examples by source and label, before balancing."""
    out: dict = {}
    for ex in examples:
        key = f"{ex.get('source', '')}/{'yes' if ex['label'] else 'no'}"
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))
