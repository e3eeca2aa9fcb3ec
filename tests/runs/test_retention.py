"""Retention: step checkpoints keep the newest K and every final; old screenshots are pruned;
deleting a run removes its files; a command reports disk use per run."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command

from apps.rollouts.models import Step, Trajectory
from apps.runs.models import Checkpoint, Phase, Run
from apps.runs.retention import prune_screenshots, run_checkpoint_dir, trajectory_screenshot_dir
from tests.runs.helpers import make_run, make_tasks, tiny_config

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def roots(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CHECKPOINT_ROOT = tmp_path / "ckpt"
    return settings


def _run_with_files(owner, phases: int = 3, name: str = "r") -> tuple[Run, list[Step]]:
    run = make_run(owner, tiny_config(), name)
    task = (
        make_tasks(1, 0)[0] if not Trajectory.objects.exists() else Trajectory.objects.first().task
    )
    steps = []
    for index in range(phases):
        phase = Phase.objects.create(run=run, index=index)
        traj = Trajectory.objects.create(task=task, run=run, phase=phase, status="ok")
        step = Step.objects.create(trajectory=traj, index=0)
        step.screenshot.save("x.jpg", ContentFile(b"\xff\xd8" + b"j" * 1000), save=True)
        steps.append(step)
    final = run_checkpoint_dir(run.pk) / "phase-0" / "sft" / "final"
    final.mkdir(parents=True)
    (final / "model.safetensors").write_bytes(b"w" * 5000)
    Checkpoint.objects.create(run=run, kind="actor", path=str(final))
    return run, steps


def test_step_checkpoints_keep_the_newest_k_and_the_final(tmp_path):
    from tests.trainer.helpers import make_steps
    from tests.trainer.helpers import tiny_config as trainer_config
    from trainer.learn.sft import train_sft

    config = trainer_config(**{"engine.checkpoint_every": 1, "engine.keep_step_checkpoints": 2})
    result = train_sft(config, make_steps(8), tmp_path / "sft")
    kept = sorted(p.name for p in (tmp_path / "sft" / "checkpoints").glob("step-*"))
    assert result["steps"] >= 4 and len(kept) == 2
    assert kept[-1] == f"step-{result['steps']:06d}"
    assert (tmp_path / "sft" / "final").is_dir()


def test_screenshots_of_old_phases_are_pruned_and_steps_keep_their_text(owner, roots):
    run, steps = _run_with_files(owner, phases=3)
    files = [s.screenshot.path for s in steps]
    assert prune_screenshots(keep_phases=1) == 2
    assert [Step.objects.get(pk=s.pk).screenshot.name for s in steps][:2] == ["", ""]
    assert Step.objects.get(pk=steps[2].pk).screenshot.name
    import os

    assert [os.path.exists(f) for f in files] == [False, False, True]
    assert prune_screenshots(keep_phases=0) == 0  # 0 keeps every one


def test_deleting_a_run_removes_its_checkpoints_and_screenshots_only(owner, roots):
    doomed, doomed_steps = _run_with_files(owner, name="doomed")
    kept, kept_steps = _run_with_files(owner, name="kept")
    doomed_dirs = [trajectory_screenshot_dir(s.trajectory_id) for s in doomed_steps]
    assert run_checkpoint_dir(doomed.pk).is_dir() and all(d.is_dir() for d in doomed_dirs)
    doomed.delete()
    assert not run_checkpoint_dir(doomed.pk).exists()
    assert not any(d.exists() for d in doomed_dirs)
    assert run_checkpoint_dir(kept.pk).is_dir()
    assert all(trajectory_screenshot_dir(s.trajectory_id).is_dir() for s in kept_steps)


def test_the_disk_usage_command_reports_each_run(owner, roots):
    run, steps = _run_with_files(owner, phases=2)
    out = io.StringIO()
    call_command("disk_usage", "--json", stdout=out)
    (row,) = json.loads(out.getvalue())["runs"]
    assert row["run"] == run.pk and row["checkpoints_bytes"] == 5000
    assert row["screenshots_bytes"] == 2 * 1002
    assert row["total_bytes"] == 5000 + 2004
    assert json.loads(out.getvalue())["demo_cache"]["entries"] == 0
    cache = roots.CHECKPOINT_ROOT / "demo-cache" / "ab"
    cache.mkdir(parents=True)
    (cache / "abcd.json.gz").write_bytes(b"x" * 300)
    out = io.StringIO()
    call_command("disk_usage", "--json", stdout=out)
    assert json.loads(out.getvalue())["demo_cache"] == {
        "path": str(roots.CHECKPOINT_ROOT / "demo-cache"), "entries": 1, "bytes": 300}  # fmt: skip
    text = io.StringIO()
    call_command("disk_usage", stdout=text)
    assert f"run {run.pk:>5}" in text.getvalue() and "4.9 kB" in text.getvalue()
    assert "demo cache: 1 demonstration(s), 300 B" in text.getvalue()
