"""`run.report_to`: TensorBoard by default, known tracker names only, overridable from the CLI."""

import pytest

from trainer.config import ConfigError, RunConfig, preset


def test_every_preset_reports_to_tensorboard_by_default():
    for name in ("demo-cpu", "paper-llama8b"):
        assert preset(name).run.report_to == ["tensorboard"]
    assert RunConfig.from_dict({"run": {"phases": 2}}).run.report_to == ["tensorboard"]


def test_it_round_trips_a_list_of_trackers():
    config = RunConfig.from_dict({"run": {"report_to": ["tensorboard", "mlflow"]}})
    assert config.to_dict()["run"]["report_to"] == ["tensorboard", "mlflow"]
    assert RunConfig.from_dict(config.to_dict()) == config


def test_it_names_an_unknown_tracker_and_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"run.report_to: unknown tracker 'tensorbord' \(did you mean 'tensorboard'\?\); choose from tensorboard, wandb, mlflow"):  # fmt: skip
        RunConfig.from_dict({"run": {"report_to": ["tensorbord"]}})


def test_it_rejects_a_plain_string_a_non_string_entry_and_a_repeat():
    with pytest.raises(
        ConfigError, match=r"run.report_to: expected a list of strings, got 'wandb'"
    ):
        RunConfig.from_dict({"run": {"report_to": "wandb"}})
    with pytest.raises(ConfigError, match=r"run.report_to\[0\]: expected a string, got 3"):
        RunConfig.from_dict({"run": {"report_to": [3]}})
    with pytest.raises(ConfigError, match="names a tracker twice"):
        RunConfig.from_dict({"run": {"report_to": ["wandb", "wandb"]}})


def test_overrides_take_json_or_comma_separated_names():
    base = preset("demo-cpu")
    assert base.with_overrides(["run.report_to=[]"]).run.report_to == []
    assert base.with_overrides(['run.report_to=["wandb"]']).run.report_to == ["wandb"]
    assert base.with_overrides(["run.report_to=tensorboard, mlflow"]).run.report_to == [
        "tensorboard",
        "mlflow",
    ]
