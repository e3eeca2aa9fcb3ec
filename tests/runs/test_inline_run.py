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

    # orm_measure retrains phase 0's ORM from this run's data and judges its later trajectories.
    from apps.runs.orm_measure import measure_orm_variants

    variants = {"off": ["orm.balance=false"], "on": ["orm.balance=true"]}
    measured = measure_orm_variants(run.pk, variants, out_root=site.CHECKPOINT_ROOT / "measure")
    judged = (
        Trajectory.objects.filter(status="ok", score__isnull=False, run=run)
        .exclude(purpose="demo")
        .exclude(purpose="train", phase__index=0)
    )
    assert measured["judged"] == judged.count() > 0
    assert measured["train_examples"] >= demos.filter(status="ok", score=1.0).count()
    for name in variants:
        later = measured["variants"][name]["later"]
        assert set(later) == {"orm/accuracy", "orm/precision", "orm/recall", "orm/specificity"}
        assert all(0.0 <= v <= 1.0 for v in later.values())
