"""Trajectories (one episode of the agent on one task) and their steps."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models


class Trajectory(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        OK = "ok"
        ERROR = "error"
        TIMEOUT = "timeout"
        CANCELLED = "cancelled"

    FINISHED = (Status.OK, Status.ERROR, Status.TIMEOUT, Status.CANCELLED)

    class Purpose(models.TextChoices):
        TRAIN = "train"  # rollouts that feed training
        EVAL = "eval"  # evaluation on the test split
        DEMO = "demo"  # oracle demonstrations (phase 0 SFT data)
        HELDOUT = "heldout"  # oracle runs on test tasks: the ORM's held-out successes (§4)

    task = models.ForeignKey(
        "curriculum.Task", on_delete=models.PROTECT, related_name="trajectories"
    )
    run = models.ForeignKey(
        "runs.Run", on_delete=models.CASCADE, related_name="trajectories", null=True, blank=True
    )
    phase = models.ForeignKey(
        "runs.Phase", on_delete=models.CASCADE, related_name="trajectories", null=True, blank=True
    )
    checkpoint = models.ForeignKey(
        "runs.Checkpoint", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    purpose = models.CharField(max_length=10, choices=Purpose.choices, default=Purpose.TRAIN)
    sample_index = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    score = models.FloatField(
        null=True, blank=True, help_text="Ground truth; null without evaluator"
    )
    final_answer = models.TextField(null=True, blank=True)
    final_url = models.TextField(blank=True, default="")
    step_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    env_version = models.CharField(max_length=40, blank=True, default="")
    evaluator_version = models.CharField(max_length=40, blank=True, default="")
    eval_detail = models.JSONField(default=dict, blank=True)
    # Denormalised from the latest OrmVerdict and HumanLabel for the review queue and filters.
    orm_p_yes = models.FloatField(null=True, blank=True)
    orm_uncertainty = models.FloatField(null=True, blank=True, help_text="|P(YES) - 0.5|")
    human_label = models.BooleanField(null=True, blank=True)
    reward = models.FloatField(null=True, blank=True, help_text="Human label, else ORM label")
    claimed_by = models.CharField(max_length=200, blank=True, default="")
    # db_default too: bulk loaders (seed_load's COPY) name only the columns they fill.
    token = models.CharField(
        max_length=32,
        blank=True,
        default="",
        db_default="",
        help_text="The current claim's fencing token.",
    )
    attempts = models.PositiveIntegerField(default=0, db_default=0, help_text="Claims so far.")
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Beaten by the shard running the episode."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["phase", "purpose", "task", "sample_index"], name="trajectory_unique_sample"
            ),
        ]
        indexes = [
            models.Index(fields=["run", "phase", "status"], name="traj_run_phase_status"),
            models.Index(fields=["run", "phase", "reward"], name="traj_run_phase_reward"),
            models.Index(fields=["run", "score"], name="traj_run_score"),
            models.Index(
                fields=["orm_uncertainty", "id"],
                name="traj_review_queue",
                condition=models.Q(human_label__isnull=True, orm_p_yes__isnull=False),
            ),
            models.Index(fields=["task", "-id"], name="traj_task"),
        ]

    def __str__(self) -> str:
        return f"trajectory #{self.pk}"

    @property
    def orm_label(self) -> bool | None:
        return None if self.orm_p_yes is None else self.orm_p_yes >= 0.5

    @property
    def disagrees(self) -> bool:
        """The ORM's verdict differs from the ground truth (where both exist)."""
        if self.orm_p_yes is None or self.score is None:
            return False
        return self.orm_label != (self.score >= 1.0)


def screenshot_path(step: Step, filename: str) -> str:
    return f"screenshots/{step.trajectory_id // 1000}/{step.trajectory_id}/{step.index}.jpg"


class Step(models.Model):
    trajectory = models.ForeignKey(Trajectory, on_delete=models.CASCADE, related_name="steps")
    index = models.PositiveIntegerField()
    observation = models.TextField(blank=True, default="", help_text="Simplified HTML")
    response = models.TextField(blank=True, default="", help_text="Raw model output")
    token_ids = ArrayField(models.IntegerField(), null=True, blank=True)
    action = models.JSONField(null=True, blank=True)
    url = models.TextField(blank=True, default="")
    screenshot = models.FileField(upload_to=screenshot_path, null=True, blank=True)
    error = models.TextField(blank=True, default="")
    elapsed_ms = models.FloatField(null=True, blank=True)
    claim = models.CharField(
        max_length=32,
        blank=True,
        default="",
        db_default="",
        help_text="The trajectory claim's token that wrote it: one per trajectory, or steps interleaved.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["trajectory", "index"]
        constraints = [
            models.UniqueConstraint(fields=["trajectory", "index"], name="step_unique_index")
        ]
