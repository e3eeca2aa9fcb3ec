"""The ORM's examples from a run's trajectories and its figures against ground truth.

Training (phase 0, train tasks): the oracle's demonstrations, failures built from them
(trainer/learn/orm_data.py), the SFT policy's rollouts and every human label. Held out (test tasks, never
trained on): the oracle's runs (`heldout` trajectories), the policy's evaluation episodes and the
near-misses built from those oracle runs, each group also judged alone.
"""

from __future__ import annotations

from apps.rollouts.models import Trajectory
from apps.runs.models import Checkpoint, Run
from apps.runs.rows import SUCCESS, demo_rows, finished_train, trajectory_rows, world_tasks
from trainer.config import RunConfig
from trainer.env.evaluators import score_offline
from trainer.learn.orm_data import NEAR_MISS_KINDS, constructed_failures, example

HELDOUT_GROUPS = ("oracle_success", "policy_success", "policy_failure", "near_miss")
FIGURES = ("accuracy", "balanced_accuracy", "precision", "recall", "specificity",
           "n_success", "n_failure")  # fmt: skip
JUDGE_FORMAT = "openai"
"""Checkpoint.format of an ORM that is an LLM judge (its path is the judge's URL)."""


def split_configs(config: RunConfig, split: str) -> list[dict]:
    return [{**t.config, "intent": t.intent} for t in world_tasks(config, split)]


def orm_training_examples(run: Run, phase0, config: RunConfig) -> list[dict]:
    """Phase 0's ORM data: oracle successes, the SFT policy's rollouts by ground truth, the
    near-misses built from the demonstrations, and every human-labelled rollout of the run."""
    demos = demo_rows(run.pk)
    examples = [example(r, True, "oracle") for r in demos]
    for r in trajectory_rows(finished_train(phase0)):
        if r["score"] is not None or r["human_label"] is not None:
            examples.append(example(r, r["score"] is not None and r["score"] >= SUCCESS, "policy"))
    labelled = Trajectory.objects.filter(
        run=run, purpose=Trajectory.Purpose.TRAIN, status=Trajectory.Status.OK,
        human_label__isnull=False,
    ).exclude(phase=phase0)  # fmt: skip
    examples += [example(r, bool(r["human_label"]), "human") for r in trajectory_rows(labelled)]
    if config.orm.near_misses:
        tasks = split_configs(config, "train")
        examples += constructed_failures(demos, tasks, score_offline, config.seed)
    return examples


def heldout_examples(run: Run, config: RunConfig) -> dict[str, list[dict]]:
    """The held-out groups on test tasks, labelled by ground truth alone (no human labels)."""
    ok = Trajectory.objects.filter(run=run, status=Trajectory.Status.OK, score__isnull=False)
    oracle = trajectory_rows(ok.filter(purpose=Trajectory.Purpose.HELDOUT, score__gte=SUCCESS))
    evals = trajectory_rows(ok.filter(purpose=Trajectory.Purpose.EVAL))
    for row in oracle + evals:
        row["human_label"] = None
    tasks = split_configs(config, "test")
    return {
        "oracle_success": [example(r, True, "oracle") for r in oracle],
        "policy_success": [example(r, True, "policy") for r in evals if r["score"] >= SUCCESS],
        "policy_failure": [example(r, False, "policy") for r in evals if r["score"] < SUCCESS],
        "near_miss": constructed_failures(oracle, tasks, score_offline, config.seed),
    }


def score_examples(config: RunConfig, orm: Checkpoint, examples: list[dict]) -> list[float]:
    """P(YES) per example from the run's ORM: a trained checkpoint or the LLM judge."""
    if not examples:
        return []
    if orm.format == JUDGE_FORMAT:
        from trainer.serve.orm_judge import judge_from_config

        return judge_from_config(config.orm).p_yes(examples)
    from trainer.learn.orm import example_scores

    return example_scores(config, orm.path, examples)


def orm_threshold(config: RunConfig, orm: Checkpoint) -> float:
    """The threshold the ORM labels with: its stored calibration, else `orm.threshold`."""
    if orm.format == JUDGE_FORMAT or not config.orm.calibrate:
        return config.orm.threshold
    from trainer.learn.orm_calibration import read_threshold

    return read_threshold(orm.path, config.orm.threshold)


def figures(probs: list[float], examples: list[dict], threshold: float) -> dict[str, float]:
    """FIGURES of [P(YES) >= threshold] against the examples' labels, without the `orm/` prefix."""
    from trainer.learn.orm import classification_metrics

    m = classification_metrics(probs, [bool(ex["label"]) for ex in examples], threshold)
    return {name: m[f"orm/{name}"] for name in FIGURES}


def heldout_figures(
    config: RunConfig, orm: Checkpoint, groups: dict[str, list[dict]]
) -> dict[str, dict[str, float]]:
    """{group: FIGURES} for "all", each group alone, "oracle_success+near_miss" (telling a
    success from its near-misses) and each near-miss kind alone."""
    threshold = orm_threshold(config, orm)
    names = [g for g in HELDOUT_GROUPS if groups.get(g)]
    examples = [ex for g in names for ex in groups[g]]
    probs = score_examples(config, orm, examples)
    scored: dict[str, list[tuple[float, dict]]] = {}
    at = 0
    for g in names:
        scored[g] = list(zip(probs[at : at + len(groups[g])], groups[g], strict=True))
        at += len(groups[g])
    sets = {"all": [pair for g in names for pair in scored[g]], **scored}
    if "near_miss" in scored:
        sets["oracle_success+near_miss"] = scored.get("oracle_success", []) + scored["near_miss"]
        for kind in NEAR_MISS_KINDS:
            pairs = [pair for pair in scored["near_miss"] if pair[1]["source"] == kind]
            if pairs:
                sets[f"near_miss/{kind}"] = pairs
    out = {
        name: figures([p for p, _ in pairs], [ex for _, ex in pairs], threshold)
        for name, pairs in sets.items()
    }
    out["all"]["threshold"] = threshold
    return out


def heldout_metrics(figs: dict[str, dict[str, float]]) -> dict[str, float]:
    """Flat `orm_heldout/<figure>/<group>` metric points of `heldout_figures` (the run page plots
    `orm_heldout/balanced_accuracy`, one line per group)."""
    return {f"orm_heldout/{k}/{g}": float(v) for g, m in figs.items() for k, v in m.items()}
