"""Trajectories are claimed once, written idempotently, and reset cleanly when their worker dies."""

from __future__ import annotations

import pytest

from apps.rollouts.models import Step, Trajectory
from apps.rollouts.writer import (
    claim_next,
    finish_trajectory,
    prepare_trajectories,
    reset_running,
    stage_counts,
    write_step,
)
from apps.runs.models import Phase
from tests.runs.helpers import make_run, make_tasks, tiny_config
from trainer.env.types import EpisodeResult, StepRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def phase(owner, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    run = make_run(owner, tiny_config())
    return Phase.objects.create(run=run, index=1)


def _record(i: int, shot: bytes | None = b"\xff\xd8jpeg") -> StepRecord:
    return StepRecord(i, f"<p>{i}</p>", "prompt", f"do({i})", [1, 2], None, None, "http://x/",
                      shot, None, 5.0)  # fmt: skip


def _result(n: int, status: str = "ok", score: float | None = 1.0) -> EpisodeResult:
    return EpisodeResult(
        status, [_record(i) for i in range(n)], "42", "http://x/", "<p/>", score, {}
    )


def test_preparing_twice_creates_each_trajectory_once(phase):
    tasks = make_tasks(3, 0)
    ids = [t.pk for t in tasks]
    assert prepare_trajectories(phase.run_id, phase.pk, "train", ids) == 3
    assert prepare_trajectories(phase.run_id, phase.pk, "train", ids) == 3
    assert Trajectory.objects.filter(phase=phase).count() == 3


def test_two_workers_never_claim_the_same_trajectory(phase):
    tasks = make_tasks(2, 0)
    prepare_trajectories(phase.run_id, phase.pk, "train", [t.pk for t in tasks])
    a = claim_next(phase.pk, "train", "w1")
    b = claim_next(phase.pk, "train", "w2")
    assert a.pk != b.pk
    assert claim_next(phase.pk, "train", "w3") is None
    assert stage_counts(phase.pk, "train")["running"] == 2


def test_a_reset_trajectory_loses_its_partial_steps_and_can_be_claimed_again(phase):
    (task,) = make_tasks(1, 0)
    prepare_trajectories(phase.run_id, phase.pk, "train", [task.pk])
    traj = claim_next(phase.pk, "train", "dead-worker")
    assert write_step(traj.pk, traj.token, _record(0))
    shot = Step.objects.get(trajectory=traj).screenshot.path
    assert reset_running(phase.pk, "train") == 1
    assert not Step.objects.filter(trajectory=traj).exists()
    import os

    assert not os.path.exists(shot)
    again = claim_next(phase.pk, "train", "new-worker")
    assert again.pk == traj.pk


def test_a_worker_that_lost_its_claim_writes_nothing(phase):
    (task,) = make_tasks(1, 0)
    prepare_trajectories(phase.run_id, phase.pk, "train", [task.pk])
    traj = claim_next(phase.pk, "train", "old")
    reset_running(phase.pk, "train")
    claim_next(phase.pk, "train", "new")
    assert not write_step(traj.pk, traj.token, _record(0))
    assert not finish_trajectory(traj.pk, traj.token, _result(2))
    assert Step.objects.filter(trajectory=traj).count() == 0


def test_finishing_fills_in_missed_steps_and_records_the_outcome(phase):
    (task,) = make_tasks(1, 0)
    prepare_trajectories(phase.run_id, phase.pk, "train", [task.pk])
    traj = claim_next(phase.pk, "train", "w")
    write_step(traj.pk, traj.token, _record(0))
    assert finish_trajectory(traj.pk, traj.token, _result(3, score=0.0))
    traj.refresh_from_db()
    assert traj.status == "ok" and traj.score == 0.0 and traj.step_count == 3
    assert list(traj.steps.values_list("index", flat=True)) == [0, 1, 2]
    assert traj.steps.get(index=2).screenshot.name.endswith(f"{traj.pk}/2.jpg")


def test_an_unknown_episode_status_is_stored_as_an_error(phase):
    (task,) = make_tasks(1, 0)
    prepare_trajectories(phase.run_id, phase.pk, "train", [task.pk])
    traj = claim_next(phase.pk, "train", "w")
    finish_trajectory(traj.pk, traj.token, _result(1, status="exploded", score=None))
    traj.refresh_from_db()
    assert traj.status == "error"


def test_a_shard_takes_its_own_rows_first_then_a_dead_shards_leftovers(phase):
    tasks = make_tasks(4, 0)
    prepare_trajectories(phase.run_id, phase.pk, "train", [t.pk for t in tasks])
    mine = [t.pk for t in tasks if t.pk % 2 == 0]
    first = [claim_next(phase.pk, "train", "w", shard=0, shards=2).task_id for _ in mine]
    assert sorted(first) == sorted(mine)
    rest = claim_next(phase.pk, "train", "w", shard=0, shards=2)
    assert rest is not None and rest.task_id % 2 == 1


def test_only_trajectories_silent_for_long_count_as_orphans(phase):
    from datetime import timedelta

    from django.utils import timezone

    tasks = make_tasks(2, 0)
    prepare_trajectories(phase.run_id, phase.pk, "train", [t.pk for t in tasks])
    live = claim_next(phase.pk, "train", "alive")
    dead = claim_next(phase.pk, "train", "dead")
    long_ago = timezone.now() - timedelta(minutes=10)
    Trajectory.objects.filter(pk__in=[live.pk, dead.pk]).update(
        started_at=long_ago, heartbeat_at=long_ago
    )
    write_step(live.pk, live.token, _record(0))  # a fresh step: its worker is alive
    assert reset_running(phase.pk, "train", older_than_s=60) == 1
    assert Trajectory.objects.get(pk=dead.pk).status == "pending"
    assert Trajectory.objects.get(pk=live.pk).status == "running"


def test_nul_characters_a_model_emits_are_stored_as_replacement_characters(phase):
    (task,) = make_tasks(1, 0)
    prepare_trajectories(phase.run_id, phase.pk, "train", [task.pk])
    traj = claim_next(phase.pk, "train", "w")
    garbage = StepRecord(0, "<p>a\x00b</p>", "prompt", 'do(action="Type", argument="\x00")',
                         [0, 1], None, {"kind": "type", "argument": "\x00x"}, "http://x/",
                         None, "parse\x00 error", 5.0)  # fmt: skip
    assert write_step(traj.pk, traj.token, garbage)
    result = EpisodeResult("ok", [garbage], "an\x00swer", "http://x/", "<p/>", 0.0,
                           {"stop\x00": "why\x00"}, "boom\x00")  # fmt: skip
    assert finish_trajectory(traj.pk, traj.token, result)
    traj.refresh_from_db()
    step = traj.steps.get()
    assert step.response == 'do(action="Type", argument="\ufffd")'
    assert step.observation == "<p>a\ufffdb</p>" and step.error == "parse\ufffd error"
    assert step.action == {"kind": "type", "argument": "\ufffdx"} and step.token_ids == [0, 1]
    assert traj.final_answer == "an\ufffdswer" and traj.error == "boom\ufffd"
    assert traj.eval_detail == {"stop\ufffd": "why\ufffd"}
