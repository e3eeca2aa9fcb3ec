"""`make run` end to end: it brings up the dashboard, the workers, beat, the world and TensorBoard,
launches the demo run, and TensorBoard (`--logdir` TENSORBOARD_ROOT, var/tensorboard by default)
shows that run's training curve, screenshotted in real Chromium.

The demo run is resized through WEBRL_DEMO_SET (a handful of demonstrations and pretraining steps)
so that its first curve comes within a minute or two; everything else is `make run` as a user runs
it, on the test database, the test's Redis database, free ports and a temporary var/ directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from django.db import connection
from playwright.sync_api import expect

from apps.runs.models import Run
from sandbox.server import free_port_block
from tests.browser.conftest import _free_port, shoot
from tests.conftest import ROOT

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(1200),
]

DEMO_SET = "run.phases=0 sft.demo_tasks=3 sft.demos_per_template=0 model.pretrain_steps=40"
TAG = "pretrain/loss"
POINTS = 5  # a curve, not a dot


def _database_url() -> str:
    db = connection.settings_dict
    auth = quote(db["USER"] or "postgres") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def make_run_stack(tmp_path, settings):
    """`make run` as a subprocess; yields (dashboard URL, TensorBoard URL, its log path)."""
    from tests.faults.conftest import clear_broker

    broker = os.environ.get("REDIS_URL", settings.REDIS_URL)
    clear_broker(broker)
    web, board = _free_port(), _free_port()
    venv = Path(sys.executable).parent.parent
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": broker,
        "WEBRL_PORT": str(web),
        "WEBRL_TENSORBOARD_PORT": str(board),
        "WORLD_URL": f"http://127.0.0.1:{free_port_block()}",
        "TENSORBOARD_ROOT": str(tmp_path / "tensorboard"),
        "CHECKPOINT_ROOT": str(tmp_path / "checkpoints"),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "WEBRL_VAR_DIR": str(tmp_path / "var"),
        "WEBRL_DEMO_SET": DEMO_SET,
    }
    log = tmp_path / "make-run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "run", f"VENV={venv}", f"PY={sys.executable}"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{web}", f"http://127.0.0.1:{board}", log, proc
    finally:
        _stop(proc)
        _assert_no_worker_left()


def _stop(proc: subprocess.Popen) -> None:
    """Ctrl-C, as a user stops it: devserver stops every service it started."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _assert_no_worker_left() -> None:
    """A worker left behind would take later tests' tasks."""
    from apps.dashboard.health import queue_states

    deadline = time.time() + 20
    while True:
        left = {q: s["workers"] for q, s in queue_states(timeout=1.0).items() if s["workers"]}
        if not left:
            return
        if time.time() > deadline:
            raise AssertionError(f"`make run` left workers running after Ctrl-C: {left}")
        time.sleep(1)


def _points(board: str, run: str) -> list:
    """[wall time, step, value] of each point TensorBoard holds for the run's TAG."""
    reply = httpx.get(board + "/data/plugin/scalars/scalars", params={"run": run, "tag": TAG},
                      timeout=5)  # fmt: skip
    return reply.json() if reply.status_code == 200 else []


def _wait_for_curve(board: str, proc: subprocess.Popen, log: Path, timeout: float) -> str:
    """The TensorBoard run (run-<id>/phase-0) that holds POINTS steps of the demo run's training loss."""
    deadline = time.time() + timeout
    seen: dict = {}
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"`make run` exited ({proc.returncode}):\n{log.read_text()[-4000:]}"
            )
        try:
            seen = httpx.get(board + "/data/plugin/scalars/tags", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            seen = {}
        for run, tags in seen.items():
            if TAG in tags and len(_points(board, run)) >= POINTS:
                return run
        time.sleep(2)
    raise AssertionError(
        f"TensorBoard never held {POINTS} points of {TAG} within {timeout:.0f} s (it listed {seen}):\n"
        f"{log.read_text()[-4000:]}"
    )


def test_a_run_started_by_make_run_shows_its_training_curve_in_tensorboard(make_run_stack, page):
    dashboard, board, log, proc = make_run_stack
    tb_run = _wait_for_curve(board, proc, log, timeout=900)

    (demo,) = Run.objects.all()
    assert demo.name == "demo-cpu" and demo.config["model"]["pretrain_steps"] == 40
    assert tb_run == f"run-{demo.pk}/phase-0"
    steps = [step for _, step, _ in _points(board, tb_run)]
    assert steps == sorted(steps) and len(set(steps)) >= POINTS
    assert httpx.get(dashboard + "/healthz", timeout=10).status_code == 200

    page.goto(board + "/#timeseries")
    card = page.locator("scalar-card", has=page.locator(f"[title='{TAG}']"))
    card.wait_for(timeout=60_000)
    table = card.locator("scalar-card-data-table, tb-data-table").first
    table.wait_for(timeout=30_000)
    expect(table).to_contain_text(tb_run, timeout=30_000)
    assert card.locator("line-chart").count() == 1
    shoot(page, "11-make-run-tensorboard")
    text = log.read_text()
    assert "webrl is up" in text and f"demo run {demo.pk} launched" in text
