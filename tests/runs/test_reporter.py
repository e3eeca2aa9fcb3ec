"""The reporter stores metrics as MetricPoints and sends live fragments to the run's group."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.layers import get_channel_layer

from apps.runs.live import group_name
from apps.runs.models import Checkpoint, MetricPoint, Phase
from apps.runs.reporter import DjangoReporter
from tests.runs.helpers import make_run, tiny_config

pytestmark = pytest.mark.django_db


@pytest.fixture
def reporter(owner):
    run = make_run(owner, tiny_config())
    phase = Phase.objects.create(run=run, index=1)
    return DjangoReporter(run.pk, phase.pk, "actor", frame_interval_s=60)


def test_numeric_metrics_become_metric_points_and_text_is_left_out(reporter):
    reporter.on_metrics({"loss/actor": 0.5, "actor/steps": 3, "note": "x", "flag": True}, step=7)
    rows = set(MetricPoint.objects.values_list("name", "step", "value"))
    assert rows == {("loss/actor", 7, 0.5), ("actor/steps", 7, 3.0)}


def test_a_training_step_stores_its_metrics_and_hands_the_step_count_to_the_progress_bar(reporter):
    seen = []
    reporter.on_progress = seen.append
    on_step = reporter.on_train_step("sft")
    on_step({"step": 3, "total_steps": 10, "loss": 1.25, "lr": 0.001})
    rows = set(MetricPoint.objects.values_list("name", "step", "value"))
    assert rows == {("sft/loss", 3, 1.25), ("sft/lr", 3, 0.001)}
    assert seen == [{"step": 3, "sft/loss": 1.25, "sft/lr": 0.001, "total": 10}]


def test_a_rerun_stage_updates_its_checkpoint_instead_of_adding_one(reporter):
    reporter.on_checkpoint("actor", "/a", 1, {}, {})
    reporter.on_checkpoint("actor", "/b", 2, {}, {})
    assert list(Checkpoint.objects.values_list("path", "step")) == [("/b", 2)]


def test_frames_reach_the_run_group_at_most_once_per_interval(reporter):
    async def main():
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(group_name(reporter.run_id), channel)
        await reporter.aon_frame(0, b"\xff\xd8first", "buy a brush")
        await reporter.aon_frame(0, b"\xff\xd8second", "buy a brush")  # throttled
        await reporter.aon_frame(1, b"\xff\xd8other", "")
        got = [await asyncio.wait_for(layer.receive(channel), 5) for _ in range(2)]
        await layer.group_discard(group_name(reporter.run_id), channel)
        return got

    got = asyncio.run(main())
    assert [m["slot"] for m in got] == [0, 1]
    assert all(m["type"] == "run.frame" for m in got)
    assert 'id="slot-0"' in got[0]["html"] and "buy a brush" in got[0]["html"]
    json.dumps(got)  # payloads survive the JSON round trip
