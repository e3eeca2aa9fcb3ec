"""Every state change of a run goes through these functions."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from apps.dashboard.permissions import is_operator
from apps.runs.configs import flatten
from apps.runs.models import Run
from apps.runs.trackers import check_trackers
from trainer.config import ConfigError, RunConfig


def validate_config(config: dict) -> dict:
    """The config as `RunConfig.to_dict()` gives it, or ConfigError: the trainer's own checks, then
    that every tracker in `run.report_to` is installed here (a missing extra fails at launch)."""
    checked = RunConfig.from_dict(config)
    check_trackers(checked.run.report_to)
    out = checked.to_dict()
    for key, value in flatten(out).items():
        if isinstance(value, str) and "\x00" in value:  # Postgres JSON cannot store it
            raise ConfigError(f"{key}: text may not contain NUL (\\x00) characters")
    return out


def launch_run(owner, name: str, config: dict) -> Run:
    """Store a queued run; the orchestrator picks it up after the transaction commits.
    Raises ConfigError (naming the field) for a config the trainer would reject."""
    if not is_operator(owner):
        raise PermissionDenied("Only operators can launch runs.")
    config = validate_config(config)
    with transaction.atomic():
        run = Run.objects.create(owner=owner, name=name, config=config, status=Run.Status.QUEUED)
        transaction.on_commit(lambda: _enqueue(run.pk))
    return run


def _enqueue(run_id: int) -> None:
    from apps.runs import tasks

    if hasattr(tasks, "start_run"):
        tasks.start_run.delay(run_id)


def cancel_run(run: Run, user) -> bool:
    """Ask a run to stop at its next step boundary; returns False if it had already finished."""
    if not is_operator(user):
        raise PermissionDenied("Only operators can cancel runs.")
    now = timezone.now()
    queued = Run.objects.filter(pk=run.pk, status=Run.Status.QUEUED).update(
        status=Run.Status.CANCELLED, finished_at=now
    )
    if queued:
        return True
    running = Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
        status=Run.Status.CANCELLING
    )
    return bool(running)
