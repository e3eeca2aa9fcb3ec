"""What /healthz reports: the database, Redis, and the Celery workers consuming each queue."""

from __future__ import annotations

import copy
import threading
import time

from django.conf import settings
from django.db import connection


def database_state() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True}
    except Exception as exc:  # any driver error means "down"; the message says why
        return {"ok": False, "error": str(exc).strip().splitlines()[-1] if str(exc) else repr(exc)}


def redis_state() -> dict:
    import redis

    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1
        )
        client.ping()
        return {"ok": True}
    except (redis.RedisError, OSError) as exc:
        return {"ok": False, "error": str(exc)}


def queue_states(timeout: float = 1.0) -> dict:
    """Per expected queue: the workers consuming it (from a broadcast `active_queues`)."""
    from webrl_site.celery import app

    queues = {name: {"ok": False, "workers": []} for name in settings.CELERY_QUEUES_EXPECTED}
    try:
        replies = app.control.inspect(timeout=timeout).active_queues() or {}
    except Exception as exc:  # broker down: every queue is down, with the reason
        for state in queues.values():
            state["error"] = str(exc)
        return queues
    for worker, consumed in replies.items():
        for queue in consumed:
            state = queues.setdefault(queue["name"], {"ok": False, "workers": []})
            state["workers"].append(worker)
            state["ok"] = True
    return queues


_cached: dict = {"at": -1e9, "key": None, "queues": None}
_lock = threading.Lock()


def cached_queue_states() -> dict:
    """`queue_states`, asked of the workers at most once every HEALTH_QUEUES_CACHE_S seconds per
    process: a broadcast costs every worker a reply, and /healthz is polled by load balancers."""
    key = (settings.REDIS_URL, tuple(settings.CELERY_QUEUES_EXPECTED))
    with _lock:
        fresh = time.monotonic() - _cached["at"] < settings.HEALTH_QUEUES_CACHE_S
        if fresh and _cached["key"] == key:
            return copy.deepcopy(_cached["queues"])
        queues = queue_states()
        _cached.update(at=time.monotonic(), key=key, queues=queues)
        return copy.deepcopy(queues)


def health() -> tuple[bool, dict]:
    db = database_state()
    rd = redis_state()
    queues = (
        cached_queue_states()
        if rd["ok"]
        else {
            name: {"ok": False, "workers": [], "error": "redis down"}
            for name in settings.CELERY_QUEUES_EXPECTED
        }
    )
    ok = db["ok"] and rd["ok"] and all(q["ok"] for q in queues.values())
    return ok, {"status": "ok" if ok else "degraded", "database": db, "redis": rd, "queues": queues}
