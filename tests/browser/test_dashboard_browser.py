"""The dashboard in real Chromium against a live daphne: log in, launch a run, watch a live frame
arrive over the websocket, open a trajectory, relabel with the keyboard, approve a generated task."""

from __future__ import annotations

import importlib.util
import threading
import time

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.test import override_settings

from apps.curriculum.models import Task
from apps.rollouts.models import Trajectory
from apps.runs.models import Run
from tests.browser.conftest import log_in, redis_url, shoot
from tests.conftest import make_cast
from tests.web.factories import make_run, make_task, make_trajectory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
HAVE_CURRICULUM_SERVICES = importlib.util.find_spec("apps.curriculum.services") is not None


def _cast():
    """The shared cast, with passwords daphne can check (the test process hashes with MD5 only)."""
    cast = make_cast(get_user_model())
    for user in cast:
        user.password = PBKDF2PasswordHasher().encode(
            f"pw-{user.username}-123", "browsersalt", iterations=1000
        )
        user.save(update_fields=["password"])
    return cast


def _wait_for(predicate, timeout: float = 10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def _send_frame(run_id: int, html: str) -> None:
    """send_to_run from a plain thread: Playwright's loop owns this one (MEASURED.md)."""
    from apps.runs.live import send_to_run

    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_url()]},
        }
    }
    errors = []

    def send():
        try:
            with override_settings(CHANNEL_LAYERS=layers):
                send_to_run(run_id, "frame", {"slot": 0, "html": html})
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=send)
    thread.start()
    thread.join(10)
    assert not errors, errors


def test_an_operator_logs_in_and_launches_a_small_run(live_daphne, page):
    _cast()
    page.goto(live_daphne + "/runs/")
    shoot(page, "01-login")
    log_in(page, live_daphne, "owner", "pw-owner-123")
    page.click("#new-run")
    page.fill("input[name=name]", "browser-demo")
    page.click("#section-engine summary")  # sections other than the common fields start collapsed
    page.fill("input[name='engine.max_seq_len']", "0")
    page.click("#launch")
    error = page.locator("#field-enginemax_seq_len .field-error")
    assert "engine.max_seq_len" in error.inner_text()
    shoot(page, "02-launch-form-error")
    page.fill("input[name='engine.max_seq_len']", "1024")
    page.click("#section-rollout summary")
    page.fill("input[name='rollout.max_steps']", "5")
    page.click("#launch")
    page.wait_for_url("**/runs/*/")
    run = Run.objects.get(name="browser-demo")
    assert run.config["rollout"]["max_steps"] == 5 and run.config["engine"]["max_seq_len"] == 1024
    assert page.locator("h1").inner_text().startswith("browser-demo")
    shoot(page, "03-run-launched")


def test_a_live_screenshot_arrives_over_the_websocket(live_daphne, page, browser):
    from apps.runs.views import render_slot_html

    owner, _, outsider = _cast()
    run = make_run(owner, name="live-run")
    log_in(page, live_daphne, "outsider", "pw-outsider-123")
    page.goto(f"{live_daphne}/runs/{run.pk}/")
    page.wait_for_function("document.getElementById('ws-state').textContent === 'live'")
    # A real JPEG from Chromium, as a rollout slot would stream it.
    other = browser.new_page()
    other.set_content("<h1 style='font:40px sans-serif'>rollout slot 0: shopping</h1>")
    jpeg = other.screenshot(type="jpeg", quality=50)
    other.close()
    html = render_slot_html(
        0,
        image_jpeg=jpeg,
        url="http://127.0.0.1:9400/shop",
        intent="Buy a <blue> mug",
        step_index=3,
    )
    _send_frame(run.pk, html)
    page.wait_for_selector("#slot-0 img[src^='data:image/jpeg;base64,']")
    caption = page.locator("#slot-0 figcaption").inner_text()
    assert "step 3" in caption and "Buy a <blue> mug" in caption
    assert page.evaluate("window.webrlFrames") >= 1
    shoot(page, "04-run-live-frame")


def test_a_reviewer_opens_a_trajectory_and_relabels_with_the_keyboard(
    live_daphne, page, browser_media
):
    owner, reviewer, _ = _cast()
    run = make_run(owner)
    with override_settings(MEDIA_ROOT=browser_media):
        unsure = make_trajectory(run, p_yes=0.51, score=0.0, steps=2, screenshot=True)
    middle = make_trajectory(run, p_yes=0.35, score=0.0)
    sure = make_trajectory(run, p_yes=0.95, score=1.0)
    step = unsure.steps.get(index=1)
    step.observation = '<html> <button id="1" data-bbox="10,20,100,30"> <script>window.pwned=1</script> </button> </html>'
    step.save()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    log_in(page, live_daphne, "reviewer", "pw-reviewer-123")
    page.goto(f"{live_daphne}/trajectories/{unsure.pk}/")
    page.click(f"#step-{step.pk} details summary")
    assert (
        "<script>window.pwned=1</script>"
        in page.locator(f"#step-{step.pk} pre.observation").inner_text()
    )
    assert page.evaluate("window.pwned") is None and not dialogs
    assert page.locator(f"#step-{step.pk} .outline").count() == 1
    assert page.evaluate(f"document.querySelector('#step-{step.pk} img').naturalWidth") > 0
    shoot(page, "05-trajectory-detail")
    page.goto(f"{live_daphne}/review/")
    assert page.locator("tr.queue-row").first.get_attribute("id") == f"trajectory-{unsure.pk}"
    page.wait_for_selector(f"#trajectory-{unsure.pk}.selected")  # review.js is ready
    page.keyboard.press("n")
    page.wait_for_selector(f"#trajectory-{unsure.pk}", state="detached")
    page.wait_for_selector(f"#trajectory-{middle.pk}.selected")
    page.keyboard.press("s")
    page.wait_for_selector(f"#trajectory-{sure.pk}.selected")
    page.keyboard.press("y")
    page.wait_for_selector(f"#trajectory-{sure.pk}", state="detached")
    assert page.locator("#labelled-count").inner_text() == "2"
    assert page.url.endswith("/review/")  # no reload, no navigation
    assert Trajectory.objects.get(pk=unsure.pk).human_label is False
    assert Trajectory.objects.get(pk=sure.pk).human_label is True
    assert Trajectory.objects.get(pk=middle.pk).human_label is None
    shoot(page, "06-review-queue-after-keys")


@pytest.mark.skipif(not HAVE_CURRICULUM_SERVICES, reason="apps.curriculum.services has not landed")
def test_a_reviewer_approves_a_generated_task(live_daphne, page):
    _, reviewer, _ = _cast()
    task = make_task("Star the <i>webrl</i> repository", origin=Task.Origin.GENERATED, status=Task.Status.PROPOSED,
                     critic_value=0.4, generator={"name": "offline"})  # fmt: skip
    log_in(page, live_daphne, "reviewer", "pw-reviewer-123")
    page.goto(f"{live_daphne}/curriculum/")
    shoot(page, "07-curriculum-before")
    page.evaluate("window.stillHere = true")
    page.click(f"#task-{task.pk} .approve-one")
    page.wait_for_selector(f"#task-status-{task.pk}:has-text('approved')")
    page.wait_for_selector("#curation-result:has-text('1 task approved.')")
    assert page.evaluate("window.stillHere === true")  # swapped in place, no reload
    assert _wait_for(lambda: Task.objects.get(pk=task.pk).status == Task.Status.APPROVED)
    shoot(page, "08-curriculum-approved")
