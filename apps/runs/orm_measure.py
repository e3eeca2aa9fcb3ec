"""How well phase 0's ORM judges a finished run's later trajectories, retrained under other settings.

The run's own phase-0 data (oracle successes and SFT rollouts labelled by ground truth) trains one
ORM per variant from the run's SFT checkpoint; each is scored against the ground truth of every
later trajectory the world's evaluators scored (training rollouts of phases >= 1 and evaluations).
"""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings

from apps.rollouts.models import Trajectory
from apps.runs.models import Checkpoint, Phase, Run
from apps.runs.stages import SUCCESS, orm_init_examples, trajectory_rows
from trainer.config import RunConfig


def judged_rows(run: Run) -> list[dict]:
    """Trajectories after phase 0's training rollouts that have a ground-truth score."""
    qs = Trajectory.objects.filter(run=run, status=Trajectory.Status.OK, score__isnull=False)
    later = qs.filter(purpose=Trajectory.Purpose.TRAIN, phase__index__gte=1)
    evals = qs.filter(purpose=Trajectory.Purpose.EVAL)
    return trajectory_rows(later) + trajectory_rows(evals)


def measure_orm_variants(
    run_id: int, variants: dict[str, list[str]], out_root: Path | None = None
) -> dict:
    """{variant: metrics} for an ORM trained on the run's phase-0 data with each list of overrides."""
    from trainer.learn.orm import classification_metrics, orm_scores, train_orm
    from trainer.prompts import build_orm_prompt

    run = Run.objects.get(pk=run_id)
    phase0 = Phase.objects.get(run=run, index=0)
    actor = (
        Checkpoint.objects.filter(run=run, kind=Checkpoint.Kind.ACTOR, phase=phase0)
        .order_by("pk")
        .first()
    )
    if actor is None:
        raise ValueError(f"run {run_id} has no phase-0 actor checkpoint to start the ORM from")
    base = RunConfig.from_dict(run.config)
    variant = base.rollout.prompt
    examples = orm_init_examples(run.pk, phase0, variant)
    rows = judged_rows(run)
    if not examples or not rows:
        raise ValueError(f"run {run_id} has no phase-0 ORM data or no later scored trajectories")
    prompts = [
        build_orm_prompt(r["intent"], r["responses"], r["observations"][-1], variant=variant)
        for r in rows
    ]
    truth = [r["score"] >= SUCCESS for r in rows]
    out_root = out_root or Path(settings.CHECKPOINT_ROOT) / f"run-{run.pk}" / "orm-measure"
    result: dict = {
        "run_id": run.pk,
        "train_examples": len(examples),
        "train_positives": sum(bool(e["label"]) for e in examples),
        "judged": len(rows),
        "judged_successes": sum(truth),
        "variants": {},
    }
    for name, overrides in variants.items():
        config = base.with_overrides(overrides)
        t0 = time.time()
        trained = train_orm(config, examples, out_root / name, init=actor.path)
        probs = orm_scores(
            trained["model_dir"], prompts, max_seq_len=config.engine.max_seq_len,
            device=config.engine.device,
        )  # fmt: skip
        metrics = classification_metrics(probs, truth, config.orm.threshold)
        result["variants"][name] = {
            "overrides": overrides,
            "heldout": {k: v for k, v in trained.items() if k.startswith("orm/")},
            "later": {k: v for k, v in metrics.items() if k != "orm/heldout"},
            "said_yes": sum(p >= config.orm.threshold for p in probs),
            "seconds": round(time.time() - t0, 1),
        }
    return result
