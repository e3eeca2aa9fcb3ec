"""The API's request and response shapes (pydantic, via django-ninja); they are the OpenAPI schema."""

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema

from apps.curriculum.models import Task
from apps.rollouts.models import Trajectory
from apps.runs.models import Checkpoint, Phase, Run, StageRun
from trainer.config import PRESETS

MAX_ID = 2**63 - 1  # Postgres bigint
# The error statuses every operation documents (each with the ErrorOut body).
ERRORS = frozenset({400, 401, 403, 404, 409, 422})
# Postgres text cannot hold NUL; refusing it here gives a 422 naming the field, not a 500.
Text = Annotated[str, Field(pattern=r"^[^\x00]*$")]

RunStatus = Literal[tuple(Run.Status.values)]
TrajectoryStatus = Literal[tuple(Trajectory.Status.values)]
TaskStatus = Literal[tuple(Task.Status.values)]


class ErrorDetail(Schema):
    field: str | None = Field(None, description="The parameter or config field, dotted")
    message: str


class ErrorBody(Schema):
    status: int
    code: str = Field(
        ..., description="invalid, invalid_config, unauthenticated, forbidden, not_found, ..."
    )
    message: str
    field: str | None = Field(None, description="The field the (first) error is about")
    details: list[ErrorDetail] = []


class ErrorOut(Schema):
    """Every error, whatever the endpoint."""

    error: ErrorBody


class Page(Schema):
    next_before: int | None = Field(
        None, description="Pass as `before` for the next page; null on the last page"
    )
    limit: int


class PageQuery(Schema):
    limit: int = Field(50, ge=1, le=200, description="Items per page")
    before: int | None = Field(
        None,
        ge=1,
        le=MAX_ID,
        description="Only items with a smaller id (the previous page's next_before)",
    )


# Runs


class RunOut(Schema):
    id: int
    name: str
    status: RunStatus
    preset: str | None
    owner: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    last_error: str
    url: str = Field(..., description="The run's page on the dashboard")


class RunPage(Page):
    items: list[RunOut]


class StageOut(Schema):
    name: str
    status: Literal[tuple(StageRun.Status.values)]
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    error: str
    metrics: dict[str, Any]


class PhaseOut(Schema):
    index: int
    status: Literal[tuple(Phase.Status.values)]
    stage: str
    metrics: dict[str, Any]
    started_at: datetime | None
    finished_at: datetime | None
    stages: list[StageOut]


class LatestMetric(Schema):
    step: int
    value: float | None = Field(..., description="null for a NaN or infinite value")


class RunDetailOut(RunOut):
    config: dict[str, Any]
    phases: list[PhaseOut]
    latest_metrics: dict[str, LatestMetric]


class RunCreateIn(Schema):
    name: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
    preset: Literal[PRESETS] = "demo-cpu"
    overrides: dict[str, Any] = Field(
        {},
        description='`{"section.field": value}` with JSON values, e.g. {"actor.lr": 1e-5, '
        '"run.phases": 2}; checked by RunConfig, whose message names the field',
    )


class CancelOut(Schema):
    cancelled: bool = Field(..., description="False when the run had already finished")
    status: RunStatus


class Point(Schema):
    step: int
    value: float | None


class Series(Schema):
    name: str
    points: list[Point]


class MetricsOut(Schema):
    run: int
    series: list[Series]
    truncated: bool = Field(..., description="True when more points exist than one answer holds")


# Trajectories and labels


class StepOut(Schema):
    index: int
    url: str
    response: str
    action: dict[str, Any] | None
    error: str
    elapsed_ms: float | None
    has_screenshot: bool
    observation: str | None = Field(None, description="Only with observations=true")


class TrajectoryOut(Schema):
    id: int
    run: int | None
    phase: int | None = Field(..., description="The phase's index")
    task: int
    intent: str
    sites: list[str]
    purpose: Literal[tuple(Trajectory.Purpose.values)]
    status: TrajectoryStatus
    score: float | None = Field(..., description="Ground truth, null without an evaluator")
    orm_p_yes: float | None
    human_label: bool | None
    reward: float | None = Field(..., description="The human label, else the ORM's")
    step_count: int
    final_answer: str | None
    created_at: datetime
    steps: list[StepOut] | None = Field(
        None, description="With with_steps=true, or on one trajectory"
    )


class TrajectoryPage(Page):
    items: list[TrajectoryOut]


class LabelIn(Schema):
    label: bool = Field(..., description="true = the agent succeeded")
    note: Annotated[str, Field(max_length=2000, pattern=r"^[^\x00]*$")] = ""


class LabelOut(Schema):
    id: int
    trajectory: int
    label: bool
    note: str
    user: str
    created_at: datetime


# Tasks and checkpoints


class TaskOut(Schema):
    id: int
    key: str
    intent: str
    sites: list[str]
    world: str
    split: str
    origin: str
    status: TaskStatus
    run: int | None
    phase: int | None = Field(..., description="Index of the phase that generated it")
    critic_value: float | None
    parents: list[int]
    config: dict[str, Any]


class TaskPage(Page):
    items: list[TaskOut]


class DecisionIn(Schema):
    note: Annotated[str, Field(max_length=2000, pattern=r"^[^\x00]*$")] = ""


class DecisionOut(Schema):
    changed: bool = Field(..., description="False when the task already had that status")
    task: TaskOut


class CheckpointOut(Schema):
    id: int
    run: int
    phase: int | None = Field(..., description="The phase's index")
    kind: Literal[tuple(Checkpoint.Kind.values)]
    path: str
    format: str
    step: int
    metrics: dict[str, Any]
    created_at: datetime


class CheckpointPage(Page):
    items: list[CheckpointOut]
