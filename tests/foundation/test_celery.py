"""A task makes a round trip through the real Redis broker and a worker the test starts."""

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
