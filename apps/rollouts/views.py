"""Trajectories: a filtered list with keyset pagination, the step-by-step detail, and screenshots.

Screenshots are served here to logged-in users only, never from a public media URL.
"""

from __future__ import annotations

import json
import re

from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from apps.reviews.models import HumanLabel, OrmVerdict
from apps.rollouts.models import Step, Trajectory
from apps.runs.models import Run

PAGE_SIZE = 50
VIEWPORT = (1280, 720)  # the screenshot's size in CSS pixels (trainer/env/types.py)
SITES = ("shopping", "shopping_admin", "reddit", "gitlab", "map", "wikipedia")
LIST_FIELDS = (
    "id", "status", "purpose", "score", "step_count", "orm_p_yes", "human_label", "reward",
    "created_at", "run_id", "phase_id", "task_id", "task__intent", "task__sites",
    "run__name", "phase__index",
)  # fmt: skip


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def disagreement_q() -> Q:
    """ORM verdict differs from the ground truth (both present), as `Trajectory.disagrees`."""
    return Q(orm_p_yes__gte=0.5, score__lt=1.0) | Q(orm_p_yes__lt=0.5, score__gte=1.0)


def filter_trajectories(params) -> tuple[object, dict]:
    """Apply the list's filters from query parameters; unknown values are ignored, never an error."""
    rows = Trajectory.objects.all()
    chosen: dict = {}
    run_id = _int(params.get("run"))
    if run_id is not None:
        rows = rows.filter(run_id=run_id)
        chosen["run"] = run_id
    phase = _int(params.get("phase"))
    if phase is not None:
        rows = rows.filter(phase__index=phase)
        chosen["phase"] = phase
    site = params.get("site")
    if site in SITES:
        rows = rows.filter(task__sites__contains=[site])
        chosen["site"] = site
    task_id = _int(params.get("task"))
    if task_id is not None:
        rows = rows.filter(task_id=task_id)
        chosen["task"] = task_id
    outcome = params.get("outcome")
    if outcome == "success":
        rows = rows.filter(reward__gte=0.5)
    elif outcome == "failure":
        rows = rows.filter(reward__lt=0.5)
    elif outcome in Trajectory.Status.values:
        rows = rows.filter(status=outcome)
    else:
        outcome = None
    if outcome:
        chosen["outcome"] = outcome
    if params.get("disagree") == "1":
        rows = rows.filter(disagreement_q())
        chosen["disagree"] = "1"
    labelled = params.get("labelled")
    if labelled in ("1", "0"):
        rows = rows.filter(human_label__isnull=labelled == "0")
        chosen["labelled"] = labelled
    return rows, chosen


@require_GET
@login_required
def trajectory_list(request):
    rows, chosen = filter_trajectories(request.GET)
    before = _int(request.GET.get("before"))
    if before is not None:
        rows = rows.filter(id__lt=before)
    page = list(
        rows.select_related("task", "run", "phase")
        .only(*LIST_FIELDS)
        .order_by("-id")[: PAGE_SIZE + 1]
    )
    more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    query = "&".join(f"{k}={v}" for k, v in chosen.items())
    context = {
        "trajectories": page,
        "next_before": page[-1].pk if more else None,
        "chosen": chosen,
        "query": query,
        "runs": Run.objects.only("id", "name").order_by("-id")[:100],
        "sites": SITES,
        "outcomes": ["success", "failure", *Trajectory.Status.values],
        "nav": "trajectories",
    }
    if request.htmx and before is not None:
        return render(request, "rollouts/list.html#rows", context)
    return render(request, "rollouts/list.html", context)


_BBOX_TEMPLATE = r'<[a-zA-Z0-9]+ id="{id}"[^>]*?data-bbox="(-?\d+),(-?\d+),(\d+),(\d+)"'


def element_bbox(observation: str, element: str | None) -> list[int] | None:
    """The `data-bbox` (left, top, width, height) of element `element` in a simplified-HTML page."""
    if not element or not observation or not element.isdigit():
        return None
    match = re.search(_BBOX_TEMPLATE.format(id=re.escape(element)), observation)
    return [int(v) for v in match.groups()] if match else None


def _outline(step: Step) -> dict | None:
    action = step.action if isinstance(step.action, dict) else {}
    bbox = element_bbox(step.observation, str(action.get("element") or ""))
    if not bbox:
        return None
    width, height = VIEWPORT
    left, top, w, h = bbox
    return {
        "left": round(100 * left / width, 3),
        "top": round(100 * top / height, 3),
        "width": round(100 * w / width, 3),
        "height": round(100 * h / height, 3),
    }


@require_GET
@login_required
def trajectory_detail(request, trajectory_id: int):
    trajectory = get_object_or_404(
        Trajectory.objects.select_related("task", "run", "phase"), pk=trajectory_id
    )
    steps = list(trajectory.steps.defer("token_ids").order_by("index"))
    for step in steps:
        step.outline = _outline(step)
        step.action_text = json.dumps(step.action, ensure_ascii=False) if step.action else ""
    context = {
        "t": trajectory,
        "steps": steps,
        "verdicts": OrmVerdict.objects.filter(trajectory=trajectory).select_related("checkpoint")[
            :20
        ],
        "labels": HumanLabel.objects.filter(trajectory=trajectory).select_related("user")[:50],
        "nav": "trajectories",
    }
    return render(request, "rollouts/detail.html", context)


@require_GET
@login_required
@cache_control(private=True, max_age=3600)
def step_screenshot(request, step_id: int):
    step = get_object_or_404(Step.objects.only("id", "screenshot"), pk=step_id)
    if not step.screenshot:
        raise Http404("This step has no screenshot.")
    try:
        handle = step.screenshot.open("rb")
    except (FileNotFoundError, OSError):
        raise Http404("The screenshot file is missing.") from None
    return FileResponse(handle, content_type="image/jpeg")
