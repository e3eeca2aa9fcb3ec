"""Runs, their phases and stages, checkpoints and metric points."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Run(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        CANCELLING = "cancelling"
        CANCELLED = "cancelled"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING, Status.CANCELLING)

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="runs"
    )
    name = models.CharField(max_length=200)
    config = models.JSONField(help_text="The trainer's RunConfig exactly as to_dict() gives it.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="run_status_heartbeat")]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class Stage(models.TextChoices):
    """The stages of a phase, in order (phase 0 runs SFT and the initial ORM instead of RL)."""

    SFT = "sft"
    ORM_INIT = "orm_init"
    ROLLOUT = "rollout"
    ORM = "orm"
    REPLAY = "replay"
    CRITIC = "critic"
    ACTOR = "actor"
    EVAL = "eval"
    CURRICULUM = "curriculum"


class Phase(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="phases")
    index = models.PositiveIntegerField()
    stage = models.CharField(max_length=20, choices=Stage.choices, blank=True, default="")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    metrics = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="phase_unique_index")]

    def __str__(self) -> str:
        return f"run {self.run_id} phase {self.index}"


class StageRun(models.Model):
    """One stage of one phase: claimed by a conditional update, so running it twice is harmless.

    Each claim gets a new `token`; beats, completion and failure must present it, so a worker
    whose claim was reset (and re-claimed) can no longer write anything."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        SKIPPED = "skipped"
        CANCELLED = "cancelled"

    phase = models.ForeignKey(Phase, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(max_length=20, choices=Stage.choices)
    order = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    claimed_by = models.CharField(max_length=200, blank=True, default="")
    token = models.CharField(
        max_length=32,
        blank=True,
        default="",
        help_text="The current claim's fencing token: every write of the claimant must match it.",
    )
    dispatched_at = models.DateTimeField(
        null=True, blank=True, help_text="When its message was last sent to a queue."
    )
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    progress = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["phase", "order"]
        constraints = [
            models.UniqueConstraint(fields=["phase", "name"], name="stage_unique_per_phase")
        ]

    @property
    def duration_s(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class Checkpoint(models.Model):
    class Kind(models.TextChoices):
        ACTOR = "actor"
        CRITIC = "critic"
        ORM = "orm"
        REFERENCE = "reference"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="checkpoints")
    phase = models.ForeignKey(
        Phase, on_delete=models.CASCADE, related_name="checkpoints", null=True, blank=True
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    path = models.CharField(max_length=1000)
    format = models.CharField(max_length=40, default="hf")
    step = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True)
    config = models.JSONField(default=dict, blank=True, help_text="RunConfig snapshot")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "phase__index", "kind", "-created_at"]
        indexes = [models.Index(fields=["run", "kind", "phase"], name="ckpt_run_kind_phase")]

    def __str__(self) -> str:
        return f"{self.kind} checkpoint #{self.pk}"


class MetricPoint(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metric_points")
    phase = models.ForeignKey(
        Phase, on_delete=models.CASCADE, related_name="metric_points", null=True, blank=True
    )
    name = models.CharField(max_length=100)
    step = models.IntegerField()
    value = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["run", "name", "step"], name="metric_run_name_step")]


class WorldLease(models.Model):
    """One world instance held by one run's shard (or curriculum observer) until `expires_at`.

    Every reset of an instance goes through a lease (`apps.runs.leases`), so two runs, or two
    copies of one shard, never drive the same instance."""

    world = models.CharField(max_length=300, help_text="The world's control URL.")
    instance = models.PositiveIntegerField()
    run = models.ForeignKey(
        Run, on_delete=models.SET_NULL, null=True, blank=True, related_name="world_leases"
    )
    holder = models.CharField(max_length=200, blank=True, default="")
    token = models.CharField(max_length=32, blank=True, default="")
    expires_at = models.DateTimeField(null=True, blank=True)
    acquired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["world", "instance"]
        constraints = [
            models.UniqueConstraint(fields=["world", "instance"], name="lease_unique_instance")
        ]

    def __str__(self) -> str:
        return f"{self.world} #{self.instance} ({self.holder or 'free'})"
