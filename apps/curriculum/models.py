"""Tasks in WebArena's config format: seeds, imported benchmarks and curriculum-generated tasks."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models


class Task(models.Model):
    class World(models.TextChoices):
        SANDBOX = "sandbox"
        WEBARENA = "webarena"
        MINIWOB = "miniwob"

    class Split(models.TextChoices):
        TRAIN = "train"
        TEST = "test"
        GENERATED = "generated"

    class Origin(models.TextChoices):
        SEED = "seed"
        GENERATED = "generated"

    class Status(models.TextChoices):
        PROPOSED = "proposed"
        APPROVED = "approved"
        REJECTED = "rejected"

    key = models.CharField(
        max_length=200, unique=True, help_text="Stable identity for idempotent imports."
    )
    config = models.JSONField(
        help_text="WebArena-format task config: intent, sites, start_url, eval, ..."
    )
    intent = models.TextField()
    sites = ArrayField(models.CharField(max_length=40), default=list)
    world = models.CharField(max_length=20, choices=World.choices)
    world_seed = models.PositiveIntegerField(
        default=0, help_text="The built-in world's seed the task was built from (sandbox only)."
    )
    split = models.CharField(max_length=20, choices=Split.choices)
    origin = models.CharField(max_length=20, choices=Origin.choices, default=Origin.SEED)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.APPROVED)
    has_evaluator = models.BooleanField(default=True)
    template_id = models.IntegerField(null=True, blank=True)
    parents = models.ManyToManyField("self", symmetrical=False, related_name="children", blank=True)
    run = models.ForeignKey(
        "runs.Run", on_delete=models.CASCADE, null=True, blank=True, related_name="generated_tasks"
    )
    generating_phase = models.ForeignKey(
        "runs.Phase",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="generated_tasks",
    )
    critic_value = models.FloatField(null=True, blank=True)
    generator = models.JSONField(default=dict, blank=True, help_text="name and settings")
    filter_notes = models.JSONField(
        default=dict, blank=True, help_text="per filter: score, keep, reason"
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["world", "split", "status"], name="task_world_split_status"),
            models.Index(
                fields=["run", "generating_phase", "status"], name="task_run_phase_status"
            ),
        ]

    def __str__(self) -> str:
        return self.intent[:80]

    @property
    def curatable(self) -> bool:
        """Reviewers approve, edit and reject generated tasks only: seed and test tasks are the
        benchmark, and rejecting one would shrink the evaluation set."""
        return self.origin == self.Origin.GENERATED and self.split != self.Split.TEST

    @property
    def site_label(self) -> str:
        return self.sites[0] if len(self.sites) == 1 else "cross_site"


def world_task_key(split: str, task_id: int, seed: int = 0) -> str:
    """The key of a built-in world task: `sandbox:<split>:<id>`, or `sandbox@<seed>:<split>:<id>`
    for a world built from another seed than the default 0."""
    world = "sandbox" if seed == 0 else f"sandbox@{seed}"
    return f"{world}:{split}:{task_id}"


class TaskEdit(models.Model):
    """The history of reviewers' edits and decisions on a task; the task row holds the latest."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="edits")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True)
    action = models.CharField(max_length=20)  # edit | approve | reject
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    note = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task", "-created_at"]
