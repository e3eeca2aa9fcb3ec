"""A run forked after phase 0 shares phase 0's results and runs the later phases under its own config
(`experiment learning`'s row "WebRL with ground-truth reward")."""

from __future__ import annotations

import pytest

from apps.curriculum.models import Task
from apps.rollouts.models import Step, Trajectory
from apps.runs import orchestrator
from apps.runs.fork import ForkError, fork_run
from apps.runs.models import Checkpoint, MetricPoint, Phase, Run, StageRun
from apps.runs.stages import latest_checkpoint
from tests.runs.helpers import make_run, make_tasks, tiny_config
from trainer.config import RunConfig

pytestmark = pytest.mark.django_db


@pytest.fixture
def finished_phase0(owner):
    """A one-phase run whose phase 0 is done: demonstrations, judged rollouts, checkpoints, a task
    generated for phase 1, metric points."""
    train = make_tasks(3, 0)
    run = make_run(owner, tiny_config(phases=1))
    orchestrator.start_run(run.pk)
    phase0 = Phase.objects.get(run=run, index=0)
    StageRun.objects.filter(phase=phase0).update(status=StageRun.Status.DONE, metrics={"x": 1.0})
    Phase.objects.filter(pk=phase0.pk).update(metrics={"orm/accuracy": 0.5})
    sft = Checkpoint.objects.create(run=run, phase=phase0, kind="actor", path="/models/sft")
    Checkpoint.objects.create(run=run, phase=phase0, kind="orm", path="/models/orm")
    generated = Task.objects.create(
        key="gen:1", config=train[0].config, intent="generated", sites=["shopping"],
        world="sandbox", split="train", origin="generated", run=run, generating_phase=phase0,
    )  # fmt: skip
    generated.parents.set([train[0]])
    # the oracle's demonstration, and two rollouts the ORM judged: YES to a failure, NO to a success
    for task, purpose, score, reward in ((train[0], "demo", 1.0, 1.0), (train[1], "train", 0.0, 1.0),
                                         (train[2], "train", 1.0, 0.0)):  # fmt: skip
        traj = Trajectory.objects.create(task=task, run=run, phase=phase0, purpose=purpose,
                                         status="ok", score=score, reward=reward, step_count=2,
                                         checkpoint=sft, orm_p_yes=reward)  # fmt: skip
        for i in range(2):
            traj.steps.create(index=i, observation=f"<p>{i}</p>", response=f"do {i}",
                              screenshot=f"screenshots/0/{traj.pk}/{i}.jpg")  # fmt: skip
    MetricPoint.objects.create(run=run, phase=phase0, name="sft/loss", step=1, value=2.0)
    return run


def test_a_fork_after_phase_0_copies_it_and_goes_on_with_phase_1(finished_phase0):
    run = finished_phase0
    fork = fork_run(run, ["orm.reward_source=ground_truth"], through_phase=0)

    assert fork.status == Run.Status.QUEUED
    assert RunConfig.from_dict(fork.config).orm.reward_source == "ground_truth"
    assert RunConfig.from_dict(run.config).orm.reward_source == "orm"
    stages = StageRun.objects.filter(phase__run=fork)
    assert set(stages.filter(phase__index=0).values_list("status", flat=True)) == {"done"}
    assert set(stages.filter(phase__index=1).values_list("status", flat=True)) == {"pending"}
    assert Phase.objects.get(run=fork, index=0).metrics == {"orm/accuracy": 0.5}

    orchestrator.start_run(fork.pk)
    assert (orchestrator.next_stage(fork.pk).phase.index, orchestrator.next_stage(fork.pk).name) == (
        1, "rollout",
    )  # fmt: skip
    assert latest_checkpoint(fork.pk, "actor").path == "/models/sft"
    assert latest_checkpoint(fork.pk, "orm").path == "/models/orm"

    # phase 1's rollouts draw from the fork's own copy of the generated task
    copy = Task.objects.get(run=fork)
    assert copy.generating_phase.index == 0 and copy.intent == "generated"
    assert list(copy.parents.values_list("key", flat=True)) == [
        Task.objects.get(key="gen:1").parents.get().key
    ]

    trajs = Trajectory.objects.filter(run=fork)
    assert trajs.count() == 3 and set(trajs.values_list("phase__run", flat=True)) == {fork.pk}
    assert all(t.checkpoint.run_id == fork.pk for t in trajs)
    assert Step.objects.filter(trajectory__run=fork).count() == 6
    assert not Step.objects.filter(trajectory__run=fork).exclude(screenshot="").exists()
    # ground-truth rewards: the copied rollouts are re-judged by the evaluator, the original is not
    assert dict(trajs.values_list("score", "reward")) == {0.0: 0.0, 1.0: 1.0}
    assert Trajectory.objects.filter(run=run, purpose="train", score=0.0).get().reward == 1.0
    assert MetricPoint.objects.filter(run=fork, name="sft/loss").count() == 1
    assert Step.objects.filter(trajectory__run=run).exclude(screenshot="").count() == 6


def test_a_fork_keeps_the_orm_rewards_unless_told_otherwise(finished_phase0):
    fork = fork_run(finished_phase0, ["actor.lr=3e-5"])
    assert Trajectory.objects.get(run=fork, purpose="train", score=0.0).reward == 1.0
    assert RunConfig.from_dict(fork.config).actor.lr == 3e-5


def test_a_fork_is_refused_before_its_phase_is_done_or_with_a_bad_override(finished_phase0, owner):
    with pytest.raises(ForkError, match="orm.reward_source"):
        fork_run(finished_phase0, ["orm.reward_source=oracle"])
    with pytest.raises(ForkError, match="nothing to run"):
        fork_run(finished_phase0, [], through_phase=1)
    StageRun.objects.filter(phase__run=finished_phase0, name="curriculum").update(status="running")
    with pytest.raises(ForkError, match="has not finished phase 0"):
        fork_run(finished_phase0, [])
    assert Run.objects.count() == 1
