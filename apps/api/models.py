"""Per-user API tokens: only a SHA-256 of the secret is stored; the secret is shown once."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(
        max_length=100, help_text="What the token is for, e.g. 'sweep notebook'."
    )
    prefix = models.CharField(
        max_length=12, help_text="The secret's first characters, to tell tokens apart."
    )
    key_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the secret, hex")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
