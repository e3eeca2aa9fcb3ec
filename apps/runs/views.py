"""Runs: the list, the launch form, the live run page (websocket plus polling fallback) and cancel.

`render_slot_html` and `render_status_html` build the fragments that senders pass to `send_to_run`.
"""

from __future__ import annotations

import base64

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.dashboard.charts import run_charts
from apps.dashboard.permissions import is_operator
from apps.rollouts.models import Step, Trajectory
from apps.runs.compare import MAX_RUNS as MAX_COMPARE
from apps.runs.compare import comparison
from apps.runs.forms import LaunchForm, bind_launch_form
from apps.runs.models import MetricPoint, Run
from apps.runs.services import cancel_run, launch_run
from trainer.config import PRESETS

MAX_SLOTS = 16
MAX_METRIC_POINTS = 20_000


def get_run_for(user, run_id: int, *, write: bool = False) -> Run:
    """Every logged-in user reads runs; only operators change them (403)."""
    run = get_object_or_404(Run.objects.select_related("owner"), pk=run_id)
    if write and not is_operator(user):
        raise PermissionDenied("Only operators can change runs.")
    return run


@require_GET
@login_required
def run_list(request):
    runs = Run.objects.select_related("owner").only(
        "name", "status", "created_at", "heartbeat_at", "config", "owner__username"
    )[:200]
    return render(request, "runs/list.html", {"runs": runs, "nav": "runs"})


@require_http_methods(["GET", "POST"])
@login_required
def run_new(request):
    """The launch form from a preset; `action=preview` shows the config's differences from the
    preset without launching, `action=launch` (the default) launches it."""
    if not is_operator(request.user):
        raise PermissionDenied("Only operators can launch runs.")
    preset = request.POST.get("preset_name") or request.GET.get("preset") or "demo-cpu"
    if preset not in PRESETS:
        return HttpResponseBadRequest(f"Unknown preset; choose one of {', '.join(PRESETS)}.")
    if request.method == "GET":
        form = LaunchForm(preset=preset)
    else:
        form = bind_launch_form(request.POST, request.FILES, preset)
    valid = request.method == "POST" and form.is_valid()
    if valid and request.POST.get("action", "launch") == "launch":
        run = launch_run(request.user, form.cleaned_data["name"], form.config)
        messages.info(request, f"Run {run.name} queued.")
        return redirect("runs:detail", run_id=run.pk)
    status = 400 if request.method == "POST" and not valid else 200
    context = {"form": form, "presets": PRESETS, "preset": form.preset_name, "nav": "runs",
               "preview": form.preview() if valid else None}  # fmt: skip
    return render(request, "runs/new.html", context, status=status)


@require_GET
@login_required
def run_compare(request):
    """Two or more runs side by side (`?run=1&run=2`); fewer shows the picker."""
    ids = list(dict.fromkeys(int(v) for v in request.GET.getlist("run") if v.isdigit()))[
        :MAX_COMPARE
    ]
    found = Run.objects.select_related("owner").in_bulk(ids)
    runs = [found[i] for i in sorted(ids) if i in found]  # oldest first: the baseline leads
    only_differing = request.GET.get("differ") == "1"
    context = {
        "runs": runs,
        "choices": Run.objects.only("id", "name", "status").order_by("-id")[:100],
        "only_differing": only_differing,
        "nav": "runs",
    }
    if len(runs) >= 2:
        context |= comparison(runs, only_differing)
    return render(request, "runs/compare.html", context)


def _slots(run: Run) -> list[dict]:
    """The latest screenshot of each running episode of the run, one per rollout slot."""
    wanted = run.config.get("rollout", {}).get("slots", 8) if isinstance(run.config, dict) else 8
    count = max(1, min(int(wanted) if isinstance(wanted, int) else 8, MAX_SLOTS))
    running = list(
        Trajectory.objects.filter(run=run, status=Trajectory.Status.RUNNING)
        .order_by("-id")
        .values_list("id", flat=True)[:count]
    )
    latest = (
        Step.objects.filter(trajectory_id__in=running)
        .exclude(screenshot="")
        .exclude(screenshot__isnull=True)
        .order_by("trajectory_id", "-index")
        .distinct("trajectory_id")
        .only("id", "trajectory_id", "index", "url", "screenshot")
    )
    by_traj = {s.trajectory_id: s for s in latest} if running else {}
    slots = []
    for n in range(count):
        step = by_traj.get(running[n]) if n < len(running) else None
        slots.append({"slot": n, "step": step})
    return slots


def _status_context(run: Run) -> dict:
    phases = run.phases.prefetch_related("stages").order_by("index")
    points = (
        MetricPoint.objects.filter(run=run)
        .order_by()
        .values_list("name", "step", "value")[:MAX_METRIC_POINTS]
    )
    return {"run": run, "phases": phases, "charts": run_charts(points)}


@require_GET
@login_required
def run_detail(request, run_id: int):
    run = get_run_for(request.user, run_id)
    context = _status_context(run) | {"slots": _slots(run), "nav": "runs"}
    return render(request, "runs/detail.html", context)


@require_GET
@login_required
def run_live(request, run_id: int):
    """The polling fallback: `?part=status` (timeline and charts) or `?part=slots` (screenshots)."""
    run = get_run_for(request.user, run_id)
    if request.GET.get("part") == "slots":
        return render(request, "runs/detail.html#slots", {"run": run, "slots": _slots(run)})
    return render(request, "runs/detail.html#status", _status_context(run))


@require_POST
@login_required
def run_cancel(request, run_id: int):
    run = get_run_for(request.user, run_id, write=True)
    if cancel_run(run, request.user):
        messages.info(request, "Cancel requested: the run stops at its next step boundary.")
    else:
        messages.info(request, "The run had already finished.")
    return redirect("runs:detail", run_id=run.pk)


def render_slot_html(
    slot: int,
    *,
    image_jpeg: bytes | None = None,
    step_id: int | None = None,
    url: str = "",
    intent: str = "",
    step_index: int | None = None,
) -> str:
    """The `#slot-<n>` fragment for `send_to_run(run_id, "frame", {"slot": n, "html": ...})`.

    Pass the JPEG bytes (sent inline, nothing stored) or the id of a saved Step.
    """
    src = ""
    if image_jpeg:
        src = "data:image/jpeg;base64," + base64.b64encode(image_jpeg).decode("ascii")
    context = {"slot": slot, "src": src, "step_id": step_id, "url": url, "intent": intent}
    context["step_index"] = step_index
    return render_to_string("runs/_slot.html", context)


def render_status_html(run: Run) -> str:
    """The `#run-status` fragment (timeline and charts) for a "metrics" or "event" message."""
    return render_to_string("runs/detail.html#status", _status_context(run))
