"""The data model's constraints hold in Postgres."""

import pytest
from django.db import IntegrityError, transaction

from apps.curriculum.models import Task
from apps.reviews.models import HumanLabel, OrmVerdict
from apps.rollouts.models import Step, Trajectory
from apps.runs.models import Checkpoint, MetricPoint, Phase, Run


def make_task(key="sandbox:test:1"):
    config = {
        "intent": "Find the price",
        "sites": ["shopping"],
        "start_url": "__SHOPPING__",
        "eval": {},
    }
    return Task.objects.create(
        key=key,
        config=config,
        intent=config["intent"],
        sites=["shopping"],
        world="sandbox",
        split="test",
    )


@pytest.fixture
def run(cast):
    owner = cast[0]
    return Run.objects.create(owner=owner, name="r", config={"preset": "demo-cpu"})


def test_a_phase_index_is_unique_per_run(run):
    Phase.objects.create(run=run, index=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Phase.objects.create(run=run, index=0)


def test_a_task_key_is_unique(db):
    make_task()
    with pytest.raises(IntegrityError), transaction.atomic():
        make_task()


def test_a_trajectory_sample_is_unique_per_phase_purpose_and_task(run):
    phase = Phase.objects.create(run=run, index=1)
    task = make_task()
    Trajectory.objects.create(task=task, run=run, phase=phase, purpose="train", sample_index=0)
    Trajectory.objects.create(task=task, run=run, phase=phase, purpose="eval", sample_index=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Trajectory.objects.create(task=task, run=run, phase=phase, purpose="train", sample_index=0)


def test_a_step_index_is_unique_per_trajectory(run):
    t = Trajectory.objects.create(task=make_task(), run=run)
    Step.objects.create(trajectory=t, index=0, response="exit(message='x')")
    with pytest.raises(IntegrityError), transaction.atomic():
        Step.objects.create(trajectory=t, index=0)


def test_an_orm_verdict_probability_must_lie_in_the_unit_interval(run):
    t = Trajectory.objects.create(task=make_task(), run=run)
    with pytest.raises(IntegrityError), transaction.atomic():
        OrmVerdict.objects.create(trajectory=t, p_yes=1.5, label=True)
    OrmVerdict.objects.create(trajectory=t, p_yes=0.7, label=True)


def test_tasks_cannot_be_deleted_while_trajectories_use_them(run):
    task = make_task()
    Trajectory.objects.create(task=task, run=run)
    with pytest.raises(IntegrityError), transaction.atomic():
        Task.objects.filter(pk=task.pk).delete()


def test_human_labels_keep_their_history_and_the_latest_counts(cast, run):
    owner, reviewer, _ = cast
    t = Trajectory.objects.create(task=make_task(), run=run)
    HumanLabel.objects.create(trajectory=t, user=reviewer, label=False)
    HumanLabel.objects.create(trajectory=t, user=owner, label=True)
    assert t.human_labels.count() == 2
    assert t.human_labels.first().label is True


def test_deleting_a_run_removes_its_phases_checkpoints_and_metrics(run):
    phase = Phase.objects.create(run=run, index=0)
    Checkpoint.objects.create(run=run, phase=phase, kind="actor", path="/x")
    MetricPoint.objects.create(run=run, phase=phase, name="loss/actor", step=1, value=0.5)
    run.delete()
    assert not Checkpoint.objects.exists() and not MetricPoint.objects.exists()


def test_generated_tasks_link_to_their_parents(run):
    parent = make_task("sandbox:train:1")
    child = make_task("gen:1")
    child.parents.add(parent)
    assert list(parent.children.all()) == [child]
