"""Runs side by side: test success per phase and site, ORM accuracy per phase, the config fields
that differ, and per test task which run solved it."""

from __future__ import annotations

import json

from django.utils.safestring import SafeString

from apps.dashboard.charts import line_chart
from apps.rollouts.models import Trajectory
from apps.runs import configs
from apps.runs.models import Phase, Run

SUCCESS = "eval/success_rate"
ORM_ACCURACY = "orm/accuracy"
SOLVED_SCORE = 1.0
MAX_TASKS = 500
MAX_RUNS = 6


def label(run: Run) -> str:
    return f"{run.name} #{run.pk}"


def phase_metrics(runs: list[Run]) -> dict[int, dict[int, dict]]:
    """{run id: {phase index: the phase's metrics}} (each phase keeps its stages' latest values)."""
    out: dict[int, dict[int, dict]] = {run.pk: {} for run in runs}
    for run_id, index, metrics in Phase.objects.filter(run__in=runs).values_list(
        "run_id", "index", "metrics"
    ):
        out[run_id][index] = metrics if isinstance(metrics, dict) else {}
    return out


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def success_table(runs: list[Run], metrics: dict) -> tuple[list[str], list[dict]]:
    """Sites ("overall" first) and rows {phase, cells: [[rate % per site] per run]}."""
    sites = sorted(
        {k[len(SUCCESS) + 1 :] for m in metrics.values() for p in m.values() for k in p
         if k.startswith(SUCCESS + "/")}
    )  # fmt: skip
    sites = ["overall", *sites]
    phases = sorted({i for m in metrics.values() for i, p in m.items() if SUCCESS in p})
    rows = []
    for index in phases:
        cells = []
        for run in runs:
            found = metrics[run.pk].get(index, {})
            cells.append([_number(found.get(SUCCESS if s == "overall" else f"{SUCCESS}/{s}")) for s in sites])  # fmt: skip
        rows.append({"phase": index, "cells": cells})
    return sites, rows


def success_chart(runs: list[Run], sites: list[str], rows: list[dict]) -> SafeString:
    series: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        for run, values in zip(runs, row["cells"], strict=True):
            for site, value in zip(sites, values, strict=True):
                if value is not None:
                    series.setdefault(f"{label(run)} · {site}", []).append(
                        (row["phase"], value * 100)
                    )
    return line_chart(series, title="Test success per phase and site", y_label="success (%)",
                      x_label="phase", y_range=(0.0, 100.0), chart_id="compare-success",
                      height=max(230, 120 + 13 * len(series)))  # fmt: skip


def orm_chart(runs: list[Run], metrics: dict) -> SafeString:
    series = {}
    for run in runs:
        points = [(i, _number(p.get(ORM_ACCURACY))) for i, p in sorted(metrics[run.pk].items())]
        series[label(run)] = [(i, v * 100) for i, v in points if v is not None]
    return line_chart(series, title="ORM accuracy vs ground truth", y_label="accuracy (%)",
                      x_label="phase", y_range=(0.0, 100.0), chart_id="compare-orm")  # fmt: skip


def config_diff(runs: list[Run]) -> list[dict]:
    """The fields whose values differ between the runs' configs, one value per run."""
    rows = configs.diff([run.config if isinstance(run.config, dict) else {} for run in runs])
    return [
        {"field": field, "values": values,
         "shown": ["–" if v is None else json.dumps(v) for v in values]}
        for field, values in rows
    ]  # fmt: skip


def solved_tasks(runs: list[Run], only_differing: bool = False) -> list[dict]:
    """Per test task: for each run, the phases it was evaluated in and those it solved it in."""
    rows = (
        Trajectory.objects.filter(run__in=runs, purpose=Trajectory.Purpose.EVAL,
                                  status=Trajectory.Status.OK)
        .values_list("task_id", "task__intent", "run_id", "phase__index", "score")
        .order_by("task_id", "phase__index")
    )  # fmt: skip
    tasks: dict[int, dict] = {}
    for task_id, intent, run_id, phase, score in rows:
        task = tasks.setdefault(task_id, {"id": task_id, "intent": intent,
                                          "runs": {r.pk: {"evaluated": [], "solved": []} for r in runs}})  # fmt: skip
        cell = task["runs"][run_id]
        cell["evaluated"].append(phase)
        if score is not None and score >= SOLVED_SCORE:
            cell["solved"].append(phase)
    out = []
    for task in tasks.values():
        cells = []
        for run in runs:
            cell = task["runs"][run.pk]
            last = max(cell["evaluated"]) if cell["evaluated"] else None
            state = "none" if last is None else "solved" if last in cell["solved"] else (
                "earlier" if cell["solved"] else "unsolved")  # fmt: skip
            cells.append({"state": state, "solved": sorted(set(cell["solved"])), "last": last})
        if only_differing and len({c["state"] for c in cells}) == 1:
            continue
        out.append({"id": task["id"], "intent": task["intent"], "cells": cells})
        if len(out) >= MAX_TASKS:
            break
    return out


def comparison(runs: list[Run], only_differing: bool = False) -> dict:
    metrics = phase_metrics(runs)
    sites, rows = success_table(runs, metrics)
    tasks = solved_tasks(runs, only_differing)
    return {
        "success_chart": success_chart(runs, sites, rows),
        "orm_chart": orm_chart(runs, metrics),
        "sites": sites,
        "success_rows": rows,
        "config_diff": config_diff(runs),
        "tasks": tasks,
        "solved_counts": [
            sum(t["cells"][i]["state"] == "solved" for t in tasks) for i in range(len(runs))
        ],
    }
