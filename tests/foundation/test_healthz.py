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


def test_healthz_asks_the_workers_at_most_once_in_a_few_seconds(client, db, settings, monkeypatch):
    import time

    from apps.dashboard import health

    settings.HEALTH_QUEUES_CACHE_S = 1
    settings.CELERY_QUEUES_EXPECTED = ["default", "rollout", "gpu", "healthz-cache-test"]
    broadcasts = []
    real = health.queue_states

    def counted(*args, **kwargs):
        broadcasts.append(time.monotonic())
        return real(*args, **kwargs)

    monkeypatch.setattr(health, "queue_states", counted)
    first = client.get("/healthz").json()["queues"]
    for _ in range(5):
        assert client.get("/healthz").json()["queues"] == first
    assert len(broadcasts) == 1
    time.sleep(1.1)
    client.get("/healthz")
    assert len(broadcasts) == 2
