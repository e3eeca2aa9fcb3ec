"""An episode whose trajectory was taken from it (reset by the reaper and claimed again by another
worker) stops at its next refused step write: it writes nothing more and finishes nothing."""

from __future__ import annotations

import pytest

from apps.curriculum.models import Task
from apps.rollouts import writer
from apps.rollouts.models import Step, Trajectory
from apps.runs import browser_stage
from apps.runs.models import Phase, Run, StageRun
from apps.runs.orchestrator import claim_stage
from apps.runs.runner import context
from sandbox.server import WorldThread, free_port_block
from sandbox.tasks import load_tasks
from tests.runs.helpers import make_run, tiny_config

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture(scope="module")
def world():
    with WorldThread(instances=1, port=free_port_block()) as w:
        yield w


@pytest.mark.timeout(600)
def test_an_episode_whose_claim_was_taken_stops_at_its_next_refused_step(
    owner, settings, tmp_path, world, monkeypatch
):
    settings.WORLD_URL = world.url
    settings.CHECKPOINT_ROOT = tmp_path / "ckpt"
    settings.MEDIA_ROOT = tmp_path / "media"
    # a task the oracle solves in several steps, so that the episode has steps left to write
    config = next(
        c for c in load_tasks("train") if c["sites"] == ["shopping"] and len(c["oracle"]) >= 3
    )
    task = Task.objects.create(key=f"sandbox:train:{config['task_id']}", config=config,
                               intent=config["intent"], sites=config["sites"], world="sandbox",
                               split="train")  # fmt: skip
    run = make_run(owner, tiny_config())
    run.status = Run.Status.RUNNING
    run.save()
    phase = Phase.objects.create(run=run, index=0)
    stage = StageRun.objects.create(phase=phase, name="sft", order=0, status="pending")
    token = claim_stage(stage.pk, "test-stale-episode")
    assert token

    real_write_step = writer.write_step
    writes: list[tuple[int, bool]] = []
    taken: dict = {}

    def write_step(trajectory_id, token, record):
        ok = real_write_step(trajectory_id, token, record)
        writes.append((record.index, ok))
        if ok and not taken:  # the fault: after the first step, the trajectory is taken away
            writer.reset_running(phase.pk, "demo")
            taken["by"] = writer.claim_next(phase.pk, "demo", "elsewhere:1:s0.0")
        return ok

    monkeypatch.setattr(browser_stage, "write_step", write_step)
    browser_stage.run_inline(context(stage.pk, token), "demo", [task.pk])

    traj = Trajectory.objects.get(phase=phase, purpose="demo")
    assert taken["by"] is not None and taken["by"].pk == traj.pk
    # one step accepted, the next refused, and then nothing: the episode stopped
    assert writes == [(0, True), (1, False)], writes
    assert traj.status == "running" and traj.token == taken["by"].token
    assert traj.claimed_by == "elsewhere:1:s0.0"
    assert not Step.objects.filter(trajectory=traj).exists()  # the new attempt starts clean
