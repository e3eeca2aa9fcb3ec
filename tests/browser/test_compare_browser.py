"""The compare page in real Chromium: pick two runs on the run list, compare them, read the charts,
the config differences and which run solved each test task."""

from __future__ import annotations

import pytest

from apps.rollouts.models import Trajectory
from apps.runs.models import Phase
from tests.browser.conftest import cast_with_passwords, log_in, shoot
from tests.web.factories import make_run, make_task, make_trajectory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _two_runs(owner):
    a = make_run(owner, name="small-lr")
    b = make_run(owner, name="large-lr")
    b.config["actor"]["lr"] = 1e-4
    b.save()
    tasks = [make_task(f"Find the price of item {i}", split="test") for i in range(2)]
    for run, rates in ((a, (0.2, 0.5)), (b, (0.2, 0.25))):
        for index, rate in enumerate(rates):
            phase = Phase.objects.create(run=run, index=index, status="done", metrics={
                "eval/success_rate": rate, "eval/success_rate/shopping": rate,
                "orm/accuracy": 0.6 + rate / 2})  # fmt: skip
            for n, task in enumerate(tasks):
                solved = n == 0 or (run is a and index == 1)
                make_trajectory(run, task, phase=phase, purpose=Trajectory.Purpose.EVAL,
                                score=1.0 if solved else 0.0, p_yes=None)  # fmt: skip
    return a, b, tasks


def test_a_user_compares_two_runs_from_the_run_list(live_daphne, page):
    owner, _, _ = cast_with_passwords()
    a, b, tasks = _two_runs(owner)
    make_run(owner, name="not-compared")
    log_in(page, live_daphne, "outsider", "pw-outsider-123")
    page.goto(live_daphne + "/runs/")
    page.check(f"#run-{a.pk} input[type=checkbox]")
    page.check(f"#run-{b.pk} input[type=checkbox]")
    page.click("#compare-runs")
    page.wait_for_url("**/runs/compare/**")
    success = page.locator("#chart-compare-success")
    assert success.locator("polyline").count() == 4  # two runs x (overall, shopping)
    assert page.locator("#chart-compare-orm polyline").count() == 2
    assert f"small-lr #{a.pk} · overall (50)" in success.text_content()
    assert page.locator("#config-diff tbody tr").count() == 1
    assert page.locator("#diff-actorlr td").all_inner_texts()[1:] == ["1e-05", "0.0001"]
    row = page.locator(f"#task-{tasks[1].pk} td").all_inner_texts()
    assert row[1:] == ["✓ solved", "✗"]
    shoot(page, "11-compare-runs")
    page.check("input[name=differ]")
    page.click("#compare-picker button[type=submit]")
    page.wait_for_url("**differ=1**")
    assert page.locator("#solved-tasks tbody tr").count() == 1
