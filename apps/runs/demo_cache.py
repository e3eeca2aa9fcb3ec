"""A cache of phase 0's oracle demonstrations, which are deterministic, so that reruns and `make run`
do not repeat them.

One gzipped JSON file per successful demonstration under `<checkpoint root>/demo-cache/`, named by
a hash of everything that decides the episode: the task's config (its start URL, oracle plan and
evaluator), the world's seed, the page view, the demonstration step limit, the environment's and
evaluators' versions, and the source of the world and the environment (editing either one makes
every entry stale). Restoring writes the trajectory and its steps as the browser stage would have.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.rollouts.models import Step, Trajectory
from apps.rollouts.writer import json_for_postgres, pg_text
from trainer.config import RunConfig

CACHE_DIR = "demo-cache"
FORMAT = 1
_ROOT = Path(__file__).resolve().parents[2]
_SOURCES = (("sandbox", ("*.py", "*.html", "*.js", "*.css")), ("trainer/env", ("*.py", "*.js")))


def cache_dir(config: RunConfig) -> Path:
    """Where the entries live: beside the runs' checkpoints (engine.checkpoint_root when absolute)."""
    root = Path(config.engine.checkpoint_root)
    if not root.is_absolute():
        root = Path(settings.CHECKPOINT_ROOT)
    return root / CACHE_DIR


@functools.cache
def source_fingerprint() -> str:
    """A hash of the world's and the environment's source files."""
    digest = hashlib.sha256()
    for folder, patterns in _SOURCES:
        paths = sorted({p for pattern in patterns for p in (_ROOT / folder).rglob(pattern)})
        for path in paths:
            digest.update(str(path.relative_to(_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def demo_key(task_config: dict, config: RunConfig, max_steps: int) -> str:
    from trainer.env.evaluators import EVALUATOR_VERSION
    from trainer.env.types import ENV_VERSION

    payload = {
        "format": FORMAT,
        "task": task_config,
        "world": config.world,
        "world_seed": config.world_seed,
        "view": config.rollout.observation,
        "max_steps": max_steps,
        "env_version": ENV_VERSION,
        "evaluator_version": EVALUATOR_VERSION,
        "sources": source_fingerprint(),
    }
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def _path(config: RunConfig, key: str) -> Path:
    return cache_dir(config) / key[:2] / f"{key}.json.gz"


def restore(run_id: int, phase_id: int, config: RunConfig, tasks, max_steps: int) -> int:
    """Fill the phase's demonstration rows of the cached `tasks` (Task rows) from the cache; returns
    how many were restored. Rows that already exist (a resumed stage) stay as they are."""
    existing = set(
        Trajectory.objects.filter(phase_id=phase_id, purpose=Trajectory.Purpose.DEMO).values_list(
            "task_id", flat=True
        )
    )
    restored = 0
    for task in tasks:
        if task.pk in existing:
            continue
        path = _path(config, demo_key(task.config, config, max_steps))
        try:
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                entry = json.load(fh)
        except (OSError, ValueError):
            continue
        _write(run_id, phase_id, task.pk, entry)
        restored += 1
    return restored


def _write(run_id: int, phase_id: int, task_id: int, entry: dict) -> None:
    now = timezone.now()
    with transaction.atomic():
        traj = Trajectory.objects.create(
            run_id=run_id,
            phase_id=phase_id,
            task_id=task_id,
            purpose=Trajectory.Purpose.DEMO,
            sample_index=0,
            status=Trajectory.Status.OK,
            score=entry["score"],
            final_answer=pg_text(entry.get("final_answer")),
            final_url=pg_text(entry.get("final_url") or ""),
            step_count=len(entry["steps"]),
            env_version=entry.get("env_version", ""),
            evaluator_version=entry.get("evaluator_version", ""),
            eval_detail=json_for_postgres({**entry.get("eval_detail", {}), "from_cache": True}),
            started_at=now,
            finished_at=now,
        )
        Step.objects.bulk_create(
            [
                Step(
                    trajectory=traj,
                    index=s["index"],
                    observation=pg_text(s["observation"]),
                    response=pg_text(s["response"]),
                    action=json_for_postgres(s.get("action")),
                    url=pg_text(s.get("url", "")),
                    error=pg_text(s.get("error", "")),
                    elapsed_ms=s.get("elapsed_ms"),
                )
                for s in entry["steps"]
            ]
        )


def store(phase_id: int, config: RunConfig, max_steps: int) -> int:
    """Cache every successful demonstration of the phase that is not cached yet; returns how many
    entries were written."""
    written = 0
    demos = (
        Trajectory.objects.filter(
            phase_id=phase_id,
            purpose=Trajectory.Purpose.DEMO,
            status=Trajectory.Status.OK,
            score__gte=1.0,
        )
        .select_related("task")
        .prefetch_related("steps")
    )
    for traj in demos:
        if (traj.eval_detail or {}).get("from_cache"):
            continue
        path = _path(config, demo_key(traj.task.config, config, max_steps))
        if path.exists():
            continue
        steps = sorted(traj.steps.all(), key=lambda s: s.index)
        entry = {
            "format": FORMAT,
            "task_key": traj.task.key,
            "score": traj.score,
            "final_answer": traj.final_answer,
            "final_url": traj.final_url,
            "env_version": traj.env_version,
            "evaluator_version": traj.evaluator_version,
            "eval_detail": traj.eval_detail,
            "steps": [
                {
                    "index": s.index,
                    "observation": s.observation,
                    "response": s.response,
                    "action": s.action,
                    "url": s.url,
                    "error": s.error,
                    "elapsed_ms": s.elapsed_ms,
                }
                for s in steps
            ],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with gzip.open(tmp, "wt", encoding="utf-8") as fh:
            json.dump(entry, fh, ensure_ascii=False)
        os.replace(tmp, path)
        written += 1
    return written
