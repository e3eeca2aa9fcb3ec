"""/api/trajectories (with steps), human labels, generated tasks (approve, reject) and checkpoints.
Writes call the same service functions as the pages: `add_human_label`, `approve_tasks`,
`reject_tasks`; their role checks answer 403."""

from __future__ import annotations

import json
from typing import Literal

from django.shortcuts import get_object_or_404
from ninja import Field, Path, Query, Router, Status
from ninja.errors import HttpError

from apps.api.runs import finite, page_of
from apps.api.schemas import (
    ERRORS,
    MAX_ID,
    CheckpointPage,
    DecisionIn,
    DecisionOut,
    ErrorOut,
    LabelIn,
    LabelOut,
    PageQuery,
    TaskPage,
    TaskStatus,
    TrajectoryOut,
    TrajectoryPage,
    TrajectoryStatus,
)
from apps.curriculum.models import Task
from apps.curriculum.services import approve_tasks, reject_tasks
from apps.reviews.services import add_human_label
from apps.rollouts.models import Step, Trajectory
from apps.runs.models import Checkpoint

router = Router()
Id = dict(ge=1, le=MAX_ID)


def step_out(step: Step, observations: bool) -> dict:
    return {
        "index": step.index,
        "url": step.url,
        "response": step.response,
        "action": step.action if isinstance(step.action, dict) else None,
        "error": step.error,
        "elapsed_ms": finite(step.elapsed_ms),
        "has_screenshot": bool(step.screenshot),
        "observation": step.observation if observations else None,
    }


def trajectory_out(t: Trajectory, steps: list[Step] | None = None, observations=False) -> dict:
    return {
        "id": t.pk,
        "run": t.run_id,
        "phase": t.phase.index if t.phase_id else None,
        "task": t.task_id,
        "intent": t.task.intent,
        "sites": t.task.sites,
        "purpose": t.purpose,
        "status": t.status,
        "score": finite(t.score),
        "orm_p_yes": finite(t.orm_p_yes),
        "human_label": t.human_label,
        "reward": finite(t.reward),
        "step_count": t.step_count,
        "final_answer": t.final_answer,
        "created_at": t.created_at,
        "steps": None if steps is None else [step_out(s, observations) for s in steps],
    }


class TrajectoryFilters(PageQuery):
    run: int | None = Field(None, **Id)
    phase: int | None = Field(None, ge=0, le=MAX_ID, description="Phase index")
    status: TrajectoryStatus | None = None
    outcome: Literal["success", "failure"] | None = Field(
        None, description="By reward (the human label, else the ORM's): >= 0.5 is success"
    )
    purpose: Literal[tuple(Trajectory.Purpose.values)] | None = None
    task: int | None = Field(None, **Id)
    labelled: bool | None = Field(None, description="Has a human label")
    with_steps: bool = Field(False, description="Include each trajectory's steps")
    observations: bool = Field(False, description="Include each step's page HTML (large)")


def _steps(trajectory_ids: list[int], observations: bool) -> dict[int, list[Step]]:
    rows = Step.objects.filter(trajectory_id__in=trajectory_ids).order_by("trajectory_id", "index")
    rows = rows.defer("token_ids") if observations else rows.defer("token_ids", "observation")
    out: dict[int, list[Step]] = {i: [] for i in trajectory_ids}
    for step in rows:
        out[step.trajectory_id].append(step)
    return out


@router.get(
    "/trajectories",
    response={200: TrajectoryPage, ERRORS: ErrorOut},
    tags=["trajectories"],
    summary="List trajectories, filtered by run, phase, status, outcome, ...",
)
def list_trajectories(request, filters: Query[TrajectoryFilters]):
    rows = Trajectory.objects.select_related("task", "phase")
    for field, lookup in (("run", "run_id"), ("phase", "phase__index"), ("status", "status"),
                          ("purpose", "purpose"), ("task", "task_id")):  # fmt: skip
        value = getattr(filters, field)
        if value is not None:
            rows = rows.filter(**{lookup: value})
    if filters.outcome == "success":
        rows = rows.filter(reward__gte=0.5)
    elif filters.outcome == "failure":
        rows = rows.filter(reward__lt=0.5)
    if filters.labelled is not None:
        rows = rows.filter(human_label__isnull=not filters.labelled)
    page = page_of(rows, filters, lambda t: t)
    steps = (
        _steps([t.pk for t in page["items"]], filters.observations) if filters.with_steps else {}
    )
    page["items"] = [
        trajectory_out(t, steps.get(t.pk) if filters.with_steps else None, filters.observations)
        for t in page["items"]
    ]
    return page


@router.get(
    "/trajectories/{trajectory_id}",
    response={200: TrajectoryOut, ERRORS: ErrorOut},
    tags=["trajectories"],
    summary="One trajectory with its steps",
)
def get_trajectory(request, trajectory_id: int = Path(..., **Id), observations: bool = False):
    t = get_object_or_404(Trajectory.objects.select_related("task", "phase"), pk=trajectory_id)
    return trajectory_out(t, _steps([t.pk], observations)[t.pk], observations)


