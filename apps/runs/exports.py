"""A run's data as datasets other trainers read: SFT steps, ORM examples with their effective label,
and generated tasks, as JSON Lines, Parquet, or LLaMA-Factory's sharegpt and alpaca layouts.

Every file loads with `datasets.load_dataset("json" | "parquet", data_files=PATH)`. Evaluation
trajectories (the test split) are never exported as training data.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from apps.curriculum.models import Task
from apps.rollouts.models import Step, Trajectory
from apps.runs.models import Run
from trainer.config import RunConfig
from trainer.phase import step_records
from trainer.prompts import ORM_SYSTEM, build_orm_prompt, build_orm_user

KINDS = ("sft", "orm", "tasks")
FORMATS = ("jsonl", "parquet", "sharegpt", "alpaca")
SUCCESS_SCORE = 1.0  # ground truth counts as success at this score (as Trajectory.disagrees)
CHUNK = 200  # trajectories whose steps are read at once
CONTENT_TYPES = {"parquet": "application/vnd.apache.parquet"}
# LLaMA-Factory's dataset_info.json entry for each chat layout (its defaults name the columns).
LLAMA_FACTORY = {
    "sharegpt": {"formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system"}},
    "alpaca": {"formatting": "alpaca", "columns": {"prompt": "instruction", "query": "input",
                                                   "response": "output", "system": "system"}},
}  # fmt: skip


class ExportError(ValueError):
    """The export cannot be made as asked; the message says which option to change."""


@dataclass(frozen=True)
class ExportSpec:
    run_id: int
    kind: str
    format: str
    phase: int | None = None
    approved_only: bool = False

    def check(self) -> None:
        if self.kind not in KINDS:
            raise ExportError(f"kind: choose one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.format not in FORMATS:
            raise ExportError(f"format: choose one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.kind == "tasks" and self.format in LLAMA_FACTORY:
            raise ExportError("format: tasks export as jsonl or parquet (they have no chat turns)")

    @property
    def filename(self) -> str:
        phase = f"-phase-{self.phase}" if self.phase is not None else ""
        ext = "parquet" if self.format == "parquet" else "jsonl"
        return f"run-{self.run_id}-{self.kind}{phase}-{self.format}.{ext}"


def effective_label(t: Trajectory, threshold: float) -> tuple[bool | None, str | None]:
    """A human label wins; else the ORM's verdict; else the ground truth; else none."""
    if t.human_label is not None:
        return t.human_label, "human"
    if t.orm_p_yes is not None:
        return t.orm_p_yes >= threshold, "orm"
    if t.score is not None:
        return t.score >= SUCCESS_SCORE, "ground_truth"
    return None, None


def _trajectories(spec: ExportSpec):
    rows = Trajectory.objects.filter(
        run_id=spec.run_id,
        status=Trajectory.Status.OK,
        purpose__in=[Trajectory.Purpose.TRAIN, Trajectory.Purpose.DEMO],
    ).select_related("task", "phase")
    if spec.phase is not None:
        rows = rows.filter(phase__index=spec.phase)
    if spec.approved_only:
        rows = rows.filter(task__status=Task.Status.APPROVED)
    return rows.order_by("id")


def _with_steps(spec: ExportSpec) -> Iterator[tuple[Trajectory, list[Step]]]:
    ids = list(_trajectories(spec).values_list("id", flat=True))
    for i in range(0, len(ids), CHUNK):
        chunk = {t.pk: t for t in _trajectories(spec).filter(pk__in=ids[i : i + CHUNK])}
        steps: dict[int, list[Step]] = {pk: [] for pk in chunk}
        for step in (
            Step.objects.filter(trajectory_id__in=chunk)
            .only("trajectory_id", "index", "observation", "response")
            .order_by("trajectory_id", "index")
        ):
            steps[step.trajectory_id].append(step)
        for pk in sorted(chunk):
            if steps[pk]:
                yield chunk[pk], steps[pk]


def _meta(t: Trajectory, source: str | None) -> dict:
    return {"trajectory_id": t.pk, "run_id": t.run_id,
            "phase": t.phase.index if t.phase_id else None, "task_id": t.task_id,
            "label_source": source}  # fmt: skip


def sft_rows(spec: ExportSpec, config: RunConfig) -> Iterator[dict]:
    """§10 step records of every successful trajectory (by its effective label): the same records
    `python -m trainer sft --data` reads, with where each came from."""
    for t, steps in _with_steps(spec):
        label, source = effective_label(t, config.orm.threshold)
        if not label:
            continue
        records = step_records(
            t.task.intent, [s.observation for s in steps], [s.response for s in steps], 1.0,
            config.actor.gamma,
        )  # fmt: skip
        for step, rec in zip(steps, records, strict=True):
            yield {**rec, **_meta(t, source), "step_index": step.index}


def orm_rows(spec: ExportSpec, config: RunConfig) -> Iterator[dict]:
    """One ORM example (§4.1) per labelled trajectory, with its effective label and its source."""
    for t, steps in _with_steps(spec):
        label, source = effective_label(t, config.orm.threshold)
        if label is None:
            continue
        responses = [s.response for s in steps]
        last_html = steps[-1].observation
        yield {
            **_meta(t, source),
            "intent": t.task.intent,
            "system": ORM_SYSTEM,
            "user": build_orm_user(t.task.intent, responses, last_html),
            "prompt": build_orm_prompt(t.task.intent, responses, last_html),
            "completion": "YES" if label else "NO",
            "label": label,
            "human_label": t.human_label,
            "orm_p_yes": t.orm_p_yes,
            "score": t.score,
        }


