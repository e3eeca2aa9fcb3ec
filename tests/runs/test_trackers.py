"""Metric points reach the run's experiment trackers: TensorBoard event files read back with
TensorBoard's own reader, the config as hparams, and a clear error at launch for a missing extra."""

from __future__ import annotations

import importlib.util

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from apps.runs import trackers
from apps.runs.models import Phase, Run
from apps.runs.reporter import DjangoReporter
from apps.runs.services import launch_run
from tests.runs.helpers import make_run, tiny_config
from trainer.config import ConfigError

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def closed_sinks():
    yield
    trackers.close_all()


def _scalars(logdir) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(logdir))
    acc.Reload()
    return {
        tag: [(e.step, round(e.value, 6)) for e in acc.Scalars(tag)]
        for tag in acc.Tags()["scalars"]
    }


def _hparams(logdir) -> dict:
    acc = EventAccumulator(str(logdir))
    acc.Reload()
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {
        k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind"))
        for k, v in info.hparams.items()
    }


def _reporter(owner, extra=None):
    run = make_run(owner, tiny_config(extra=extra))
    phase = Phase.objects.create(run=run, index=1)
    return run, DjangoReporter(run.pk, phase.pk, "actor", frame_interval_s=60)


def test_phase_metrics_and_training_steps_land_in_the_runs_event_files(owner):
    run, reporter = _reporter(owner)
    reporter.on_metrics({"eval/success_rate": 0.25, "eval/success_rate/shopping": 0.5}, step=1)
    on_step = reporter.on_train_step("actor")
    on_step({"step": 1, "total_steps": 2, "loss": 2.0})
    on_step({"step": 2, "total_steps": 2, "loss": 1.5})
    trackers.close_all()
    logdir = trackers.run_logdir(run.pk)
    assert _scalars(logdir) == {
        "eval/success_rate": [(1, 0.25)],
        "eval/success_rate/shopping": [(1, 0.5)],
    }
    assert _scalars(logdir / "phase-1") == {"actor/loss": [(1, 2.0), (2, 1.5)]}


def test_the_runs_config_is_written_once_as_hparams(owner):
    run, reporter = _reporter(owner, ["actor.lr=0.0003"])
    reporter.on_metrics({"orm/accuracy": 0.8}, step=1)
    trackers.close_all()
    reporter.on_metrics({"orm/accuracy": 0.9}, step=2)  # a second process opening the run again
    trackers.close_all()
    hparams = _hparams(trackers.run_logdir(run.pk))
    assert hparams["actor.lr"] == pytest.approx(3e-4)
    assert hparams["preset"] == "demo-cpu"
    assert hparams["run.report_to"] == '["tensorboard"]'
    acc = EventAccumulator(str(trackers.run_logdir(run.pk)))
    acc.Reload()
    assert list(acc.PluginTagToContent("hparams")) == [
        "_hparams_/experiment",
        "_hparams_/session_start_info",
        "_hparams_/session_end_info",
    ]
    assert _scalars(trackers.run_logdir(run.pk))["orm/accuracy"] == [(1, 0.8), (2, 0.9)]


def test_a_run_that_reports_to_no_tracker_writes_no_event_files(owner):
    run, reporter = _reporter(owner, ["run.report_to=[]"])
    reporter.on_metrics({"eval/success_rate": 0.25}, step=1)
    assert not trackers.run_logdir(run.pk).exists()


def test_hparams_flatten_nested_sections_and_lists():
    flat = trackers.flat_hparams({"a": {"b": 1, "c": [0.1, 0.2]}, "d": True})
    assert flat == {"a.b": 1, "a.c": "[0.1, 0.2]", "d": True}


@pytest.mark.parametrize("extra", ["wandb", "mlflow"])
def test_a_missing_extra_is_refused_at_launch_naming_the_field(owner, extra):
    if importlib.util.find_spec(extra) is not None:
        pytest.skip(f"{extra} is installed here")
    config = tiny_config(extra=[f"run.report_to=tensorboard,{extra}"])
    with pytest.raises(ConfigError) as caught:
        launch_run(owner, "with-" + extra, config)
    message = str(caught.value)
    assert message.startswith(f"run.report_to: '{extra}' needs the '{extra}' package")
    assert f'pip install -e ".[{extra}]"' in message
    assert not Run.objects.exists()


def test_the_launch_form_puts_the_missing_extra_next_to_report_to(owner):
    from apps.runs.forms import LaunchForm

    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    form = LaunchForm(preset="demo-cpu")
    data = {"name": "x", **{k: form[k].value() for k in form.config_keys}}
    data["run.report_to"] = "tensorboard, wandb"
    data = {k: ("on" if v is True else v) for k, v in data.items() if v is not False}
    form = LaunchForm(data, preset="demo-cpu")
    assert not form.is_valid()
    assert "needs the 'wandb' package" in " ".join(form.errors["run.report_to"])


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="the wandb extra is absent")
def test_wandb_offline_receives_the_same_points(owner, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    run, reporter = _reporter(owner, ['run.report_to=["wandb"]'])
    reporter.on_metrics({"eval/success_rate": 0.25}, step=1)
    reporter.on_train_step("actor")({"step": 3, "loss": 2.0})
    (sink,) = [s for _, s in trackers._sinks(run.pk)]
    summary = dict(sink.run.summary)
    assert summary["eval/success_rate"] == 0.25 and summary["phase-1/actor/loss"] == 2.0
    assert summary["phase-1/actor/step"] == 3 and summary["phase"] == 1


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="the mlflow extra is absent")
def test_mlflow_in_a_local_directory_receives_the_same_points_and_the_config(
    owner, tmp_path, monkeypatch
):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a server needs no such switch
    run, reporter = _reporter(owner, ['run.report_to=["mlflow"]', "actor.lr=0.0003"])
    reporter.on_metrics({"eval/success_rate": 0.25}, step=1)
    reporter.on_train_step("actor")({"step": 3, "loss": 2.0})
    trackers.close_all()
    reporter.on_metrics({"eval/success_rate": 0.5}, step=2)  # another process finds the same run
    client = MlflowClient()
    (found,) = client.search_runs(
        [client.get_experiment_by_name("webrl").experiment_id],
        filter_string=f"tags.`webrl.run_id` = '{run.pk}'",
    )
    history = client.get_metric_history(found.info.run_id, "eval/success_rate")
    assert [(m.step, m.value) for m in history] == [(1, 0.25), (2, 0.5)]
    loss = client.get_metric_history(found.info.run_id, "phase-1/actor/loss")
    assert [(m.step, m.value) for m in loss] == [(3, 2.0)]
    assert found.data.params["actor.lr"] == "0.0003"
