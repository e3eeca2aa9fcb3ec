"""Fixtures for the run tests: an operator without password hashing (fast), media in tmp."""

from __future__ import annotations

import pytest


@pytest.fixture
def owner(db, django_user_model):
    from django.contrib.auth.models import Group

    operators, _ = Group.objects.get_or_create(name="operators")
    user = django_user_model(username="run-owner")
    user.set_unusable_password()
    user.save()
    user.groups.add(operators)
    return user
