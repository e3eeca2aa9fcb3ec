"""`eval_policy`: one checkpoint evaluated on the test split under config variants, paired, in real
Chromium against the built-in world."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from apps.rollouts.models import Trajectory
from apps.runs.models import Run
from sandbox.server import WorldThread, free_port_block
from tests.trainer.helpers import make_steps
from tests.trainer.helpers import tiny_config as trainer_tiny_config
from trainer.learn.sft import train_sft

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser,
              pytest.mark.timeout(900)]  # fmt: skip


def test_each_variant_is_an_eval_run_on_the_same_tasks_compared_with_the_first(
    owner, settings, tmp_path, capsys
):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CHECKPOINT_ROOT = tmp_path / "ckpt"
    policy = train_sft(trainer_tiny_config(), make_steps(4), tmp_path / "sft")["model_dir"]
    with WorldThread(instances=1, port=free_port_block()) as world:
        settings.WORLD_URL = world.url
        call_command(
            "eval_policy", "--model", policy, "--test-limit", "2", "--json",
            "--set", "rollout.max_steps=2", "--set", "rollout.decoding=valid_actions",
            "--variant", "spans=rollout.arguments=spans,rollout.answer_questions=false",
            "--variant", "phrases=rollout.arguments=phrases,rollout.answer_questions=true",
        )  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert list(out["rows"]) == ["spans", "phrases"]
    runs = {name: Run.objects.get(pk=row["run_id"]) for name, row in out["rows"].items()}
    assert runs["phrases"].config["rollout"]["arguments"] == "phrases"
    assert runs["spans"].config["rollout"]["arguments"] == "spans"
    assert runs["spans"].config["rollout"]["answer_questions"] is False
    tasks = [
        set(Trajectory.objects.filter(run=run, purpose="eval").values_list("task_id", flat=True))
        for run in runs.values()
    ]
    assert len(tasks[0]) == 2 and tasks[0] == tasks[1]
    assert all(row["n"] == 2 for row in out["rows"].values())
    (comparison,) = out["comparisons"]
    assert (comparison["a"], comparison["b"], comparison["n"]) == ("phrases", "spans", 2)


def test_a_directory_that_is_no_checkpoint_and_a_bad_variant_are_refused(tmp_path):
    with pytest.raises(CommandError, match="not a checkpoint"):
        call_command("eval_policy", "--model", str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CommandError, match="NAME=SECTION.FIELD=VALUE"):
        call_command("eval_policy", "--model", str(tmp_path), "--variant", "phrases")
    with pytest.raises(CommandError, match="rollout.arguments"):
        call_command(
            "eval_policy", "--model", str(tmp_path), "--variant", "x=rollout.arguments=words"
        )
