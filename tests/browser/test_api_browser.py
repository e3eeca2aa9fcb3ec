"""API tokens and the interactive API docs in real Chromium against a live daphne: create a token,
use it, read the Swagger UI (served offline), revoke the token."""

from __future__ import annotations

import httpx
import pytest

from tests.browser.conftest import cast_with_passwords, log_in, shoot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_user_creates_uses_and_revokes_a_token_and_reads_the_docs(live_daphne, page):
    cast_with_passwords()
    log_in(page, live_daphne, "reviewer", "pw-reviewer-123")
    page.click("text=API tokens")
    page.fill("#token-form input[name=name]", "notebook")
    page.click("#create-token")
    key = page.locator("#new-token-key").inner_text().strip()
    shoot(page, "15-api-token-created")
    headers = {"Authorization": f"Bearer {key}"}
    answer = httpx.get(live_daphne + "/api/runs", headers=headers, timeout=10)
    assert answer.status_code == 200 and answer.json()["items"] == []
    page.goto(live_daphne + "/api/docs")
    page.locator(".opblock-summary-path", has_text="/api/runs/{run_id}/export").wait_for(
        timeout=30_000
    )
    assert page.locator(".opblock").count() >= 12
    shoot(page, "16-api-docs")
    page.goto(live_daphne + "/tokens/")
    assert key not in page.content()  # shown once only
    page.click("#tokens button.revoke")
    page.wait_for_selector("#tokens .badge.cancelled")
    refused = httpx.get(live_daphne + "/api/runs", headers=headers, timeout=10)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthenticated"
