"""Reviewers curate generated tasks only; edits are validated like imports; bad text gets a clear
error, never a 500, and nothing stored changes."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from apps.curriculum.models import Task, TaskEdit
from apps.curriculum.services import approve_tasks, edit_task, reject_tasks
from apps.runs.models import Phase, Run
from tests.conftest import make_cast
from trainer.config import preset
from trainer.curriculum.generators import llm_task_config

pytestmark = pytest.mark.django_db


@pytest.fixture
def tasks(django_user_model):
    owner, reviewer, _ = make_cast(django_user_model)
    run = Run.objects.create(owner=owner, name="r", config=preset("demo-cpu").to_dict())
    phase = Phase.objects.create(run=run, index=1)

    def task(key, split, origin, status="approved"):
        config = llm_task_config(f"Open the forum {key}", "reddit", "__REDDIT__")
        return Task.objects.create(
            key=key, config=config, intent=config["intent"], sites=["reddit"], world="sandbox",
            split=split, origin=origin, status=status,
            run=run if origin == "generated" else None, generating_phase=None,
        )  # fmt: skip

    return {
        "reviewer": reviewer,
        "train": task("sandbox:train:1", "train", "seed"),
        "test": task("sandbox:test:1", "test", "seed"),
        "generated": task("gen:1", "generated", "generated", "proposed"),
        "phase": phase,
    }


def _snapshot(*rows):
    return [(t.status, t.intent, json.dumps(t.config, sort_keys=True), list(t.sites))
            for t in Task.objects.filter(pk__in=[r.pk for r in rows]).order_by("pk")]  # fmt: skip


def test_seed_and_test_tasks_cannot_be_rejected_approved_or_edited(tasks):
    reviewer, train, test, gen = (
        tasks["reviewer"],
        tasks["train"],
        tasks["test"],
        tasks["generated"],
    )
    before = _snapshot(train, test, gen)
    for fixed in (train, test):
        with pytest.raises(PermissionDenied, match="only generated tasks"):
            reject_tasks(reviewer, [fixed.pk])
        with pytest.raises(PermissionDenied, match="only generated tasks"):
            approve_tasks(reviewer, [fixed.pk, gen.pk])  # a mixed batch changes nothing
        with pytest.raises(PermissionDenied, match="only generated tasks"):
            edit_task(reviewer, fixed, intent="Something easier")
    assert _snapshot(train, test, gen) == before and not TaskEdit.objects.exists()
    assert reject_tasks(reviewer, [gen.pk], note="vague") == 1


def test_the_detail_page_shows_seed_and_test_tasks_read_only(client, tasks):
    client.force_login(tasks["reviewer"])
    page = client.get(reverse("curriculum:detail", args=[tasks["test"].pk])).content.decode()
    assert 'id="edit-form"' not in page and 'id="reject"' not in page and 'id="read-only"' in page
    page = client.get(reverse("curriculum:detail", args=[tasks["generated"].pk])).content.decode()
    assert 'id="edit-form"' in page and 'id="reject"' in page


def test_rejecting_a_test_task_through_the_ui_is_forbidden(client, tasks):
    client.force_login(tasks["reviewer"])
    response = client.post(
        reverse("curriculum:bulk"), {"action": "reject", "task_ids": [tasks["test"].pk]}
    )
    assert response.status_code == 403
    assert Task.objects.get(pk=tasks["test"].pk).status == "approved"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"eval": {"eval_types": ["telepathy"]}}, "unknown eval type"),
        ({"start_url": "javascript:alert(1)"}, "start_url"),
        ({"sites": ["nowhere"]}, "unknown sites"),
        ({"sites": ["s" * 41]}, "longer than 40"),
        ({"eval": {"eval_types": ["string_match"], "reference_answers": {"exact_match": float("nan")}}}, "NaN"),
        ({"note": "a\x00b"}, "NUL"),
    ],
)  # fmt: skip
def test_an_edit_is_validated_like_an_import(tasks, change, message):
    reviewer, gen = tasks["reviewer"], tasks["generated"]
    before = _snapshot(gen)
    with pytest.raises(ValueError, match=message):
        edit_task(reviewer, gen, config={**gen.config, **change})
    assert _snapshot(gen) == before and not TaskEdit.objects.exists()


@pytest.mark.parametrize(
    "form, message",
    [
        ({"intent": "Open\x00 the forum"}, "NUL"),
        ({"config": '{"intent": "x", "sites": ["reddit"], "start_url": "__REDDIT__", "eval": {"eval_types": ["string_match"], "reference_answers": {"exact_match": NaN}}}'}, "NaN"),
        ({"config": json.dumps({**llm_task_config("Open it", "reddit", "__REDDIT__"), "sites": ["x" * 41]})}, "longer than 40"),
        ({"config": "[" * 100_001 + "]" * 100_001}, "at most"),
        ({"config": "[" * 5_000 + "]" * 5_000}, "nested too deeply"),
        ({"config": "[" * 50 + "]" * 50}, "expected a JSON object"),
        ({"config": json.dumps({"a": [[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]})}, "deeper than"),
        ({"note": "x" * 20_000}, "note"),
    ],
)  # fmt: skip
def test_hostile_edits_through_the_ui_get_a_message_not_a_500(client, tasks, form, message):
    gen = tasks["generated"]
    client.force_login(tasks["reviewer"])
    before = _snapshot(gen)
    response = client.post(reverse("curriculum:edit", args=[gen.pk]), form, follow=True)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert _snapshot(gen) == before


def test_a_valid_edit_of_a_generated_task_is_stored_with_its_history(tasks):
    reviewer, gen = tasks["reviewer"], tasks["generated"]
    edited = edit_task(reviewer, gen, intent="Open the books forum", note="clearer")
    assert edited.intent == edited.config["intent"] == "Open the books forum"
    assert TaskEdit.objects.get(task=gen).note == "clearer"


def test_a_label_note_with_a_nul_is_refused_with_a_message(client, tasks, django_user_model):
    from apps.rollouts.models import Trajectory

    traj = Trajectory.objects.create(task=tasks["train"], status="ok")
    client.force_login(tasks["reviewer"])
    response = client.post(
        reverse("reviews:label", args=[traj.pk]), {"label": "yes", "note": "bad\x00note"}
    )
    assert response.status_code == 400 and b"NUL" in response.content
    traj.refresh_from_db()
    assert traj.human_label is None and not traj.human_labels.exists()
