"""Human relabelling of ORM verdicts, agreement figures, and the labels exported as ORM training data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Case, Count, Q, Value, When

from apps.curriculum.validation import clean_text
from apps.dashboard.permissions import is_reviewer
from apps.reviews.models import HumanLabel, OrmVerdict
from apps.rollouts.models import Step, Trajectory

# A trajectory succeeded by the ground truth when its evaluator score reaches this (as Trajectory.disagrees).
SUCCESS_SCORE = 1.0
ORM_THRESHOLD = 0.5


def add_human_label(user, trajectory: Trajectory, label: bool, note: str = "") -> HumanLabel:
    """Record a reviewer's verdict; the trajectory's `human_label` and `reward` follow it atomically."""
    if not is_reviewer(user):
        raise PermissionDenied("Only reviewers can label trajectories.")
    if not isinstance(label, bool):
        raise ValueError(f"label: expected True or False, got {label!r}")
    note = clean_text(note, "note", 2000)
    with transaction.atomic():
        row = HumanLabel.objects.create(trajectory=trajectory, user=user, label=label, note=note)
        Trajectory.objects.filter(pk=trajectory.pk).update(
            human_label=label, reward=1.0 if label else 0.0
        )
    trajectory.human_label = label
    trajectory.reward = 1.0 if label else 0.0
    return row


def record_orm_verdict(
    trajectory_id: int, checkpoint, p_yes: float, threshold: float, truth: float | None = None
) -> float:
    """Store the ORM's verdict and set the trajectory's reward in one UPDATE that reads the human
    label as it is then: a label given while the ORM was scoring is never overwritten. With
    `truth` (orm.reward_source "ground_truth") the reward is that instead of the verdict. Returns
    the reward stored."""
    p = min(max(float(p_yes), 0.0), 1.0)
    verdict = p >= threshold
    unlabelled = float(truth) if truth is not None else (1.0 if verdict else 0.0)
    OrmVerdict.objects.update_or_create(
        trajectory_id=trajectory_id, checkpoint=checkpoint, defaults={"p_yes": p, "label": verdict}
    )
    Trajectory.objects.filter(pk=trajectory_id).update(
        orm_p_yes=p,
        orm_uncertainty=abs(p - 0.5),
        reward=Case(
            When(human_label=True, then=Value(1.0)),
            When(human_label=False, then=Value(0.0)),
            default=Value(unlabelled),
        ),
    )
    return Trajectory.objects.values_list("reward", flat=True).get(pk=trajectory_id)


@dataclass(frozen=True)
class Agreement:
    """How often two judges agree on the same trajectories; `rate` is None when none overlap."""

    agree: int
    total: int

    @property
    def rate(self) -> float | None:
        return self.agree / self.total if self.total else None


def _orm_yes() -> Q:
    return Q(orm_p_yes__gte=ORM_THRESHOLD)


def agreement_stats(run=None) -> dict:
    """ORM vs human, human vs ground truth, ORM vs ground truth, and per reviewer (all labels)."""
    rows = Trajectory.objects.filter(human_label__isnull=False)
    everything = Trajectory.objects.all()
    if run is not None:
        rows = rows.filter(run=run)
        everything = everything.filter(run=run)
    orm_human_agree = (_orm_yes() & Q(human_label=True)) | (~_orm_yes() & Q(human_label=False))
    gt_yes = Q(score__gte=SUCCESS_SCORE)
    human_gt_agree = (gt_yes & Q(human_label=True)) | (~gt_yes & Q(human_label=False))
    totals = rows.aggregate(
        orm_total=Count("id", filter=Q(orm_p_yes__isnull=False)),
        orm_agree=Count("id", filter=Q(orm_p_yes__isnull=False) & orm_human_agree),
        gt_total=Count("id", filter=Q(score__isnull=False)),
        gt_agree=Count("id", filter=Q(score__isnull=False) & human_gt_agree),
    )
    orm_gt = everything.filter(orm_p_yes__isnull=False, score__isnull=False).aggregate(
        total=Count("id"),
        agree=Count("id", filter=(_orm_yes() & gt_yes) | (~_orm_yes() & ~gt_yes)),
    )
    return {
        "orm_vs_human": Agreement(totals["orm_agree"], totals["orm_total"]),
        "human_vs_truth": Agreement(totals["gt_agree"], totals["gt_total"]),
        "orm_vs_truth": Agreement(orm_gt["agree"], orm_gt["total"]),
        "per_reviewer": reviewer_stats(run),
    }


def reviewer_stats(run=None) -> list[dict]:
    """Per reviewer: labels given, and agreement of those labels with the ORM and the ground truth."""
    labels = HumanLabel.objects.all()
    if run is not None:
        labels = labels.filter(trajectory__run=run)
    orm_agree = (Q(label=True) & Q(trajectory__orm_p_yes__gte=ORM_THRESHOLD)) | (
        Q(label=False) & Q(trajectory__orm_p_yes__lt=ORM_THRESHOLD)
    )
    gt_agree = (Q(label=True) & Q(trajectory__score__gte=SUCCESS_SCORE)) | (
        Q(label=False) & Q(trajectory__score__lt=SUCCESS_SCORE)
    )
    rows = (
        labels.values("user__username")
        .annotate(
            labels=Count("id"),
            orm_total=Count("id", filter=Q(trajectory__orm_p_yes__isnull=False)),
            orm_agree=Count("id", filter=orm_agree),
            gt_total=Count("id", filter=Q(trajectory__score__isnull=False)),
            gt_agree=Count("id", filter=gt_agree),
        )
        .order_by("user__username")
    )
    return [
        {
            "username": r["user__username"],
            "labels": r["labels"],
            "orm": Agreement(r["orm_agree"], r["orm_total"]),
            "truth": Agreement(r["gt_agree"], r["gt_total"]),
        }
        for r in rows
    ]


def labelled_trajectories(run=None):
    """Trajectories whose latest human label counts, oldest first (the ORM training set's order)."""
    rows = Trajectory.objects.filter(human_label__isnull=False).select_related("task")
    if run is not None:
        rows = rows.filter(run=run)
    return rows.order_by("id")


def _run_section(trajectory: Trajectory, name: str) -> dict:
    config = trajectory.run.config if trajectory.run is not None else None
    return (config or {}).get(name) or {}


def prompt_variant(trajectory: Trajectory) -> str:
    """The run's `rollout.prompt` (its ORM saw prompts of that variant)."""
    return _run_section(trajectory, "rollout").get("prompt", "webrl")


def orm_checks_on(trajectory: Trajectory) -> bool:
    """The run's `orm.checks` (its ORM saw prompts with them)."""
    return bool(_run_section(trajectory, "orm").get("checks", False))


def orm_example(trajectory: Trajectory) -> dict:
    """One ORM training sample (§4.1): the chat prompt from the steps, and YES/NO from the human."""
    from trainer.prompts import build_orm_prompt

    steps = list(
        Step.objects.filter(trajectory=trajectory)
        .order_by("index")
        .values_list("response", "observation")
    )
    responses = [response for response, _ in steps]
    last_html = steps[-1][1] if steps else ""
    return {
        "trajectory_id": trajectory.pk,
        "run_id": trajectory.run_id,
        "task_id": trajectory.task_id,
        "prompt": build_orm_prompt(
            trajectory.task.intent,
            responses,
            last_html,
            variant=prompt_variant(trajectory),
            checks=orm_checks_on(trajectory),
        ),  # fmt: skip
        "completion": "YES" if trajectory.human_label else "NO",
        "label": bool(trajectory.human_label),
        "source": "human",
    }


def export_labels_jsonl(run=None) -> Iterator[str]:
    """Yield one JSON line (with its newline) per human-labelled trajectory of `run` (or of all runs)."""
    for trajectory in labelled_trajectories(run).iterator(chunk_size=200):
        yield json.dumps(orm_example(trajectory), ensure_ascii=False) + "\n"
