"""Experiment trackers: every metric point of a run also goes to TensorBoard, W&B or MLflow.

`report` is the one fan-out, called by `DjangoReporter.on_metrics` for each batch of points;
`check_trackers` runs at launch so that a missing optional extra fails there, not mid-run.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path

from django.conf import settings

from trainer.config import ConfigError

log = logging.getLogger(__name__)

# tracker -> (module that must import, how to get it)
PACKAGES = {
    "tensorboard": ("tensorboard", 'pip install -e "."  (tensorboard is a core dependency)'),
    "wandb": ("wandb", 'pip install -e ".[wandb]"'),
    "mlflow": ("mlflow", 'pip install -e ".[mlflow]"'),
}
# Shown as the hparams table's metric columns in TensorBoard.
HPARAM_METRICS = ("eval/success_rate", "orm/accuracy")
MAX_OPEN = 8  # open tracker sinks per process; the least recently used is closed first
PHASE = "phase"  # a series whose step is the phase index (eval, ORM, rollout counts)
TRAIN = "train"  # a series whose step is an optimizer step within one phase's stage


def check_trackers(report_to: list[str]) -> None:
    """Raise ConfigError naming `run.report_to` when a tracker's package is not installed."""
    for name in report_to:
        module, how = PACKAGES[name]
        if importlib.util.find_spec(module) is None:
            raise ConfigError(
                f"run.report_to: {name!r} needs the {module!r} package, which is not installed; "
                f"install it with `{how}` or remove {name!r} from run.report_to"
            )


def run_logdir(run_id: int) -> Path:
    """Where a run's TensorBoard event files go: TENSORBOARD_ROOT/run-<id>/."""
    return Path(settings.TENSORBOARD_ROOT) / f"run-{run_id}"


def flat_hparams(config: dict, prefix: str = "") -> dict[str, bool | int | float | str]:
    """The config as `section.field -> scalar` (lists as JSON text), as TensorBoard's hparams want."""
    out: dict[str, bool | int | float | str] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flat_hparams(value, f"{prefix}{key}."))
        elif isinstance(value, bool | int | float | str):
            out[prefix + key] = value
        else:
            out[prefix + key] = json.dumps(value)
    return out


