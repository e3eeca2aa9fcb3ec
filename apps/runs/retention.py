"""Files a run leaves on disk: its checkpoint directory and its steps' screenshots. How much each run
uses, pruning old screenshots (SCREENSHOT_KEEP_PHASES), and removing a deleted run's files.

Step checkpoints are pruned by the trainer as it saves them (`engine.keep_step_checkpoints`).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max

from apps.rollouts.models import Step, Trajectory
from apps.runs.models import Checkpoint, Run

log = logging.getLogger(__name__)


def run_checkpoint_dir(run_id: int) -> Path:
    return Path(settings.CHECKPOINT_ROOT) / f"run-{run_id}"


def trajectory_screenshot_dir(trajectory_id: int) -> Path:
    return (
        Path(settings.MEDIA_ROOT) / "screenshots" / str(trajectory_id // 1000) / str(trajectory_id)
    )


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if not path.is_dir():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def disk_usage(run_ids: list[int] | None = None) -> list[dict]:
    """Bytes of checkpoints and screenshots per run (newest run first)."""
    runs = Run.objects.order_by("-pk")
    if run_ids:
        runs = runs.filter(pk__in=run_ids)
    rows = []
    for run in runs.only("pk", "name", "status"):
        dirs = {run_checkpoint_dir(run.pk)}
        dirs |= {Path(p) for p in Checkpoint.objects.filter(run=run).values_list("path", flat=True)}
        checkpoints = sum(_size(d) for d in _outermost(dirs))
        screenshots = sum(
            _size(trajectory_screenshot_dir(pk))
            for pk in Trajectory.objects.filter(run=run).values_list("pk", flat=True)
        )
        rows.append({"run": run.pk, "name": run.name, "status": run.status,
                     "checkpoints_bytes": checkpoints, "screenshots_bytes": screenshots,
                     "total_bytes": checkpoints + screenshots})  # fmt: skip
    return rows


def demo_cache_usage() -> dict:
    """The demonstration cache under CHECKPOINT_ROOT (apps.runs.demo_cache): shared by every run,
    never pruned (its entries are keyed by task, settings and source), so reported on its own
    line; delete the directory to empty it."""
    from apps.runs.demo_cache import CACHE_DIR

    path = Path(settings.CHECKPOINT_ROOT) / CACHE_DIR
    entries = list(path.rglob("*.json.gz")) if path.is_dir() else []
    return {"path": str(path), "entries": len(entries), "bytes": _size(path)}


def _outermost(paths: set[Path]) -> list[Path]:
    """Paths none of whose ancestors is in the set (so nothing is counted twice)."""
    resolved = sorted({p.resolve() for p in paths}, key=lambda p: len(p.parts))
    out: list[Path] = []
    for path in resolved:
        if not any(parent in out for parent in path.parents):
            out.append(path)
    return out


def prune_screenshots(keep_phases: int | None = None) -> int:
    """Delete the screenshots of every run's phases but its newest `keep_phases` (0 keeps all);
    steps keep their text. Returns how many files went."""
    keep = settings.SCREENSHOT_KEEP_PHASES if keep_phases is None else keep_phases
    if keep <= 0:
        return 0
    removed = 0
    latest = Trajectory.objects.values("run_id").annotate(last=Max("phase__index"))
    for row in latest:
        if row["run_id"] is None or row["last"] is None:
            continue
        old = Step.objects.filter(
            trajectory__run_id=row["run_id"], trajectory__phase__index__lte=row["last"] - keep
        ).exclude(screenshot="")
        for pk, name in old.values_list("pk", "screenshot").iterator(chunk_size=500):
            default_storage.delete(name)
            Step.objects.filter(pk=pk).update(screenshot="")
            removed += 1
    return removed


def remove_run_files(run_id: int, trajectory_ids: list[int], checkpoint_paths: list[str]) -> None:
    """A deleted run's checkpoint directory and screenshots (only inside CHECKPOINT_ROOT and
    MEDIA_ROOT: a stored path never sends the deletion elsewhere)."""
    roots = (Path(settings.CHECKPOINT_ROOT).resolve(), Path(settings.MEDIA_ROOT).resolve())
    targets = [run_checkpoint_dir(run_id), *map(Path, checkpoint_paths)]
    targets += [trajectory_screenshot_dir(pk) for pk in trajectory_ids]
    for target in targets:
        path = target.resolve()
        if not any(root in path.parents for root in roots):
            log.warning("not removing %s: outside CHECKPOINT_ROOT and MEDIA_ROOT", path)
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink(missing_ok=True)


def on_run_delete(sender, instance: Run, **kwargs) -> None:
    """pre_delete of a Run: remember its files, remove them once the deletion commits."""
    trajectories = list(Trajectory.objects.filter(run=instance).values_list("pk", flat=True))
    paths = list(Checkpoint.objects.filter(run=instance).values_list("path", flat=True))
    run_id = instance.pk
    transaction.on_commit(lambda: remove_run_files(run_id, trajectories, paths))
