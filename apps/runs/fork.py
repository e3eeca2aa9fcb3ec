"""Fork a run after one of its phases: a new run that shares the earlier phases' results and runs the
rest under a changed config.

The fork gets its own copies of the phases up to `through_phase` (their stages done, metrics,
checkpoint rows, trajectories with their steps but not their screenshots, metric points and the
tasks they generated), so the stages after them read exactly what they would have read in the
original run. Checkpoint rows point at the original's model directories (read-only to the fork:
its own stages write under its own run directory). ORM verdict and human label rows stay with the original; the copied trajectories keep
their denormalised `reward`, `orm_p_yes` and `human_label`.

`experiment learning` uses it for the row "WebRL with ground-truth reward": phase 0 (SFT, the
initial ORM, the curriculum) is shared, and the RL phases train on the evaluator's verdicts.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Case, Value, When

from apps.curriculum.models import Task
from apps.rollouts.models import Step, Trajectory
from apps.runs import orchestrator
from apps.runs.models import Checkpoint, MetricPoint, Phase, Run, StageRun
from apps.runs.rows import SUCCESS
from trainer.config import ConfigError, RunConfig


class ForkError(ValueError):
    """The run cannot be forked there (not finished that far, or a bad override)."""


def fork_run(
    run: Run, overrides: list[str], through_phase: int = 0, name: str | None = None, owner=None
) -> Run:
    """A queued run with `run`'s config plus `overrides` and copies of its phases 0..through_phase;
    start it like any run (its first stage is phase through_phase + 1's first)."""
    config = RunConfig.from_dict(run.config)
    try:
        forked = config.with_overrides(overrides)
    except ConfigError as exc:
        raise ForkError(str(exc)) from None
    if forked.run.phases <= through_phase:
        raise ForkError(
            f"run.phases is {forked.run.phases}: a fork after phase {through_phase} has nothing to run"
        )
    done = StageRun.objects.filter(phase__run=run, phase__index__lte=through_phase)
    unfinished = done.exclude(status__in=(StageRun.Status.DONE, StageRun.Status.SKIPPED))
    if not done.exists() or unfinished.exists():
        raise ForkError(f"run {run.pk} has not finished phase {through_phase}")
    with transaction.atomic():
        fork = Run.objects.create(
            owner=owner or run.owner,
            name=name or f"{run.name} (fork after phase {through_phase})",
            config=forked.to_dict(),
        )
        orchestrator.ensure_phases(fork)
        phases = {}
        for old in Phase.objects.filter(run=run, index__lte=through_phase):
            new = Phase.objects.get(run=fork, index=old.index)
            Phase.objects.filter(pk=new.pk).update(metrics=old.metrics)
            phases[old.pk] = new
            for stage in old.stages.all():
                StageRun.objects.filter(phase=new, name=stage.name).update(
                    status=stage.status, attempts=stage.attempts, metrics=stage.metrics,
                    progress=stage.progress, started_at=stage.started_at,
                    finished_at=stage.finished_at,
                )  # fmt: skip
        tasks = _copy_generated_tasks(run, fork, phases)
        checkpoints = _copy_checkpoints(run, fork, phases)
        _copy_trajectories(run, fork, phases, tasks, checkpoints)
        MetricPoint.objects.bulk_create(
            MetricPoint(run=fork, phase=phases[p.phase_id], name=p.name, step=p.step, value=p.value)
            for p in MetricPoint.objects.filter(run=run, phase_id__in=phases)
        )
        if forked.orm.reward_source == "ground_truth":
            # the earlier successes replay reads are judged by the evaluator too
            Trajectory.objects.filter(
                run=fork, human_label__isnull=True, score__isnull=False
            ).update(reward=Case(When(score__gte=SUCCESS, then=Value(1.0)), default=Value(0.0)))
    return fork


def _copy_generated_tasks(run: Run, fork: Run, phases: dict[int, Phase]) -> dict[int, int]:
    mapping = {}
    for task in Task.objects.filter(run=run, generating_phase_id__in=phases):
        parents = list(task.parents.values_list("pk", flat=True))
        old_pk = task.pk
        task.pk = None
        task.key = f"{task.key}~run{fork.pk}"[:200]
        task.run = fork
        task.generating_phase = phases[task.generating_phase_id]
        task.save()
        task.parents.set(parents)
        mapping[old_pk] = task.pk
    return mapping


def _copy_checkpoints(run: Run, fork: Run, phases: dict[int, Phase]) -> dict[int, int]:
    mapping = {}
    for ckpt in Checkpoint.objects.filter(run=run, phase_id__in=phases).order_by("created_at"):
        old_pk = ckpt.pk
        ckpt.pk = None
        ckpt.run = fork
        ckpt.phase = phases[ckpt.phase_id]
        created = ckpt.created_at
        ckpt.save()
        # "the latest checkpoint" orders by creation: the copies keep the originals' order
        Checkpoint.objects.filter(pk=ckpt.pk).update(created_at=created)
        mapping[old_pk] = ckpt.pk
    return mapping


def _copy_trajectories(
    run, fork, phases, tasks: dict[int, int], checkpoints: dict[int, int]
) -> None:
    originals = Trajectory.objects.filter(run=run, phase_id__in=phases).order_by("pk")
    for traj in originals.prefetch_related("steps"):
        steps = list(traj.steps.all())
        traj.pk = None
        traj.run = fork
        traj.phase = phases[traj.phase_id]
        traj.task_id = tasks.get(traj.task_id, traj.task_id)
        traj.checkpoint_id = checkpoints.get(traj.checkpoint_id) if traj.checkpoint_id else None
        traj.claimed_by, traj.token = "", ""
        traj.save()
        for step in steps:
            step.pk = None
            step.trajectory = traj
            step.screenshot = ""  # the files stay the original's (pruning one run spares the other)
        Step.objects.bulk_create(steps)
