"""The ORM's verdicts on trajectories and the people's labels that override them."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class OrmVerdict(models.Model):
    trajectory = models.ForeignKey(
        "rollouts.Trajectory", on_delete=models.CASCADE, related_name="verdicts"
    )
    checkpoint = models.ForeignKey(
        "runs.Checkpoint", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    p_yes = models.FloatField()
    label = models.BooleanField(help_text="P(YES) >= 0.5")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(p_yes__gte=0.0, p_yes__lte=1.0), name="verdict_p_yes_in_unit"
            ),
            models.UniqueConstraint(
                fields=["trajectory", "checkpoint"], name="verdict_unique_per_checkpoint"
            ),
        ]


class HumanLabel(models.Model):
    """Every label stays; the latest per trajectory is the one that counts."""

    trajectory = models.ForeignKey(
        "rollouts.Trajectory", on_delete=models.CASCADE, related_name="human_labels"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    label = models.BooleanField(help_text="True = the agent succeeded")
    note = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["trajectory", "-created_at"], name="label_latest")]
