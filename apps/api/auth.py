"""`Authorization: Bearer <token>`: the token's user makes the request, with that user's roles."""

from __future__ import annotations

from ninja.security import HttpBearer

from apps.api.services import user_for_key


class TokenAuth(HttpBearer):
    def authenticate(self, request, token: str):
        user = user_for_key(token.strip())
        if user is not None:
            request.user = user
        return user
