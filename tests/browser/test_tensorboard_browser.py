"""A run's metric points, reported the way a run reports them, shown by `tensorboard --logdir` in real
Chromium: the scalar chart of the test success rate and the training loss, and the config as hparams."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from apps.runs import trackers
from apps.runs.models import Phase
from apps.runs.reporter import DjangoReporter
from tests.browser.conftest import _free_port, shoot
from tests.conftest import make_cast
from tests.runs.helpers import make_run, tiny_config

pytestmark = [pytest.mark.browser, pytest.mark.django_db]


@pytest.fixture
def tensorboard(tensorboard_root):
    port = _free_port()
    binary = Path(sys.executable).with_name("tensorboard")
    proc = subprocess.Popen(
        [str(binary), "--logdir", str(tensorboard_root), "--host", "127.0.0.1",
         "--port", str(port), "--reload_interval", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(base + "/data/logdir", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("tensorboard did not answer within 60 s")
            time.sleep(0.3)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)


def _report_a_run(owner) -> int:
    """Three phases of test success and one phase of actor loss, through the run's own reporter."""
    run = make_run(owner, tiny_config(phases=3), name="tensorboard-demo")
    for index, rate in enumerate((0.1, 0.25, 0.4)):
        phase = Phase.objects.create(run=run, index=index)
        reporter = DjangoReporter(run.pk, phase.pk, "eval", frame_interval_s=60)
        reporter.on_metrics({"eval/success_rate": rate}, step=index)
    on_step = DjangoReporter(run.pk, phase.pk, "actor").on_train_step("actor")
    for step in range(1, 11):
        on_step({"step": step, "total_steps": 10, "loss": 2.0 / step})
    trackers.close_all()
    return run.pk


def _wait_for_tags(base: str, run: str, tags: set[str]) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        seen = httpx.get(base + "/data/plugin/scalars/tags", timeout=5).json()
        if tags <= set(seen.get(run, {})):
            return
        time.sleep(0.5)
    raise AssertionError(f"tensorboard never listed {tags} for {run}: {seen}")


def test_tensorboard_shows_a_runs_curves_and_its_config(django_user_model, tensorboard, page):
    owner, _, _ = make_cast(django_user_model)
    run_id = _report_a_run(owner)
    _wait_for_tags(tensorboard, f"run-{run_id}", {"eval/success_rate"})
    _wait_for_tags(tensorboard, f"run-{run_id}/phase-2", {"actor/loss"})
    page.goto(tensorboard + "/#timeseries")
    card = page.locator("scalar-card", has=page.locator("[title='eval/success_rate']"))
    card.wait_for(timeout=60_000)
    table = card.locator("scalar-card-data-table, tb-data-table").first
    table.wait_for(timeout=30_000)
    # The data table under the chart holds the run's last point: step 2, value 0.4.
    expect(table).to_contain_text(f"run-{run_id}", timeout=30_000)
    expect(table).to_contain_text("0.4")
    assert card.locator("line-chart").count() == 1
    loss = page.locator("scalar-card", has=page.locator("[title='actor/loss']"))
    loss.wait_for()
    shoot(page, "09-tensorboard-scalars")
    page.goto(tensorboard + "/#hparams")
    page.get_by_text("actor.lr").first.wait_for(timeout=60_000)
    shoot(page, "10-tensorboard-hparams")
