"""/api/runs: list, create from a preset plus overrides, one run with phases and latest metrics,
cancel, and metric series. Writes call `apps.runs.services`, as the pages do."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path as FsPath
from typing import BinaryIO, Literal

from asgiref.sync import sync_to_async
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.http import content_disposition_header
from ninja import Field, Path, Query, Router, Schema, Status
from ninja.errors import HttpError

from apps.api.schemas import (
    ERRORS,
    MAX_ID,
    CancelOut,
    ErrorOut,
    MetricsOut,
    PageQuery,
    RunCreateIn,
    RunDetailOut,
    RunPage,
    RunStatus,
)
from apps.runs import configs
from apps.runs.exports import CONTENT_TYPES, FORMATS, KINDS, ExportError, ExportSpec, write_export
from apps.runs.models import MetricPoint, Run
from apps.runs.services import cancel_run, launch_run

router = Router(tags=["runs"])
MAX_POINTS = 20_000


def finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def run_out(run: Run) -> dict:
    preset = run.config.get("preset") if isinstance(run.config, dict) else None
    return {
        "id": run.pk,
        "name": run.name,
        "status": run.status,
        "preset": preset if isinstance(preset, str) else None,
        "owner": run.owner.username,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "heartbeat_at": run.heartbeat_at,
        "last_error": run.last_error,
        "url": reverse("runs:detail", args=[run.pk]),
    }


def page_of(rows, query: PageQuery, serialize) -> dict:
    """Keyset pagination by descending id: `before` is the last id of the previous page."""
    if query.before is not None:
        rows = rows.filter(pk__lt=query.before)
    items = list(rows.order_by("-pk")[: query.limit + 1])
    more = len(items) > query.limit
    items = items[: query.limit]
    return {
        "items": [serialize(item) for item in items],
        "next_before": items[-1].pk if more else None,
        "limit": query.limit,
    }


class RunFilters(PageQuery):
    status: RunStatus | None = Field(None, description="Only runs in this status")


@router.get("/runs", response={200: RunPage, ERRORS: ErrorOut}, summary="List runs")
def list_runs(request, filters: Query[RunFilters]):
    rows = Run.objects.select_related("owner")
    if filters.status:
        rows = rows.filter(status=filters.status)
    return page_of(rows, filters, run_out)


@router.post("/runs", response={201: RunDetailOut, ERRORS: ErrorOut}, summary="Launch a run")
def create_run(request, payload: RunCreateIn):
    """Operators only. The preset's config with `overrides` applied, checked by the trainer's
    `RunConfig` (its message, naming the field, comes back as a 422 `invalid_config`)."""
    config = configs.from_preset(payload.preset, payload.overrides).to_dict()
    run = launch_run(request.auth, payload.name, config)
    return Status(201, run_detail(Run.objects.select_related("owner").get(pk=run.pk)))


def latest_metrics(run: Run) -> dict:
    rows = (
        MetricPoint.objects.filter(run=run)
        .order_by("name", "-step", "-id")
        .distinct("name")
        .values_list("name", "step", "value")
    )
    return {name: {"step": step, "value": finite(value)} for name, step, value in rows}


def run_detail(run: Run) -> dict:
    phases = []
    for phase in run.phases.prefetch_related("stages").order_by("index"):
        stages = [
            {
                "name": s.name,
                "status": s.status,
                "attempts": s.attempts,
                "started_at": s.started_at,
                "finished_at": s.finished_at,
                "error": s.error,
                "metrics": s.metrics,
            }  # fmt: skip
            for s in phase.stages.all()
        ]
        phases.append(
            {
                "index": phase.index,
                "status": phase.status,
                "stage": phase.stage,
                "metrics": phase.metrics,
                "started_at": phase.started_at,
                "finished_at": phase.finished_at,
                "stages": stages,
            }  # fmt: skip
        )
    config = run.config if isinstance(run.config, dict) else {}
    return run_out(run) | {
        "config": config,
        "phases": phases,
        "latest_metrics": latest_metrics(run),
    }


@router.get(
    "/runs/{run_id}",
    response={200: RunDetailOut, ERRORS: ErrorOut},
    summary="One run, with its phases, stages and latest metrics",
)
def get_run(request, run_id: int = Path(..., ge=1, le=MAX_ID)):
    return run_detail(get_object_or_404(Run.objects.select_related("owner"), pk=run_id))


@router.post(
    "/runs/{run_id}/cancel", response={200: CancelOut, ERRORS: ErrorOut}, summary="Cancel a run"
)
def cancel(request, run_id: int = Path(..., ge=1, le=MAX_ID)):
    """Operators only. The run stops at its next step boundary."""
    run = get_object_or_404(Run, pk=run_id)
    cancelled = cancel_run(run, request.auth)
    run.refresh_from_db(fields=["status"])
    return {"cancelled": cancelled, "status": run.status}


class MetricsQuery(Schema):
    name: str | None = Field(None, max_length=100, pattern=r"^[^\x00]*$", description="One metric")
    prefix: str | None = Field(
        None,
        max_length=100,
        pattern=r"^[^\x00]*$",
        description="Metrics whose name starts so, e.g. eval/",
    )


@router.get(
    "/runs/{run_id}/metrics",
    response={200: MetricsOut, ERRORS: ErrorOut},
    summary="Metric series of a run (every point, by name then step)",
)
def metrics(request, query: Query[MetricsQuery], run_id: int = Path(..., ge=1, le=MAX_ID)):
    run = get_object_or_404(Run, pk=run_id)
    rows = MetricPoint.objects.filter(run=run)
    if query.name:
        rows = rows.filter(name=query.name)
    if query.prefix:
        rows = rows.filter(name__startswith=query.prefix)
    points = list(
        rows.order_by("name", "step", "id").values_list("name", "step", "value")[: MAX_POINTS + 1]
    )
    truncated = len(points) > MAX_POINTS
    series: dict[str, list] = {}
    for name, step, value in points[:MAX_POINTS]:
        series.setdefault(name, []).append({"step": step, "value": finite(value)})
    return {
        "run": run.pk,
        "series": [{"name": n, "points": p} for n, p in series.items()],
        "truncated": truncated,
    }


class ExportQuery(Schema):
    kind: Literal[KINDS] = Field(..., description="sft steps, orm examples, or generated tasks")
    format: Literal[FORMATS] = "jsonl"
    phase: int | None = Field(None, ge=0, le=MAX_ID, description="One phase only")
    approved_only: bool = Field(False, description="Only rows whose task is approved")


EXPORT_200 = {
    200: {
        "description": "The dataset file: JSON Lines (jsonl, sharegpt, alpaca) or Parquet",
        "content": {
            "application/x-ndjson": {"schema": {"type": "string"}},
            CONTENT_TYPES["parquet"]: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.get(
    "/runs/{run_id}/export",
    response={ERRORS: ErrorOut},
    openapi_extra={"responses": EXPORT_200},
    summary="A run's data as a dataset file (as `manage.py export_dataset`)",
)
def export(request, query: Query[ExportQuery], run_id: int = Path(..., ge=1, le=MAX_ID)):
    """Loads with `datasets.load_dataset("json" | "parquet", data_files=...)`; sharegpt and alpaca
    are LLaMA-Factory's layouts. 404 when nothing matches."""
    get_object_or_404(Run.objects.only("id"), pk=run_id)
    spec = ExportSpec(run_id, query.kind, query.format, query.phase, query.approved_only)
    try:
        spec.check()
    except ExportError as exc:
        raise HttpError(422, str(exc)) from None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            write_export(spec, FsPath(tmp) / spec.filename)
        except ExportError as exc:
            raise HttpError(404, str(exc)) from None
        handle = open(FsPath(tmp) / spec.filename, "rb")  # stays readable once the directory goes
    size = os.fstat(handle.fileno()).st_size
    # An async iterator: under ASGI (daphne) Django reads a sync one, a FileResponse's included,
    # whole into memory before the first byte goes out.
    response = StreamingHttpResponse(
        file_chunks(handle), content_type=CONTENT_TYPES.get(spec.format, "application/x-ndjson")
    )
    response["Content-Length"] = str(size)
    response["Content-Disposition"] = content_disposition_header(True, spec.filename)
    return response


EXPORT_CHUNK = 1 << 16


async def file_chunks(handle: BinaryIO, size: int = EXPORT_CHUNK) -> AsyncIterator[bytes]:
    """`handle`'s bytes, `size` at a time, read off the event loop; closes it at the end."""
    try:
        while chunk := await sync_to_async(handle.read)(size):
            yield chunk
    finally:
        handle.close()
