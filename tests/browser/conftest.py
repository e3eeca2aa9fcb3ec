"""A live daphne (HTTP + websockets) on the test database, and Chromium driven by Playwright.

Daphne runs as a subprocess on its own Redis database number, so its channel groups and Celery
messages never meet those of other test sessions on the same Redis.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "var" / "test-artifacts" / "browser"
REDIS_DB = 11
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_url() -> str:
    return f"redis://127.0.0.1:6379/{REDIS_DB}"


@pytest.fixture(scope="module")
def browser_media(tmp_path_factory) -> Path:
    """MEDIA_ROOT shared by daphne and the test process (screenshots written by tests, served by daphne)."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def live_daphne(django_db_setup, django_db_blocker, tmp_path_factory, browser_media):
    from django.db import connection

    db = connection.settings_dict
    from urllib.parse import quote

    auth = quote(db["USER"] or "postgres") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    url = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": redis_url(),
        "DEBUG": "1",
        "LOG_LEVEL": "WARNING",
        "MEDIA_ROOT": str(browser_media),
    }
    daphne = Path(sys.executable).with_name("daphne")
    log = tmp_path_factory.mktemp("daphne") / "daphne.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(daphne), "-b", "127.0.0.1", "-p", str(port), "webrl_site.asgi:application"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"daphne exited:\n{log.read_text()[-3000:]}")
            try:
                httpx.get(base + "/healthz", timeout=2)
                break
            except httpx.HTTPError:
                if time.time() > deadline:
                    raise RuntimeError("daphne did not answer within 60 s") from None
                time.sleep(0.3)
        yield base
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread while the browser lives; the
    # tests' ORM calls (and pytest-django's flush after each test) are still plain sync code.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
            )
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def shoot(page, name: str) -> Path:
    """Save the page's screenshot as a test artifact (var/test-artifacts/browser/<name>.png)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page, base: str, username: str, password: str) -> None:
    page.goto(base + "/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    if "/login/" in page.url:
        raise AssertionError(
            f"login as {username} failed: {page.locator('main').inner_text()[:300]}"
        )


def cast_with_passwords():
    """The shared cast with passwords daphne can check (`pw-<username>-123`; the test process
    itself hashes with MD5 only, which daphne's settings do not accept)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    from tests.conftest import make_cast

    cast = make_cast(get_user_model())
    for user in cast:
        user.password = PBKDF2PasswordHasher().encode(
            f"pw-{user.username}-123", "browsersalt", iterations=1000
        )
        user.save(update_fields=["password"])
    return cast
