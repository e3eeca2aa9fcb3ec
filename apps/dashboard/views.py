"""Home, health, and checkpoints per phase with a side-by-side comparison of two checkpoints' test results."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.dashboard.health import health
from apps.runs.models import Checkpoint, Run

EVAL_PREFIX = "eval/"


@require_GET
@never_cache
def healthz(request):
    ok, payload = health()
    return JsonResponse(payload, status=200 if ok else 503)


@require_GET
@login_required
def home(request):
    return redirect("runs:list")


def _checkpoint(raw: str | None) -> Checkpoint | None:
    if not raw or not raw.isdigit():
        return None
    return Checkpoint.objects.select_related("run", "phase").filter(pk=int(raw)).first()


def compare_metrics(a: Checkpoint, b: Checkpoint) -> list[dict]:
    """Rows of (metric, a, b, b - a) over both checkpoints' evaluation metrics (per site and overall)."""
    keys = sorted(
        k
        for k in {*a.metrics, *b.metrics}
        if k.startswith(EVAL_PREFIX) or k in ("accuracy", "success_rate")
    )
    rows = []
    for key in keys:
        va, vb = a.metrics.get(key), b.metrics.get(key)
        numeric = isinstance(va, int | float) and isinstance(vb, int | float)
        rows.append({"metric": key, "a": va, "b": vb, "delta": vb - va if numeric else None})
    return rows


@require_GET
@login_required
def checkpoints(request):
    rows = Checkpoint.objects.select_related("run", "phase").order_by(
        "-run_id", "phase__index", "kind"
    )
    run = None
    raw_run = request.GET.get("run", "")
    if raw_run.isdigit():
        run = Run.objects.filter(pk=int(raw_run)).only("id", "name").first()
        rows = rows.filter(run_id=int(raw_run))
    rows = list(rows[:300])
    for c in rows:
        c.config_json = json.dumps(c.config, indent=2, sort_keys=True)
    a, b = _checkpoint(request.GET.get("a")), _checkpoint(request.GET.get("b"))
    context = {
        "checkpoints": rows,
        "run": run,
        "a": a,
        "b": b,
        "comparison": compare_metrics(a, b) if a and b else None,
        "nav": "checkpoints",
    }
    return render(request, "dashboard/checkpoints.html", context)
