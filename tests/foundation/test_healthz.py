"""/healthz: 200 with the database, Redis and a worker on every queue; 503 otherwise."""

from django.test import override_settings

from tests.conftest import start_worker, stop_worker, wait_for_queues


def test_healthz_is_up_when_every_queue_has_a_worker(client, db, celery_worker_all_queues):
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["database"]["ok"] and body["redis"]["ok"]
    assert set(body["queues"]) >= {"default", "rollout", "gpu"}
    assert all(q["ok"] for q in body["queues"].values())


def test_healthz_is_down_when_redis_is_unreachable(client, db):
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["redis"]["ok"] is False


def test_healthz_is_down_when_a_queue_has_no_worker(client, db):
    # Only the gpu queue is served by this worker's name space; rollout has none if the
    # session worker is not running, so use a dedicated queue set check instead.
    worker = start_worker("gpu", "test-gpu-only")
    try:
        wait_for_queues(["gpu"])
        with override_settings(
            CELERY_QUEUES_EXPECTED=["default", "rollout", "gpu", "nobody-serves-this"]
        ):
            response = client.get("/healthz")
        assert response.status_code == 503
        assert response.json()["queues"]["nobody-serves-this"]["ok"] is False
        assert response.json()["queues"]["gpu"]["ok"] is True
    finally:
        stop_worker(worker)
