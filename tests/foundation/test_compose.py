"""docker-compose.yml describes every service with the right commands (no engine runs here)."""

import yaml

from tests.conftest import ROOT


def load():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_declares_every_service():
    services = load()["services"]
    assert set(services) >= {"web", "worker-rollout", "worker-gpu", "world", "postgres", "redis"}


def test_the_web_service_runs_daphne_and_is_health_checked():
    web = load()["services"]["web"]
    assert "daphne" in web["command"] and "webrl_site.asgi:application" in web["command"]
    assert "/healthz" in " ".join(web["healthcheck"]["test"])


def test_the_gpu_worker_reserves_a_gpu_and_runs_one_task_at_a_time():
    gpu = load()["services"]["worker-gpu"]
    assert "-Q gpu --concurrency 1" in gpu["command"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]


def test_the_rollout_worker_consumes_the_rollout_queue():
    assert "-Q rollout" in load()["services"]["worker-rollout"]["command"]


def test_the_world_serves_the_built_in_sites():
    command = load()["services"]["world"]["command"]
    assert "sandbox.cli serve" in command or "world serve" in command


def test_databases_have_healthchecks_and_volumes():
    data = load()
    assert "pg_isready" in " ".join(data["services"]["postgres"]["healthcheck"]["test"])
    assert "pgdata" in data["volumes"]


def test_tensorboard_reads_the_event_files_every_app_service_writes():
    data = load()
    assert "--logdir /data/tensorboard" in data["services"]["tensorboard"]["command"]
    for name in ("web", "worker-rollout", "worker-gpu"):
        service = data["services"][name]
        assert service["environment"]["TENSORBOARD_ROOT"] == "/data/tensorboard"
        assert "tensorboard:/data/tensorboard" in service["volumes"]