@router.post(
    "/trajectories/{trajectory_id}/labels",
    response={201: LabelOut, ERRORS: ErrorOut},
    tags=["labels"],
    summary="Post a human label (reviewers)",
)
def post_label(request, payload: LabelIn, trajectory_id: int = Path(..., **Id)):
    """The latest label counts: the trajectory's `human_label` and `reward` follow it."""
    trajectory = get_object_or_404(Trajectory.objects.only("id"), pk=trajectory_id)
    row = add_human_label(request.auth, trajectory, payload.label, payload.note)
    return Status(201, {"id": row.pk, "trajectory": trajectory.pk, "label": row.label,
                        "note": row.note, "user": request.auth.username,
                        "created_at": row.created_at})  # fmt: skip


def task_out(task: Task) -> dict:
    return {
        "id": task.pk, "key": task.key, "intent": task.intent, "sites": task.sites,
        "world": task.world, "split": task.split, "origin": task.origin, "status": task.status,
        "run": task.run_id,
        "phase": task.generating_phase.index if task.generating_phase_id else None,
        "critic_value": finite(task.critic_value),
        "parents": [p.pk for p in task.parents.all()],
        "config": task.config if isinstance(task.config, dict) else {},
    }  # fmt: skip


class TaskFilters(PageQuery):
    run: int | None = Field(None, **Id, description="Tasks a run generated")
    status: TaskStatus | None = None
    origin: Literal[tuple(Task.Origin.values)] | None = None
    split: Literal[tuple(Task.Split.values)] | None = None
    world: Literal[tuple(Task.World.values)] | None = None


@router.get("/tasks", response={200: TaskPage, ERRORS: ErrorOut}, tags=["tasks"],
            summary="List tasks (seeds and generated ones)")  # fmt: skip
def list_tasks(request, filters: Query[TaskFilters]):
    rows = Task.objects.select_related("generating_phase").prefetch_related("parents")
    for field, lookup in (("run", "run_id"), ("status", "status"), ("origin", "origin"),
                          ("split", "split"), ("world", "world")):  # fmt: skip
        value = getattr(filters, field)
        if value is not None:
            rows = rows.filter(**{lookup: value})
    return page_of(rows, filters, task_out)


def _is_json_object(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body), dict)
    except (ValueError, RecursionError):
        return False


def _decide(request, task_id: int, payload: DecisionIn | None, decide) -> dict:
    if request.body.strip() and not _is_json_object(request.body):
        # ninja reads a body that is JSON but not an object (NaN, [1], "x") as "no note"
        raise HttpError(422, 'The body must be empty or a JSON object such as {"note": "..."}.')
    task = get_object_or_404(Task.objects.only("id", "origin"), pk=task_id)
    if task.origin != Task.Origin.GENERATED:
        raise HttpError(409, "Only generated tasks are curated; this one is a seed task.")
    changed = decide(request.auth, [task.pk], note=payload.note if payload else "")
    fresh = Task.objects.select_related("generating_phase").prefetch_related("parents")
    return {"changed": bool(changed), "task": task_out(fresh.get(pk=task.pk))}


@router.post("/tasks/{task_id}/approve", response={200: DecisionOut, ERRORS: ErrorOut},
             tags=["tasks"], summary="Approve a generated task (reviewers)")  # fmt: skip
def approve(request, payload: DecisionIn | None = None, task_id: int = Path(..., **Id)):
    return _decide(request, task_id, payload, approve_tasks)


@router.post("/tasks/{task_id}/reject", response={200: DecisionOut, ERRORS: ErrorOut},
             tags=["tasks"], summary="Reject a generated task (reviewers)")  # fmt: skip
def reject(request, payload: DecisionIn | None = None, task_id: int = Path(..., **Id)):
    return _decide(request, task_id, payload, reject_tasks)


def checkpoint_out(c: Checkpoint) -> dict:
    return {"id": c.pk, "run": c.run_id, "phase": c.phase.index if c.phase_id else None,
            "kind": c.kind, "path": c.path, "format": c.format, "step": c.step,
            "metrics": c.metrics if isinstance(c.metrics, dict) else {},
            "created_at": c.created_at}  # fmt: skip


class CheckpointFilters(PageQuery):
    run: int | None = Field(None, **Id)
    kind: Literal[tuple(Checkpoint.Kind.values)] | None = None


@router.get("/checkpoints", response={200: CheckpointPage, ERRORS: ErrorOut},
            tags=["checkpoints"], summary="List checkpoints")  # fmt: skip
def list_checkpoints(request, filters: Query[CheckpointFilters]):
    rows = Checkpoint.objects.select_related("phase")
    if filters.run is not None:
        rows = rows.filter(run_id=filters.run)
    if filters.kind is not None:
        rows = rows.filter(kind=filters.kind)
    return page_of(rows, filters, checkpoint_out)