def task_rows(spec: ExportSpec, config: RunConfig) -> Iterator[dict]:
    """The tasks the run's curriculum generated; `config` is the WebArena config as JSON text."""
    rows = Task.objects.filter(run_id=spec.run_id, origin=Task.Origin.GENERATED)
    if spec.phase is not None:
        rows = rows.filter(generating_phase__index=spec.phase)
    if spec.approved_only:
        rows = rows.filter(status=Task.Status.APPROVED)
    for task in rows.select_related("generating_phase").prefetch_related("parents").order_by("id"):
        yield {
            "task_id": task.pk, "key": task.key, "intent": task.intent, "sites": list(task.sites),
            "world": task.world, "status": task.status, "run_id": task.run_id,
            "phase": task.generating_phase.index if task.generating_phase_id else None,
            "critic_value": task.critic_value,
            "parents": [p.key for p in task.parents.all()],
            "config": json.dumps(task.config, ensure_ascii=False, sort_keys=True),
        }  # fmt: skip


def chat_row(kind: str, fmt: str, row: dict) -> dict:
    """A row in LLaMA-Factory's sharegpt or alpaca layout (its default column names)."""
    if kind == "sft":
        system, user, answer = "", row["observation"], row["action"]
    else:
        system, user, answer = row["system"], row["user"], row["completion"]
    keep = {k: row[k] for k in ("trajectory_id", "label_source") if k in row}
    if kind == "orm":
        keep["label"] = row["label"]
    if fmt == "sharegpt":
        turns = [{"from": "human", "value": user}, {"from": "gpt", "value": answer}]
        return {"conversations": turns, "system": system, **keep}
    return {"instruction": user, "input": "", "output": answer, "system": system, **keep}


ROWS = {"sft": sft_rows, "orm": orm_rows, "tasks": task_rows}


def rows_for(spec: ExportSpec) -> Iterator[dict]:
    spec.check()
    run = Run.objects.filter(pk=spec.run_id).only("config").first()
    if run is None:
        raise ExportError(f"run: no run {spec.run_id}")
    config = RunConfig.from_dict(run.config)
    for row in ROWS[spec.kind](spec, config):
        yield chat_row(spec.kind, spec.format, row) if spec.format in LLAMA_FACTORY else row


def write_export(spec: ExportSpec, out: str | Path) -> int:
    """Write the export to `out` (atomically: a temporary file renamed); returns the row count.
    Raises ExportError when nothing matches, rather than leave a file no loader accepts."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
    os.close(fd)
    try:
        count = _write_parquet(spec, tmp) if spec.format == "parquet" else _write_jsonl(spec, tmp)
        if not count:
            raise ExportError(
                f"nothing to export: run {spec.run_id} has no {spec.kind} rows"
                + (f" in phase {spec.phase}" if spec.phase is not None else "")
                + (" with approved tasks" if spec.approved_only else "")
            )
        os.replace(tmp, out)
        return count
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_jsonl(spec: ExportSpec, path: str) -> int:
    count = 0
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows_for(spec):
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def _write_parquet(spec: ExportSpec, path: str, batch: int = 1000) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = PARQUET_SCHEMAS[spec.kind]()
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        rows: list[dict] = []
        for row in rows_for(spec):
            rows.append(row)
            if len(rows) >= batch:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                count, rows = count + len(rows), []
        if rows:
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
            count += len(rows)
    return count


def _meta_fields():
    import pyarrow as pa

    return [("trajectory_id", pa.int64()), ("run_id", pa.int64()), ("phase", pa.int64()),
            ("task_id", pa.int64()), ("label_source", pa.string())]  # fmt: skip


def _sft_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("observation", pa.string()),
            ("next_observation", pa.string()),
            ("task", pa.string()),
            ("action", pa.string()),
            ("reward", pa.float64()),
            ("done", pa.bool_()),
            ("trajectory_reward", pa.float64()),
            ("mc_return", pa.float64()),
            *_meta_fields(),
            ("step_index", pa.int64()),
        ]  # fmt: skip
    )


def _orm_schema():
    import pyarrow as pa

    return pa.schema(
        [
            *_meta_fields(),
            ("intent", pa.string()),
            ("system", pa.string()),
            ("user", pa.string()),
            ("prompt", pa.string()),
            ("completion", pa.string()),
            ("label", pa.bool_()),
            ("human_label", pa.bool_()),
            ("orm_p_yes", pa.float64()),
            ("score", pa.float64()),
        ]  # fmt: skip
    )


def _task_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("task_id", pa.int64()),
            ("key", pa.string()),
            ("intent", pa.string()),
            ("sites", pa.list_(pa.string())),
            ("world", pa.string()),
            ("status", pa.string()),
            ("run_id", pa.int64()),
            ("phase", pa.int64()),
            ("critic_value", pa.float64()),
            ("parents", pa.list_(pa.string())),
            ("config", pa.string()),
        ]  # fmt: skip
    )


PARQUET_SCHEMAS = {"sft": _sft_schema, "orm": _orm_schema, "tasks": _task_schema}
