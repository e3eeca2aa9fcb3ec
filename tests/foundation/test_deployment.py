"""Safe deployment: DEBUG off by default, static files served with DEBUG off, the world reachable
by every browser-driving worker in compose and by no one else, the default queue its own worker."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest
import yaml

from sandbox.server import WorldThread, free_port_block
from tests.conftest import ROOT

BROWSER_WORKERS = ("worker-rollout", "worker-gpu")


def _env(**overrides) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY")}
    env["DJANGO_SETTINGS_MODULE"] = "webrl_site.settings"  # the deployed settings, not the tests'
    env.update(overrides)
    return env


def test_debug_is_off_unless_turned_on():
    code = "from django.conf import settings; print('DEBUG', settings.DEBUG)"
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, capture_output=True,
        text=True, timeout=60, env=_env(SECRET_KEY="s" * 60),
    )  # fmt: skip
    assert "DEBUG False" in out.stdout, out.stdout + out.stderr
    bare = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True,
        timeout=60, env=_env(),
    )  # fmt: skip
    assert (
        bare.returncode != 0 and "SECRET_KEY" in bare.stderr
    )  # no fixed key behind the user's back


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_static_files_are_served_with_debug_off(tmp_path):
    port = free_port_block(1)
    env = _env(DEBUG="0", SECRET_KEY="s" * 60, ALLOWED_HOSTS="127.0.0.1", SECURE_SSL_REDIRECT="0",
               STATIC_ROOT=str(tmp_path / "static"))  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
         "webrl_site.asgi:application"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        status, page = 0, b""
        while time.time() < deadline:
            try:
                status, page = _get(base + "/login/")
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        assert status == 200, page[:500]
        assets = re.findall(rb'(?:src|href)="(/static/[^"]+)"', page)
        assert any(a.endswith(b".css") for a in assets) and any(b"htmx" in a for a in assets)
        for asset in assets:
            code, body = _get(base + asset.decode())
            assert code == 200 and body, asset
        missing, body = _get(base + "/no-such-page/")
        assert missing == 404 and b"DATABASE_URL" not in body and b"Traceback" not in body
    finally:
        proc.terminate()
        proc.wait(15)


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_browser_driving_worker_reaches_the_world_and_nothing_exposes_it():
    data = _compose()
    services = data["services"]
    world = services["world"]
    assert "ports" not in world and world["networks"] == ["world"]
    assert data["networks"]["world"] == {"internal": True}
    assert not any("network_mode" in s for s in services.values())
    public = re.search(r"--public-host (\S+)", world["command"]).group(1)
    assert public == "world" and "--host 0.0.0.0" in world["command"]
    for name in BROWSER_WORKERS:
        service = services[name]
        assert "world" in service["networks"] and "default" in service["networks"], name
        assert urlsplit(service["environment"]["WORLD_URL"]).hostname == public, name
    assert "world" not in services["web"]["networks"]


def test_the_default_queue_has_a_worker_of_its_own():
    services = _compose()["services"]
    queues = {
        name: re.search(r"-Q (\S+)", s["command"]).group(1).split(",")
        for name, s in services.items()
        if "worker" in s.get("command", "")
    }
    assert queues["worker-default"] == ["default"]
    assert all("default" not in q for name, q in queues.items() if name != "worker-default")


@pytest.mark.browser
def test_a_world_listening_on_one_address_hands_agents_its_public_host_name():
    """What compose does with `--host 0.0.0.0 --public-host world`, here with 127.0.0.1 and
    localhost: the agent gets URLs and cookies for the public name and solves a task through it."""
    from sandbox.cli import run_oracle
    from sandbox.client import WorldClient
    from sandbox.tasks import load_tasks

    with WorldThread(1, free_port_block(), host="127.0.0.1", public_host="localhost") as world:
        with WorldClient(world.url) as client:
            urls = client.site_urls(0)
            assert all(urlsplit(u).hostname == "localhost" for u in urls.values())
            assert {c["domain"] for c in client.storage_state(0)["cookies"]} == {"localhost"}
            task = next(t for t in load_tasks("test") if t["sites"] == ["reddit"])
            (result,) = asyncio.run(run_oracle([task], client, 1))
    assert result["solved"], result
