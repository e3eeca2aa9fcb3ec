"""Curation services: storing candidates with lineage, approve / reject / edit with permissions."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from apps.curriculum.models import Task, TaskEdit
from apps.curriculum.services import (
    approve_tasks,
    edit_task,
    generated_key,
    reject_tasks,
    store_candidates,
)
from apps.runs.models import Phase, Run
from trainer.config import preset
from trainer.curriculum.generators import Candidate, llm_task_config

pytestmark = pytest.mark.django_db


@pytest.fixture
def run_phase(cast):
    owner = cast[0]
    run = Run.objects.create(owner=owner, name="r", config=preset("demo-cpu").to_dict())
    return run, Phase.objects.create(run=run, index=0)


@pytest.fixture
def seed_task():
    config = llm_task_config("Open the books forum", "reddit", "__REDDIT__")
    return Task.objects.create(
        key="sandbox:train:1", config=config, intent=config["intent"], sites=["reddit"],
        world="sandbox", split="train",
    )  # fmt: skip


def candidate(intent: str, parent: str, keep: bool = True) -> Candidate:
    c = Candidate(llm_task_config(intent, "reddit", "__REDDIT__"), [parent], "llm")
    c.decide("critic", keep, 0.3, "in band" if keep else "too easy")
    return c


def test_stored_candidates_carry_lineage_generator_and_filter_notes(run_phase, seed_task):
    run, phase = run_phase
    kept = candidate("Open the newest post in books", seed_task.key)
    dropped = candidate("Upvote the top post", seed_task.key, keep=False)
    counts = store_candidates(
        run, phase, [kept, dropped], world="sandbox", generator={"name": "x"}, auto_approve=False
    )
    assert counts == {"created": 2, "existing": 0}
    row = Task.objects.get(key=generated_key(run.pk, 0, kept.intent))
    assert list(row.parents.all()) == [seed_task]
    assert row.run == run and row.generating_phase == phase
    assert row.split == "generated" and row.origin == "generated"
    assert row.status == "proposed" and row.critic_value == 0.3
    assert row.generator == {"name": "x", "how": "llm"}
    assert row.filter_notes["critic"] == {"score": 0.3, "keep": True, "reason": "in band"}
    assert Task.objects.get(intent=dropped.intent).status == "rejected"
    assert list(seed_task.children.order_by("pk")) == list(Task.objects.filter(run=run))


def test_storing_the_same_candidates_again_creates_nothing(run_phase, seed_task):
    run, phase = run_phase
    batch = [candidate("Open the newest post in books", seed_task.key)]
    store_candidates(run, phase, batch, world="sandbox", generator={}, auto_approve=True)
    again = [candidate("open the newest post in books!", seed_task.key)]  # same normalized text
    counts = store_candidates(run, phase, again, world="sandbox", generator={}, auto_approve=True)
    assert counts == {"created": 0, "existing": 1}
    assert Task.objects.filter(run=run).count() == 1
    assert Task.objects.get(run=run).status == "approved"


def test_a_generated_intent_with_nul_characters_is_stored_with_replacement_characters(
    run_phase, seed_task
):
    run, phase = run_phase
    odd = candidate("Open\x00 the newest post", seed_task.key)
    counts = store_candidates(run, phase, [odd], world="sandbox", generator={}, auto_approve=True)
    assert counts == {"created": 1, "existing": 0}
    row = Task.objects.get(run=run)
    assert row.intent == "Open\ufffd the newest post" and "\x00" not in row.config["intent"]


def test_a_reviewer_approves_and_rejects_in_bulk_with_history(cast, run_phase, seed_task):
    _, reviewer, _ = cast
    run, phase = run_phase
    store_candidates(
        run, phase, [candidate("Task one here", seed_task.key), candidate("Task two here", seed_task.key)],
        world="sandbox", generator={}, auto_approve=False,
    )  # fmt: skip
    ids = list(Task.objects.filter(run=run).values_list("pk", flat=True))
    assert approve_tasks(reviewer, ids) == 2
    assert approve_tasks(reviewer, ids) == 0  # already approved: nothing changes
    assert set(Task.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"approved"}
    assert reject_tasks(reviewer, ids[:1], note="too vague") == 1
    task = Task.objects.get(pk=ids[0])
    assert task.status == "rejected" and task.reviewed_by == reviewer
    actions = list(task.edits.order_by("created_at").values_list("action", "note"))
    assert actions == [("approve", ""), ("reject", "too vague")]


def test_an_outsider_cannot_approve_reject_or_edit(cast, run_phase, seed_task):
    owner, _, outsider = cast
    run, phase = run_phase
    store_candidates(
        run, phase, [candidate("Task one here", seed_task.key)], world="sandbox", generator={},
        auto_approve=False,
    )  # fmt: skip
    task = Task.objects.get(run=run)
    for user in (outsider, owner):  # an operator is not a reviewer either
        with pytest.raises(PermissionDenied):
            approve_tasks(user, [task.pk])
        with pytest.raises(PermissionDenied):
            reject_tasks(user, [task.pk])
        with pytest.raises(PermissionDenied):
            edit_task(user, task, intent="Changed")
    task.refresh_from_db()
    assert task.status == "proposed" and task.intent == "Task one here"
    assert not TaskEdit.objects.exists()


def test_a_reviewer_edit_keeps_the_previous_version(cast, run_phase, seed_task):
    _, reviewer, _ = cast
    run, phase = run_phase
    store_candidates(
        run, phase, [candidate("Open the books forum", seed_task.key)], world="sandbox",
        generator={}, auto_approve=False,
    )  # fmt: skip
    task = Task.objects.get(run=run)  # generated: only those are curated
    edited = edit_task(reviewer, task, intent="  Open the Books forum page ", note="clearer")
    assert edited.intent == "Open the Books forum page"
    assert edited.config["intent"] == "Open the Books forum page"
    (history,) = TaskEdit.objects.filter(task=task)
    assert history.before["intent"] == "Open the books forum"
    assert history.after["intent"] == "Open the Books forum page"
    assert history.user == reviewer and history.note == "clearer"
    new_config = dict(edited.config, start_url="__REDDIT__/f/books")
    edited = edit_task(reviewer, edited, config=new_config)
    assert edited.config["start_url"] == "__REDDIT__/f/books"
    assert edited.intent == "Open the Books forum page"
    assert task.edits.count() == 2


def test_an_edit_with_an_empty_intent_or_a_non_object_config_is_refused(cast, seed_task):
    _, reviewer, _ = cast
    with pytest.raises(ValueError, match="intent"):
        edit_task(reviewer, seed_task, intent="   ")
    with pytest.raises(ValueError, match="config"):
        edit_task(reviewer, seed_task, config=["not", "a", "dict"])
