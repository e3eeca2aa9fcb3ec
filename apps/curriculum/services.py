"""Curriculum state changes: storing generated tasks with their lineage (idempotently), and the
reviewers' approve / edit / reject of generated tasks (seed and test tasks are read-only), one task
or many, each leaving a TaskEdit in the history; edits are validated as imports are."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from django.core.exceptions import PermissionDenied
from django.db import transaction

from apps.curriculum.models import Task, TaskEdit
from apps.curriculum.validation import MAX_INTENT, clean_task_config, clean_text
from apps.dashboard.permissions import is_reviewer
from apps.rollouts.writer import json_for_postgres, pg_text
from apps.runs.models import Phase, Run
from trainer.curriculum.embed import normalize_intent
from trainer.curriculum.generators import Candidate


def generated_key(run_id: int, phase_index: int, intent: str) -> str:
    """Identity of a generated task: the same intent generated again for the same run and
    phase is the same row, so re-running a round creates nothing new."""
    digest = hashlib.sha1(f"{run_id}:{phase_index}:{normalize_intent(intent)}".encode()).hexdigest()
    return f"gen:{run_id}:{phase_index}:{digest[:20]}"


def store_candidates(
    run: Run,
    phase: Phase,
    candidates: Sequence[Candidate],
    *,
    world: str,
    generator: dict,
    auto_approve: bool,
) -> dict[str, int]:
    """One Task row per candidate (kept ones approved or proposed, dropped ones rejected), each
    linked to its parent tasks, the phase, the generator and its filter decisions. Existing rows
    are left as they are (a reviewer may have acted on them)."""
    parent_keys = {k for c in candidates for k in c.parent_keys}
    parents = {t.key: t for t in Task.objects.filter(key__in=parent_keys)}
    created = existing = 0
    with transaction.atomic():
        for c in candidates:
            if c.kept:
                status = Task.Status.APPROVED if auto_approve else Task.Status.PROPOSED
            else:
                status = Task.Status.REJECTED
            task, was_created = Task.objects.get_or_create(
                key=generated_key(run.pk, phase.index, pg_text(c.intent)),
                defaults={
                    "config": json_for_postgres(c.config),
                    "intent": pg_text(c.intent),
                    "sites": c.sites,
                    "world": world,
                    "split": Task.Split.GENERATED,
                    "origin": Task.Origin.GENERATED,
                    "status": status,
                    "has_evaluator": c.has_evaluator,
                    "template_id": c.template_id,
                    "run": run,
                    "generating_phase": phase,
                    "critic_value": (c.notes.get("critic") or {}).get("score"),
                    "generator": {**generator, "how": c.how},
                    "filter_notes": json_for_postgres(c.notes),
                },
            )
            if was_created:
                created += 1
                task.parents.set([parents[k] for k in c.parent_keys if k in parents])
            else:
                existing += 1
    return {"created": created, "existing": existing}


def _require_reviewer(user) -> None:
    if not is_reviewer(user):
        raise PermissionDenied("only reviewers curate tasks")


def _snapshot(task: Task) -> dict:
    return {"status": task.status, "intent": task.intent, "config": task.config}


def _require_curatable(tasks: Iterable[Task]) -> None:
    fixed = sorted(t.pk for t in tasks if not t.curatable)
    if fixed:
        raise PermissionDenied(
            f"tasks {fixed} are seed or test tasks: only generated tasks can be curated"
        )


def _decide(user, task_ids: Iterable[int], status: str, action: str, note: str) -> int:
    _require_reviewer(user)
    note = clean_text(note, "note")
    changed = 0
    with transaction.atomic():
        tasks = list(Task.objects.select_for_update().filter(pk__in=list(task_ids)))
        _require_curatable(tasks)
        for task in tasks:
            if task.status == status:
                continue
            before = {"status": task.status}
            task.status = status
            task.reviewed_by = user
            task.save(update_fields=["status", "reviewed_by", "updated_at"])
            TaskEdit.objects.create(
                task=task, user=user, action=action, before=before, after={"status": status},
                note=note,
            )  # fmt: skip
            changed += 1
    return changed


def approve_tasks(user, task_ids: Iterable[int], note: str = "") -> int:
    """Approve tasks (one or many); returns how many changed. Reviewers only."""
    return _decide(user, task_ids, Task.Status.APPROVED, "approve", note)


def reject_tasks(user, task_ids: Iterable[int], note: str = "") -> int:
    """Reject tasks (one or many); returns how many changed. Reviewers only."""
    return _decide(user, task_ids, Task.Status.REJECTED, "reject", note)


def edit_task(
    user, task: Task, *, intent: str | None = None, config: dict | None = None, note: str = ""
) -> Task:
    """Change a generated task's intent and/or config, validated as an import is; the previous
    values go into its TaskEdit history. The intent in the config always follows the task's intent."""
    _require_reviewer(user)
    if intent is None and config is None:
        raise ValueError("nothing to change: give an intent or a config")
    if intent is not None:
        intent = clean_text(intent, "intent", MAX_INTENT, required=True)
    if config is not None and not isinstance(config, dict):
        raise ValueError("config: must be a JSON object (a WebArena task config)")
    note = clean_text(note, "note")
    with transaction.atomic():
        task = Task.objects.select_for_update().get(pk=task.pk)
        _require_curatable([task])
        before = _snapshot(task)
        new_config = dict(config if config is not None else task.config)
        new_intent = intent if intent is not None else new_config.get("intent", task.intent)
        new_config = clean_task_config(new_config, new_intent)
        task.sites = [str(s) for s in new_config["sites"]]
        task.intent = new_config["intent"]
        task.config = new_config
        task.reviewed_by = user
        task.save()
        TaskEdit.objects.create(
            task=task, user=user, action="edit", before=before, after=_snapshot(task), note=note
        )
    return task
