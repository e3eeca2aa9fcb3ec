"""The Celery app: Redis broker, JSON only, queues `default`, `rollout` and `gpu`."""

from __future__ import annotations

import os
import time

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webrl_site.settings")

app = Celery("webrl")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue("default"), Queue("rollout"), Queue("gpu")]
app.conf.task_routes = {
    "apps.rollouts.tasks.*": {"queue": "rollout"},
    "apps.runs.tasks.run_gpu_stage": {"queue": "gpu"},
}
app.autodiscover_tasks()


@app.task(name="webrl.ping")
def ping(value: int, hold_s: float = 0.0) -> dict:
    """A round trip for health checks and tests; `hold_s` keeps the worker busy that long first
    (at most 30 s), so that a test can look at the broker while a task runs."""
    if hold_s > 0:
        time.sleep(min(float(hold_s), 30.0))
    return {"pong": value, "pid": os.getpid()}
