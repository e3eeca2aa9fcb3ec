"""launch_demo starts the demo run once; train_run rejects a bad config with a helpful error."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.runs.models import Run

pytestmark = pytest.mark.django_db


def test_launch_demo_creates_the_demo_run_as_the_admin_only_once(django_user_model):
    admin = django_user_model.objects.create_superuser("admin", "", None)
    call_command("launch_demo", stdout=StringIO())
    call_command("launch_demo", stdout=StringIO())
    (run,) = Run.objects.all()
    assert run.owner == admin and run.status == Run.Status.QUEUED
    assert run.config["preset"] == "demo-cpu"


def test_launch_demo_without_an_admin_says_what_to_do():
    err = StringIO()
    call_command("launch_demo", stdout=StringIO(), stderr=err)
    assert "bootstrap_admin" in err.getvalue()
    assert not Run.objects.exists()


def test_train_run_names_the_unknown_key():
    with pytest.raises(CommandError, match="rollout.max_step"):
        call_command("train_run", "--set", "rollout.max_step=3", stdout=StringIO())
    assert not Run.objects.exists()


def test_orm_measure_names_a_missing_run():
    with pytest.raises(CommandError, match="no run 987654"):
        call_command("orm_measure", "--run", "987654", stdout=StringIO())
