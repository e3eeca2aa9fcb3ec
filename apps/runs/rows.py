"""A run's finished trajectories as plain rows and step records: what the stages, the ORM's data sets
and the experiment read from the database."""

from __future__ import annotations

from apps.curriculum.models import Task
from apps.rollouts.models import Trajectory
from apps.runs.models import Phase
from trainer.config import RunConfig
from trainer.phase import step_records

SUCCESS = 1.0
"""An evaluator score at or above this is a success."""


def world_tasks(config: RunConfig, split: str):
    return Task.objects.filter(
        world=config.world, world_seed=config.world_seed, split=split, status=Task.Status.APPROVED
    )


def trajectory_rows(qs) -> list[dict]:
    """(intent, observations, responses, ...) per finished trajectory, steps in order."""
    rows = []
    for traj in qs.select_related("task").prefetch_related("steps"):
        steps = sorted(traj.steps.all(), key=lambda s: s.index)
        if not steps:
            continue
        rows.append(
            {
                "id": traj.pk,
                "task_id": traj.task_id,
                "task": traj.task.config,
                "intent": traj.task.intent,
                "site": traj.task.site_label,
                "observations": [s.observation for s in steps],
                "responses": [s.response for s in steps],
                "actions": [s.action for s in steps],
                "urls": [s.url for s in steps],
                "final_answer": traj.final_answer,
                "final_url": traj.final_url,
                "token_ids": [s.token_ids for s in steps],
                "score": traj.score,
                "reward": traj.reward,
                "human_label": traj.human_label,
            }
        )
    return rows


def records_of(
    rows: list[dict], gamma: float, reward_key: str = "reward", variant: str = "webrl"
) -> list[dict]:
    """Step records of finished trajectories, with agent prompts of `variant` (`rollout.prompt`)."""
    out = []
    for row in rows:
        reward = row[reward_key]
        reward = 0.0 if reward is None else (1.0 if reward >= 0.5 else 0.0)
        out.extend(
            step_records(
                row["intent"], row["observations"], row["responses"], reward, gamma, variant=variant
            )
        )
    return out


def without_waiting_steps(row: dict) -> dict:
    """An oracle demonstration without the steps in which the oracle only waited for the page to
    update: the action before a wait is followed by the page it led to, and the histories of later
    steps hold no waits."""
    from sandbox.oracle import is_waiting_step

    keep = [i for i, r in enumerate(row["responses"]) if not is_waiting_step(r)]
    per_step = ("observations", "responses", "token_ids", "actions", "urls")
    return {**row, **{k: [row[k][i] for i in keep] for k in per_step if k in row}}


def demo_rows(run_id: int) -> list[dict]:
    """Successful oracle demonstrations of the run's phase 0 (label 1 by ground truth), without
    the oracle's waiting steps."""
    qs = Trajectory.objects.filter(
        run_id=run_id,
        purpose=Trajectory.Purpose.DEMO,
        status=Trajectory.Status.OK,
        score__gte=SUCCESS,
    )
    rows = [without_waiting_steps(row) for row in trajectory_rows(qs)]
    for row in rows:
        row["reward"] = 1.0
    return rows


def finished_train(phase: Phase):
    return Trajectory.objects.filter(
        phase=phase, purpose=Trajectory.Purpose.TRAIN, status=Trajectory.Status.OK
    )
