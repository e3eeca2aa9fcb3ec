"""A task makes a round trip through the real Redis broker and a worker the test starts."""

import time

import redis
from django.conf import settings

from tests.conftest import start_worker, stop_worker, wait_for_queues
from webrl_site.celery import app, ping


def test_a_task_round_trips_through_a_real_worker(celery_worker_all_queues):
    result = ping.delay(41)
    reply = result.get(timeout=30)
    assert reply["pong"] == 41
    assert reply["pid"] == celery_worker_all_queues.pid


def test_the_app_accepts_json_only():
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]
    assert {q.name for q in app.conf.task_queues} == {"default", "rollout", "gpu"}


def test_a_message_is_acknowledged_when_its_task_starts():
    """Early acknowledgement (docs/RELIABILITY.md), under the prefork pool that deployments run:
    while a task runs, the broker holds no unacknowledged copy that a visibility timeout could
    deliver to a second worker. (The solo pool some tests use acknowledges only when a task ends.)"""
    assert app.conf.task_acks_late is False
    queue = "ack-test"  # its own queue: no other test's worker takes the message
    proc = start_worker(queue, "test-ack", pool="prefork")
    try:
        wait_for_queues([queue])
        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        broker.delete("unacked", "unacked_index")
        result = ping.apply_async((7,), {"hold_s": 5}, queue=queue)
        deadline = time.time() + 30
        while broker.llen(queue) and time.time() < deadline:  # until the worker takes it
            time.sleep(0.05)
        time.sleep(1.0)  # running now: it holds the worker 5 s
        held = []
        for _ in range(10):
            held.append(broker.hlen("unacked"))
            time.sleep(0.2)
        assert not result.ready(), "the task ended before the broker was looked at"
        assert result.get(timeout=30)["pong"] == 7
        assert max(held) == 0, "a running task's message is still unacknowledged in the broker"
    finally:
        stop_worker(proc)
