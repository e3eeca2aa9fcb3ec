"""Sends a pending stage to its Celery queue, by task name, so no tasks module imports another."""

from __future__ import annotations

from celery import current_app

from apps.runs.models import StageRun
from trainer.phase import BROWSER_STAGES

START_BROWSER_STAGE = "apps.rollouts.tasks.start_browser_stage"
RUN_GPU_STAGE = "apps.runs.tasks.run_gpu_stage"


def dispatch(stage: StageRun) -> None:
    """Browser stages go to `rollout`, the others to `gpu` (the routes in webrl_site/celery.py)."""
    name = START_BROWSER_STAGE if stage.name in BROWSER_STAGES else RUN_GPU_STAGE
    current_app.send_task(name, args=[stage.pk])
