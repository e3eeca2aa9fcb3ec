"""The review queue (by ORM uncertainty or disagreement), one-key relabelling, agreement figures, export."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseBadRequest, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.reviews.services import add_human_label, agreement_stats, export_labels_jsonl
from apps.rollouts.models import Trajectory
from apps.rollouts.views import disagreement_q
from apps.runs.models import Run

QUEUE_SIZE = 50
EXPORT_BATCH = 200


async def stream_in_batches(lines: Iterator[str], size: int = EXPORT_BATCH) -> AsyncIterator[str]:
    """An async generator over a sync (database-reading) one, `size` lines at a time: under ASGI a
    sync iterator would be read whole into memory before the first byte is sent."""
    while True:
        batch = await sync_to_async(_take)(lines, size)
        if not batch:
            return
        yield "".join(batch)


def _take(lines: Iterator[str], size: int) -> list[str]:
    return list(itertools.islice(lines, size))


ORDERS = ("uncertainty", "disagreement")
LABELS = {"yes": True, "y": True, "1": True, "true": True, "no": False, "n": False, "0": False, "false": False}  # fmt: skip


def _run_param(request) -> Run | None:
    raw = request.GET.get("run", "")
    if not raw.isdigit():
        return None
    return get_object_or_404(Run.objects.only("id", "name"), pk=int(raw))


@require_GET
@login_required
def review_queue(request):
    order = request.GET.get("order") if request.GET.get("order") in ORDERS else "uncertainty"
    run = _run_param(request)
    rows = Trajectory.objects.filter(human_label__isnull=True, orm_p_yes__isnull=False)
    if run is not None:
        rows = rows.filter(run=run)
    if order == "disagreement":
        rows = rows.filter(disagreement_q())
    rows = (
        rows.select_related("task")
        .only(
            "id",
            "orm_p_yes",
            "orm_uncertainty",
            "score",
            "step_count",
            "status",
            "run_id",
            "final_answer",
            "task__intent",
            "task__sites",
        )  # fmt: skip
        .order_by("orm_uncertainty", "id")[:QUEUE_SIZE]
    )
    context = {"trajectories": rows, "order": order, "run": run, "orders": ORDERS, "nav": "review"}
    return render(request, "reviews/queue.html", context)


@require_POST
@login_required
def label_trajectory(request, trajectory_id: int):
    trajectory = get_object_or_404(Trajectory.objects.only("id", "human_label"), pk=trajectory_id)
    label = LABELS.get(request.POST.get("label", "").strip().lower())
    if label is None:
        return HttpResponseBadRequest("label must be yes or no")
    try:
        row = add_human_label(request.user, trajectory, label, request.POST.get("note", ""))
    except ValueError as exc:
        return HttpResponseBadRequest(str(exc))
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse(
            {"trajectory": trajectory.pk, "label": "YES" if label else "NO", "id": row.pk}
        )
    messages.info(request, f"Trajectory {trajectory.pk} labelled {'YES' if label else 'NO'}.")
    if request.POST.get("next") == "detail":
        return redirect("rollouts:detail", trajectory_id=trajectory.pk)
    return redirect("reviews:queue")


@require_GET
@login_required
def review_stats(request):
    run = _run_param(request)
    context = {"stats": agreement_stats(run), "run": run, "nav": "review"}
    return render(request, "reviews/stats.html", context)


@require_GET
@login_required
def export_labels(request):
    run = _run_param(request)
    name = f"orm-labels-run-{run.pk}.jsonl" if run else "orm-labels.jsonl"
    response = StreamingHttpResponse(
        stream_in_batches(export_labels_jsonl(run)), content_type="application/x-ndjson"
    )
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
