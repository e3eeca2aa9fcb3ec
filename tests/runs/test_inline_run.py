"""A tiny run driven in-process (`train_run`'s path) against the real world and Chromium."""

from __future__ import annotations

import pytest

from apps.curriculum.models import Task
from apps.reviews.models import OrmVerdict
from apps.rollouts.models import Step, Trajectory
from apps.runs.models import Checkpoint, MetricPoint, Phase, Run, StageRun
from apps.runs.runner import drive_inline
from sandbox.server import WorldThread, free_port_block
from tests.runs.helpers import make_run, make_tasks, tiny_config

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.timeout(1200),
]


@pytest.fixture(scope="module")
def world():
    with WorldThread(instances=2, port=free_port_block()) as w:
        yield w


@pytest.fixture
def site(settings, tmp_path, world):
    settings.WORLD_URL = world.url
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CHECKPOINT_ROOT = tmp_path / "ckpt"
    return settings


def test_a_one_phase_run_completes_with_every_row_linked(owner, site):
    make_tasks(4, 2)
    run = make_run(owner, tiny_config(phases=1))
    status = drive_inline(run.pk)
    run.refresh_from_db()
    assert status == Run.Status.SUCCEEDED, run.last_error
    assert not StageRun.objects.filter(phase__run=run).exclude(status="done").exists()
    demos = Trajectory.objects.filter(run=run, purpose="demo")
    assert demos.filter(status="ok", score=1.0).exists()
    train = Trajectory.objects.filter(run=run, purpose="train")
    assert train.count() == 3 * 2  # three tasks in each of phases 0 and 1
    assert Trajectory.objects.filter(run=run, purpose="eval").count() == 2 * 2
    assert Step.objects.filter(trajectory__run=run).count() >= train.count()
    assert (
        OrmVerdict.objects.filter(trajectory__run=run).count() == train.filter(status="ok").count()
    )
    assert set(Checkpoint.objects.filter(run=run).values_list("kind", flat=True)) == {
        "actor", "critic", "orm",
    }  # fmt: skip
    assert MetricPoint.objects.filter(run=run, name="orm/accuracy").count() == 2
    # phase 0 copy-pretrained the fresh tiny model (4 steps in the tiny config) before SFT
    assert MetricPoint.objects.filter(run=run, name="pretrain/loss").count() == 4
    assert (
        StageRun.objects.get(phase__run=run, phase__index=0, name="sft").metrics["pretrain/steps"]
        == 4
    )
    for phase in Phase.objects.filter(run=run):
        assert "orm/accuracy" in phase.metrics and "eval/success_rate" in phase.metrics
    assert Task.objects.count() >= 6
    # the same points reached TensorBoard (run.report_to's default): per phase, and per step
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from apps.runs import trackers

    trackers.close_all()
    for sub, tag, count in (("", "eval/success_rate", 2), ("phase-0", "pretrain/loss", 4)):
        events = EventAccumulator(str(trackers.run_logdir(run.pk) / sub))
        events.Reload()
        assert len(events.Scalars(tag)) == count

    # Phase 0 ran the oracle on the test tasks: the ORM's held-out successes, never trained on.
    heldout = Trajectory.objects.filter(run=run, purpose="heldout", task__split="test")
    assert heldout.count() == 2 and heldout.filter(status="ok", score=1.0).exists()
    for name in ("orm_heldout/balanced_accuracy/all", "orm_heldout/recall/oracle_success"):
        assert MetricPoint.objects.filter(run=run, name=name).count() == 2  # phases 0 and 1

    # orm_measure: the run's ORM on the held-out groups and each phase's rollouts, and the
    # phase-0 ORM retrained from the run's data.
    from apps.runs.orm_measure import measure_run_orms

    measured = measure_run_orms(run.pk, retrain=[], out_root=site.CHECKPOINT_ROOT / "measure")
    assert measured["heldout_counts"]["oracle_success"] == heldout.filter(score=1.0).count()
    assert (
        measured["heldout_counts"]["policy_failure"] + measured["heldout_counts"]["policy_success"]
        == Trajectory.objects.filter(run=run, purpose="eval", status="ok").count()
    )
    (orm,) = measured["orms"]
    for entry in (orm, measured["retrained"]):
        figs = entry["heldout"]["oracle_success"]
        assert figs["n_success"] == measured["heldout_counts"]["oracle_success"]
        assert figs["n_failure"] == 0 and figs["recall"] == figs["accuracy"]
        assert set(entry["rollouts"]) <= {"0", "1"}
    assert measured["retrained"]["examples"]["oracle/yes"] == demos.filter(score=1.0).count()
    alone = measure_run_orms(run.pk, run_orms=False)  # --skip-run-orms: nothing scored
    assert alone["orms"] == [] and alone["heldout_counts"] == measured["heldout_counts"]


def test_a_fork_after_phase_0_runs_phase_1_on_ground_truth_rewards(owner, site):
    from apps.runs.fork import fork_run

    make_tasks(4, 2)
    run = make_run(owner, tiny_config(phases=1))
    assert drive_inline(run.pk) == Run.Status.SUCCEEDED
    demos = Trajectory.objects.filter(purpose="demo").count()

    fork = fork_run(run, ["orm.reward_source=ground_truth"], through_phase=0)
    status = drive_inline(fork.pk)
    fork.refresh_from_db()
    assert status == Run.Status.SUCCEEDED, fork.last_error
    assert Trajectory.objects.filter(purpose="demo").count() == 2 * demos  # copied, not re-run
    sft = Checkpoint.objects.get(run=run, phase__index=0, kind="actor")
    assert Checkpoint.objects.get(run=fork, phase__index=0, kind="actor").path == sft.path
    assert Checkpoint.objects.get(run=fork, phase__index=1, kind="actor").path != sft.path
    rollouts = Trajectory.objects.filter(run=fork, phase__index=1, purpose="train", status="ok")
    assert rollouts.exists()
    for traj in rollouts:  # judged by the ORM, rewarded by the evaluator
        assert traj.orm_p_yes is not None and traj.reward == (1.0 if traj.score >= 1.0 else 0.0)
    assert Trajectory.objects.filter(run=fork, phase__index=1, purpose="eval").count() == 2
