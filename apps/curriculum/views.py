"""Curriculum: generated tasks with lineage, critic value and filter decisions; approve, edit, reject.

Writes go through `apps.curriculum.services` (reviewers only); every user reads.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from apps.curriculum.models import Task, TaskEdit
from apps.curriculum.validation import MAX_CONFIG_BYTES
from apps.dashboard.permissions import is_reviewer
from apps.runs.models import Run

PAGE_SIZE = 50
MAX_BULK = 500


def _services():
    from apps.curriculum import services

    return services


def _parents() -> Prefetch:
    return Prefetch("parents", queryset=Task.objects.only("id", "intent"))


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@require_GET
@login_required
def task_list(request):
    rows = Task.objects.filter(origin=Task.Origin.GENERATED)
    chosen: dict = {}
    run_id = _int(request.GET.get("run"))
    if run_id is not None:
        rows = rows.filter(run_id=run_id)
        chosen["run"] = run_id
    status = request.GET.get("status")
    if status in Task.Status.values:
        rows = rows.filter(status=status)
        chosen["status"] = status
    before = _int(request.GET.get("before"))
    if before is not None:
        rows = rows.filter(id__lt=before)
    parents = _parents()
    page = list(
        rows.select_related("generating_phase", "run")
        .only(
            "id",
            "intent",
            "sites",
            "status",
            "critic_value",
            "generator",
            "filter_notes",
            "run__name",
            "generating_phase__index",
            "created_at",
        )  # fmt: skip
        .prefetch_related(parents)
        .order_by("-id")[: PAGE_SIZE + 1]
    )
    more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    context = {
        "tasks": page,
        "chosen": chosen,
        "statuses": Task.Status.values,
        "runs": Run.objects.only("id", "name").order_by("-id")[:100],
        "next_before": page[-1].pk if more else None,
        "query": "&".join(f"{k}={v}" for k, v in chosen.items()),
        "nav": "curriculum",
    }
    return render(request, "curriculum/list.html", context)


@require_GET
@login_required
def task_detail(request, task_id: int):
    task = get_object_or_404(
        Task.objects.select_related("run", "generating_phase", "reviewed_by"), pk=task_id
    )
    context = {
        "task": task,
        "parents": task.parents.only("id", "intent", "origin", "status"),
        "children": task.children.only("id", "intent", "status")[:50],
        "edits": TaskEdit.objects.filter(task=task).select_related("user")[:50],
        "config_json": json.dumps(task.config, indent=2, sort_keys=True),
        "nav": "curriculum",
    }
    return render(request, "curriculum/detail.html", context)


@require_POST
@login_required
def task_bulk(request):
    """Approve or reject the checked tasks (one or many)."""
    if not is_reviewer(request.user):
        raise PermissionDenied("Only reviewers can curate tasks.")
    action = request.POST.get("action")
    ids = [i for i in (_int(v) for v in request.POST.getlist("task_ids")) if i is not None]
    for one in ("approve", "reject"):  # a row's own button acts on that row only
        if _int(request.POST.get(f"{one}_one")) is not None:
            action, ids = one, [_int(request.POST[f"{one}_one"])]
    if action not in ("approve", "reject") or not ids or len(ids) > MAX_BULK:
        return HttpResponseBadRequest(f"Choose approve or reject and 1 to {MAX_BULK} tasks.")
    services = _services()
    try:
        if action == "approve":
            changed = services.approve_tasks(request.user, ids)
        else:
            changed = services.reject_tasks(request.user, ids, note=request.POST.get("note", ""))
    except ValueError as exc:
        return HttpResponseBadRequest(str(exc))
    done = {"approve": "approved", "reject": "rejected"}[action]
    message = f"{changed} task{'s' if changed != 1 else ''} {done}."
    if request.htmx:  # swap the message and the changed rows in place, no reload
        rows = Task.objects.filter(pk__in=ids).select_related("generating_phase", "run")
        context = {
            "message": message,
            "tasks": rows.prefetch_related(_parents()).order_by("-id"),
            "base": reverse("curriculum:list"),
        }
        return render(request, "curriculum/_curated.html", context)
    messages.info(request, message)
    return redirect(_back(request))


@require_POST
@login_required
def task_edit(request, task_id: int):
    if not is_reviewer(request.user):
        raise PermissionDenied("Only reviewers can edit tasks.")
    task = get_object_or_404(Task, pk=task_id)
    intent = request.POST.get("intent", "").strip() or None
    raw = request.POST.get("config", "").strip()
    config = None
    if len(raw) > MAX_CONFIG_BYTES:
        messages.error(request, f"config: {len(raw)} characters, at most {MAX_CONFIG_BYTES}.")
        return redirect("curriculum:detail", task_id=task.pk)
    if raw:
        try:
            config = json.loads(raw)
        except json.JSONDecodeError as exc:
            messages.error(request, f"config: not valid JSON ({exc.msg} at line {exc.lineno}).")
            return redirect("curriculum:detail", task_id=task.pk)
        except RecursionError:
            messages.error(request, "config: nested too deeply.")
            return redirect("curriculum:detail", task_id=task.pk)
        if not isinstance(config, dict):
            messages.error(request, "config: expected a JSON object.")
            return redirect("curriculum:detail", task_id=task.pk)
    try:
        _services().edit_task(
            request.user, task, intent=intent, config=config, note=request.POST.get("note", "")
        )
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.info(request, "Task saved.")
    return redirect("curriculum:detail", task_id=task.pk)


def _back(request) -> str:
    """Only our own list (with its filters) is a valid place to return to: no open redirects."""
    query = request.POST.get("query", "")
    safe = "&".join(
        part
        for part in query.split("&")
        if part.split("=", 1)[0] in ("run", "status") and part.split("=", 1)[-1].isalnum()
    )
    return reverse("curriculum:list") + (f"?{safe}" if safe else "")
