"""`experiment learning --eval-seed N`: the same policies evaluated on the test split of a world built
from another seed, served for the purpose, in real Chromium."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from apps.curriculum.models import Task
from apps.runs.experiment import eval_on_world
from apps.runs.learning_report import seed_suffix
from tests.runs.helpers import tiny_config
from tests.trainer.helpers import make_steps
from tests.trainer.helpers import tiny_config as trainer_tiny_config
from trainer.config import RunConfig
from trainer.learn.sft import train_sft

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser,
              pytest.mark.timeout(900)]  # fmt: skip


def test_every_policy_is_evaluated_on_the_other_worlds_test_tasks(owner, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CHECKPOINT_ROOT = tmp_path / "ckpt"
    settings.WORLD_URL = "http://127.0.0.1:9"  # nothing there: the rows must use their own world
    policy = train_sft(trainer_tiny_config(), make_steps(4), tmp_path / "sft")["model_dir"]
    config = RunConfig.from_dict(tiny_config())

    rows = eval_on_world(owner, config, 3, 2, {"SFT (BC)": policy, "Filtered BC": policy})

    assert set(rows) == {"SFT (BC)" + seed_suffix(3), "Filtered BC" + seed_suffix(3)}
    for trajectories in rows.values():
        assert trajectories.count() == 2
        assert set(trajectories.values_list("status", flat=True)) == {"ok"}
        assert {t.task.world_seed for t in trajectories} == {3}
        assert all(t.task.key.startswith("sandbox@3:test:") for t in trajectories)
    # the eval stage checks that the world it drives was built from the run's seed (3 here), and
    # the default world's tasks were never loaded
    assert not Task.objects.filter(world_seed=0).exists()


def test_an_eval_seed_equal_to_the_training_worlds_is_refused():
    with pytest.raises(CommandError, match="another world's seed"):
        call_command("experiment", "learning", "--eval-seed", "0", "--no-write")
