"""The launch form in real Chromium: pick a preset, edit a common field and one in a collapsed
section (both marked as changed, live), preview the differences, launch; and paste a config."""

from __future__ import annotations

import json

import pytest

from apps.runs.models import Run
from tests.browser.conftest import cast_with_passwords, log_in, shoot
from trainer.config import preset

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shot(page, name: str) -> None:
    """A full-page screenshot, then back to the top: after one, headless Chromium scrolled the page
    between the next click's mousedown and mouseup (462 px), so the click missed its button."""
    shoot(page, name)
    page.evaluate("window.scrollTo(0, 0)")


def test_an_operator_starts_from_a_preset_previews_and_launches(live_daphne, page):
    cast_with_passwords()
    log_in(page, live_daphne, "owner", "pw-owner-123")
    page.goto(live_daphne + "/runs/new/")
    with page.expect_navigation():
        page.select_option("#preset-picker", "paper-llama8b")
    page.wait_for_function("window.webrlLaunchReady === true")
    assert page.locator("#section-common input[name='actor.lr']").is_visible()
    engine = page.locator("input[name='engine.max_seq_len']")
    assert not engine.is_visible()  # its section is collapsed
    assert engine.input_value() == "16384"  # paper-llama8b's value
    page.fill("input[name=name]", "from-paper")
    page.fill("input[name='actor.lr']", "2e-6")
    page.wait_for_selector("#field-actorlr.changed")
    page.click("#section-engine summary")
    engine.fill("8192")
    page.wait_for_selector("#section-engine .section-changed:has-text('1 changed')")
    engine.fill("16384")  # back to the preset's value: no longer marked
    page.wait_for_selector("#section-engine .section-changed", state="hidden")
    engine.fill("8192")
    shot(page, "12-launch-form-edited")
    page.click("#preview")
    page.wait_for_selector("#config-preview")
    rows = page.locator("#config-preview tbody tr").all_inner_texts()
    assert [r.split("\t") for r in rows] == [
        ["actor.lr", "1e-06", "2e-06"],
        ["engine.max_seq_len", "16384", "8192"],
    ]
    assert not Run.objects.exists()  # a preview launches nothing
    assert page.locator("#section-engine").get_attribute("open") is None
    assert "1 changed" in page.locator("#section-engine summary").inner_text()
    shot(page, "13-launch-preview")
    page.click("#launch")
    page.wait_for_url("**/runs/*/")
    run = Run.objects.get(name="from-paper")
    assert run.config["preset"] == "paper-llama8b"
    assert (run.config["actor"]["lr"], run.config["engine"]["max_seq_len"]) == (2e-6, 8192)


def test_an_operator_pastes_a_config_and_sees_it_in_the_fields(live_daphne, page):
    cast_with_passwords()
    config = preset("demo-cpu").with_overrides(["run.phases=1", "rollout.max_steps=4"]).to_dict()
    log_in(page, live_daphne, "owner", "pw-owner-123")
    page.goto(live_daphne + "/runs/new/")
    page.fill("input[name=name]", "pasted")
    page.click("#section-json summary")
    page.fill("textarea[name=config_json]", json.dumps(config, indent=2))
    page.click("#preview")
    page.wait_for_selector("#config-preview")
    assert page.locator("input[name='run.phases']").input_value() == "1"
    assert page.locator("#field-runphases.changed").count() == 1
    assert "2 changed" not in page.locator("#section-rollout summary").inner_text()
    assert "1 changed" in page.locator("#section-rollout summary").inner_text()
    shot(page, "14-launch-pasted-json")
    page.click("#launch")
    page.wait_for_url("**/runs/*/")
    assert Run.objects.get(name="pasted").config == config
