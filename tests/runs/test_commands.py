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


def test_launch_demo_takes_overrides_from_webrl_demo_set_and_its_own_set(
    django_user_model, monkeypatch
):
    django_user_model.objects.create_superuser("admin", "", None)
    monkeypatch.setenv("WEBRL_DEMO_SET", "run.phases=1  sft.demo_tasks=7")
    out = StringIO()
    call_command("launch_demo", "--set", "rollout.max_steps=4", stdout=out)
    (run,) = Run.objects.all()
    assert run.config["run"]["phases"] == 1 and run.config["sft"]["demo_tasks"] == 7
    assert run.config["rollout"]["max_steps"] == 4
    assert "sft.demo_tasks=7" in out.getvalue()


def test_launch_demo_refuses_a_bad_override_naming_it_and_launches_nothing(
    django_user_model, monkeypatch
):
    django_user_model.objects.create_superuser("admin", "", None)
    monkeypatch.setenv("WEBRL_DEMO_SET", "sft.demo_taskz=7")
    with pytest.raises(CommandError, match="sft.demo_taskz"):
        call_command("launch_demo", stdout=StringIO())
    assert not Run.objects.exists()


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


def test_orm_measure_with_skip_run_orms_leaves_the_runs_own_orms_out(django_user_model):
    import json

    from apps.runs.models import Checkpoint
    from tests.web.factories import make_run

    run = make_run(django_user_model.objects.create_user("owner"))
    Checkpoint.objects.create(run=run, kind=Checkpoint.Kind.ORM, path="/no/such/orm")
    both = StringIO()
    call_command("orm_measure", "--run", str(run.pk), "--json", stdout=both)
    (own,) = json.loads(both.getvalue())["orms"]  # nothing held out yet: listed, nothing scored
    assert own["path"] == "/no/such/orm" and own["heldout"] == {} and own["rollouts"] == {}
    alone = StringIO()
    call_command("orm_measure", "--run", str(run.pk), "--json", "--skip-run-orms", stdout=alone)
    assert json.loads(alone.getvalue())["orms"] == []
