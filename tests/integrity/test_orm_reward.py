"""The ORM's reward never overwrites a human label, even one given while the ORM was scoring."""

from __future__ import annotations

import pytest

from apps.reviews.models import OrmVerdict
from apps.reviews.services import add_human_label
from apps.rollouts.models import Trajectory
from apps.runs.models import Checkpoint, Phase, Run, StageRun
from apps.runs.reporter import DjangoReporter
from apps.runs.rows import finished_train, trajectory_rows
from apps.runs.stages import StageContext, label_with_orm
from tests.conftest import make_cast
from tests.runs.helpers import make_tasks, tiny_config
from trainer.config import RunConfig

pytestmark = pytest.mark.django_db


@pytest.fixture
def scene(django_user_model):
    owner, reviewer, _ = make_cast(django_user_model)
    run = Run.objects.create(owner=owner, name="r", config=tiny_config())
    phase = Phase.objects.create(run=run, index=1)
    stage = StageRun.objects.create(phase=phase, name="orm", order=1)
    orm = Checkpoint.objects.create(run=run, phase=phase, kind="orm", path="/nonexistent")
    rows = []
    for task in make_tasks(2, 0):
        traj = Trajectory.objects.create(
            task=task, run=run, phase=phase, status="ok", score=1.0, step_count=1
        )
        traj.steps.create(index=0, observation="<p/>", response='do(action="Click")')
        rows.append(traj)
    ctx = StageContext(run, phase, stage, RunConfig.from_dict(run.config),
                       DjangoReporter(run.pk, phase.pk, "orm"), lambda: False)  # fmt: skip
    return ctx, orm, rows, reviewer


def test_a_label_given_while_the_orm_scores_keeps_its_reward(scene, monkeypatch):
    import trainer.learn.orm as orm_module

    ctx, orm, (labelled, other), reviewer = scene
    rows = trajectory_rows(finished_train(ctx.phase))  # read before scoring: no label yet
    assert all(r["human_label"] is None for r in rows)

    def scores_while_a_reviewer_labels(path, prompts, **kw):
        add_human_label(reviewer, Trajectory.objects.get(pk=labelled.pk), False)
        return [0.9 for _ in prompts]  # the ORM says YES to both

    monkeypatch.setattr(orm_module, "orm_scores", scores_while_a_reviewer_labels)
    metrics = label_with_orm(ctx, orm, rows)

    labelled.refresh_from_db()
    other.refresh_from_db()
    assert labelled.human_label is False and labelled.reward == 0.0  # the human's NO stands
    assert labelled.orm_p_yes == pytest.approx(0.9)
    assert other.reward == 1.0 and other.human_label is None
    assert OrmVerdict.objects.filter(checkpoint=orm).count() == 2
    assert metrics["orm/success_rate"] == 0.5


def test_with_ground_truth_rewards_the_evaluator_decides_and_a_human_label_still_wins(
    scene, monkeypatch
):
    import trainer.learn.orm as orm_module

    ctx, orm, (labelled, failed), reviewer = scene
    Trajectory.objects.filter(pk=failed.pk).update(score=0.0)
    ctx.config = ctx.config.with_overrides(["orm.reward_source=ground_truth"])
    rows = trajectory_rows(finished_train(ctx.phase))

    def wrong_about_both(path, prompts, **kw):
        add_human_label(reviewer, Trajectory.objects.get(pk=labelled.pk), False)
        by_task = {r["task_id"]: r for r in rows}
        # NO to the success, YES to the failure
        return [0.1 if by_task[t]["score"] == 1.0 else 0.9 for t in by_task]

    monkeypatch.setattr(orm_module, "orm_scores", wrong_about_both)
    metrics = label_with_orm(ctx, orm, rows)

    labelled.refresh_from_db()
    failed.refresh_from_db()
    assert labelled.reward == 0.0  # a success by the evaluator, but the human said NO
    assert failed.reward == 0.0 and failed.orm_p_yes == pytest.approx(0.9)  # the ORM's YES ignored
    # the ORM's own figures are still measured against the truth: it got both wrong
    assert metrics["orm/accuracy"] == 0.0
