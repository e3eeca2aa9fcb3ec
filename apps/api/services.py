"""Creating, revoking and checking API tokens. Each user manages their own."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.api.models import ApiToken

PREFIX = "webrl_"
TOUCH_EVERY = timedelta(minutes=5)  # how stale `last_used_at` may get (saves a write per request)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_token(user, name: str) -> tuple[ApiToken, str]:
    """A new token for `user`; returns the row and the secret, which is never stored or shown again."""
    name = name.strip()
    if not name:
        raise ValueError("name: give the token a name, e.g. 'sweep notebook'")
    raw = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name[:100], prefix=raw[: len(PREFIX) + 6], key_hash=hash_key(raw)
    )
    return token, raw


def revoke_token(user, token_id: int) -> bool:
    """Revoke one of the user's own tokens; False when there is no such active token."""
    with transaction.atomic():
        return bool(
            ApiToken.objects.filter(pk=token_id, user=user, revoked_at__isnull=True).update(
                revoked_at=timezone.now()
            )
        )


def user_for_key(raw: str):
    """The active user an active token belongs to, or None."""
    if not raw or not raw.startswith(PREFIX) or len(raw) > 200:
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=hash_key(raw), revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
