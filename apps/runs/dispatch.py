"""Sends a pending stage to its Celery queue, by task name, so no tasks module imports another;
and reads the broker to tell a stage whose message waits in a queue from one whose message was lost."""

from __future__ import annotations

import base64
import json
import logging

from celery import current_app
from django.conf import settings

from apps.runs.models import StageRun
from trainer.phase import BROWSER_STAGES

log = logging.getLogger(__name__)

START_BROWSER_STAGE = "apps.rollouts.tasks.start_browser_stage"
RUN_GPU_STAGE = "apps.runs.tasks.run_gpu_stage"
QUEUES = ("default", "rollout", "gpu")
PRIORITY_SEP = "\x06\x16"  # kombu's Redis transport: queue name + sep + priority


def stage_task(stage: StageRun) -> str:
    return START_BROWSER_STAGE if stage.name in BROWSER_STAGES else RUN_GPU_STAGE


def dispatch(stage: StageRun) -> None:
    """Browser stages go to `rollout`, the others to `gpu` (the routes in webrl_site/celery.py)."""
    current_app.send_task(stage_task(stage), args=[stage.pk])


def _decode(raw: bytes) -> tuple[str, int] | None:
    try:
        message = json.loads(raw)
        if isinstance(message, list):  # the `unacked` hash holds [message, exchange, key]
            message = message[0]
        task = message["headers"]["task"]
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return task, int(args[0])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def messages_in_flight() -> set[tuple[str, int]]:
    """(task name, first argument) of every message waiting in a queue or reserved by a worker
    but not yet started. Raises redis.RedisError when the broker cannot be read."""
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=5)
    try:
        found: set[tuple[str, int]] = set()
        for queue in QUEUES:
            for key in [queue] + [f"{queue}{PRIORITY_SEP}{p}" for p in range(1, 10)]:
                for raw in client.lrange(key, 0, -1):
                    item = _decode(raw)
                    if item:
                        found.add(item)
        for raw in client.hvals("unacked"):
            item = _decode(raw)
            if item:
                found.add(item)
        return found
    finally:
        client.close()