class TensorBoardSink:
    """Event files: phase-level series in run-<id>/, training steps in run-<id>/phase-<k>/."""

    def __init__(self, run_id: int, name: str, config: dict):
        self.root = run_logdir(run_id)
        self.writers: dict[str, object] = {}
        self.root.mkdir(parents=True, exist_ok=True)
        try:  # the config as hparams, once per run whichever process reports first
            fd = os.open(self.root / ".hparams", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.close(fd)
        from torch.utils.tensorboard.summary import hparams

        writer = self._writer("")
        for summary in hparams(flat_hparams(config), {m: 0.0 for m in HPARAM_METRICS}):
            writer.file_writer.add_summary(summary)
        writer.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```", 0)
        writer.flush()

    def _writer(self, sub: str):
        if sub not in self.writers:
            from torch.utils.tensorboard import SummaryWriter

            self.writers[sub] = SummaryWriter(log_dir=str(self.root / sub), flush_secs=30)
        return self.writers[sub]

    def log(self, metrics: dict[str, float], step: int, series: str, phase: int | None) -> None:
        sub = f"phase-{phase}" if series == TRAIN and phase is not None else ""
        writer = self._writer(sub)
        for name, value in metrics.items():
            writer.add_scalar(name, value, step)
        writer.flush()

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def _series_key(name: str, series: str, phase: int | None) -> str:
    """One key space per run for W&B and MLflow: a phase's training series get `phase-<k>/`."""
    return f"phase-{phase}/{name}" if series == TRAIN and phase is not None else name


class WandbSink:
    """A W&B run per webrl run (id `webrl-run-<id>`, resumed by every process that reports).

    W&B wants each run's steps to rise, so each series group carries its own step metric."""

    def __init__(self, run_id: int, name: str, config: dict):
        import wandb

        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "webrl"),
            id=f"webrl-run-{run_id}",
            name=name,
            config=config,
            resume="allow",
            reinit="create_new",
            dir=str(Path(settings.TENSORBOARD_ROOT).parent),
        )
        self.defined: set[str] = set()

    def log(self, metrics: dict[str, float], step: int, series: str, phase: int | None) -> None:
        groups: dict[str, dict[str, float]] = {}
        for name, value in metrics.items():
            key = _series_key(name, series, phase)
            group = "phase" if series == PHASE else key.rsplit("/", 1)[0] + "/step"
            groups.setdefault(group, {})[key] = value
        for step_key, values in groups.items():
            for key in values:
                if key not in self.defined:
                    self.run.define_metric(key, step_metric=step_key)
                    self.defined.add(key)
            self.run.log({step_key: step, **values})

    def close(self) -> None:
        self.run.finish()


class MlflowSink:
    """An MLflow run per webrl run, found again by its `webrl.run_id` tag (MLFLOW_TRACKING_URI)."""

    def __init__(self, run_id: int, name: str, config: dict):
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient()
        experiment_name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "webrl")
        experiment = self.client.get_experiment_by_name(experiment_name)
        experiment_id = (
            experiment.experiment_id
            if experiment
            else self.client.create_experiment(experiment_name)
        )
        found = self.client.search_runs(
            [experiment_id], filter_string=f"tags.`webrl.run_id` = '{run_id}'", max_results=1
        )
        if found:
            self.run_id = found[0].info.run_id
            return
        run = self.client.create_run(
            experiment_id, run_name=name, tags={"webrl.run_id": str(run_id)}
        )
        self.run_id = run.info.run_id
        from mlflow.entities import Param

        params = [Param(k, str(v)[:500]) for k, v in flat_hparams(config).items()]
        for i in range(0, len(params), 100):
            self.client.log_batch(self.run_id, params=params[i : i + 100])

    def log(self, metrics: dict[str, float], step: int, series: str, phase: int | None) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        rows = [Metric(_series_key(k, series, phase), v, now, step) for k, v in metrics.items()]
        self.client.log_batch(self.run_id, metrics=rows)

    def close(self) -> None:
        return None


SINKS = {"tensorboard": TensorBoardSink, "wandb": WandbSink, "mlflow": MlflowSink}
_open: OrderedDict[int, list] = OrderedDict()
_phase_index: dict[int, int] = {}
_broken: set[tuple[int, str]] = set()
_lock = threading.Lock()


def _sinks(run_id: int) -> list:
    from apps.runs.models import Run

    if run_id in _open:
        _open.move_to_end(run_id)
        return _open[run_id]
    row = Run.objects.filter(pk=run_id).values("name", "config").first()
    config = row["config"] if row else {}
    wanted = (config.get("run") or {}).get("report_to", ["tensorboard"]) if config else []
    sinks = []
    for name in wanted:
        if name not in SINKS or (run_id, name) in _broken:
            continue
        try:
            sinks.append((name, SINKS[name](run_id, row["name"], config)))
        except Exception as exc:  # a tracker must never stop training; say so once
            log.warning("run %s: %s tracker failed to start: %s", run_id, name, exc)
            _broken.add((run_id, name))
    _open[run_id] = sinks
    while len(_open) > MAX_OPEN:
        _, old = _open.popitem(last=False)
        for _, sink in old:
            sink.close()
    return sinks


def _phase(phase_id: int | None) -> int | None:
    from apps.runs.models import Phase

    if phase_id is None:
        return None
    if phase_id not in _phase_index:
        index = Phase.objects.filter(pk=phase_id).values_list("index", flat=True).first()
        if index is None:
            return None
        _phase_index[phase_id] = index
    return _phase_index[phase_id]


def report(
    run_id: int, phase_id: int | None, metrics: dict[str, float], step: int, series: str = PHASE
) -> None:
    """Send one batch of metric points to every tracker the run's `run.report_to` names."""
    if not metrics:
        return
    with _lock:
        phase = _phase(phase_id)
        for name, sink in _sinks(run_id):
            if (run_id, name) in _broken:
                continue
            try:
                sink.log(metrics, step, series, phase)
            except Exception as exc:
                log.warning(
                    "run %s: %s tracker failed, now off for this run: %s", run_id, name, exc
                )
                _broken.add((run_id, name))


def close_all() -> None:
    """Flush and close every open sink (tests; a worker's exit closes them too)."""
    with _lock:
        while _open:
            _, sinks = _open.popitem()
            for _, sink in sinks:
                sink.close()
        _phase_index.clear()
        _broken.clear()
