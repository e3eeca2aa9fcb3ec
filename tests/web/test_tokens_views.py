"""The API tokens page: each user creates, sees once, and revokes their own tokens."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from apps.api.models import ApiToken
from apps.api.services import create_token, hash_key
from tests.web.factories import CastTestCase


class TokenPageTests(CastTestCase):
    def test_it_sends_anonymous_users_to_the_login_page(self):
        response = self.client.get(reverse("tokens:list"))
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))

    def test_any_user_creates_a_token_and_sees_it_once(self):
        self.login(self.outsider)
        response = self.client.post(reverse("tokens:create"), {"name": "notebook"})
        assert response.status_code == 302
        token = ApiToken.objects.get(user=self.outsider)
        first = self.client.get(reverse("tokens:list")).content.decode()
        raw = first.split('<pre id="new-token-key">', 1)[1].split("</pre>", 1)[0]
        assert hash_key(raw) == token.key_hash and token.name == "notebook"
        second = self.client.get(reverse("tokens:list")).content.decode()
        assert raw not in second and f"{token.prefix}…" in second
        api = self.client.get("/api/runs", headers={"Authorization": f"Bearer {raw}"})
        assert api.status_code == 200

    def test_a_token_needs_a_name(self):
        self.login(self.owner)
        self.client.post(reverse("tokens:create"), {"name": "  "})
        assert not ApiToken.objects.exists()

    def test_users_revoke_their_own_tokens_only(self):
        mine, _ = create_token(self.reviewer, "mine")
        theirs, raw = create_token(self.owner, "theirs")
        self.login(self.reviewer)
        self.client.post(reverse("tokens:revoke", args=[theirs.pk]))
        theirs.refresh_from_db()
        assert theirs.revoked_at is None
        assert (
            self.client.get("/api/runs", headers={"Authorization": f"Bearer {raw}"}).status_code
            == 200
        )
        self.client.post(reverse("tokens:revoke", args=[mine.pk]))
        mine.refresh_from_db()
        assert mine.revoked_at is not None
        body = self.client.get(reverse("tokens:list")).content.decode()
        assert "theirs" not in body and "revoked" in body

    def test_it_needs_post_and_the_csrf_token(self):
        token, _ = create_token(self.owner, "t")
        self.login(self.owner)
        assert self.client.get(reverse("tokens:revoke", args=[token.pk])).status_code == 405
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.owner)
        assert client.post(reverse("tokens:create"), {"name": "x"}).status_code == 403
