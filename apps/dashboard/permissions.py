"""Roles: `operators` launch and cancel runs, `reviewers` relabel and curate; every user reads."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

OPERATORS = "operators"
REVIEWERS = "reviewers"


def _in_group(user: AbstractBaseUser | AnonymousUser, group: str) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    cache = getattr(user, "_webrl_groups", None)
    if cache is None:
        cache = set(user.groups.values_list("name", flat=True))
        user._webrl_groups = cache
    return group in cache


def is_operator(user) -> bool:
    return _in_group(user, OPERATORS)


def is_reviewer(user) -> bool:
    return _in_group(user, REVIEWERS)


def can_read(user) -> bool:
    return bool(user.is_authenticated and user.is_active)
