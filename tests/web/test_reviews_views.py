"""The review queue's order, labelling over POST (JSON for the keyboard, redirects without JS), stats, export."""

from __future__ import annotations

import json

from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse

from apps.reviews.models import HumanLabel
from apps.rollouts.models import Trajectory
from tests.web.factories import CastTestCase, make_run, make_trajectory


class QueueTests(CastTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.alpha = make_run(cls.owner)
        cls.sure = make_trajectory(cls.alpha, p_yes=0.98, score=1.0)
        cls.unsure = make_trajectory(cls.alpha, p_yes=0.52, score=1.0)
        cls.middling = make_trajectory(cls.alpha, p_yes=0.3, score=1.0)  # disagrees
        cls.done = make_trajectory(cls.alpha, p_yes=0.5, human_label=True)

    def _ids(self, **params):
        response = self.client.get(reverse("reviews:queue"), params)
        assert response.status_code == 200
        return [t.pk for t in response.context["trajectories"]]

    def test_it_orders_unlabelled_trajectories_by_orm_uncertainty(self):
        self.login(self.outsider)
        assert self._ids() == [self.unsure.pk, self.middling.pk, self.sure.pk]

    def test_it_shows_only_disagreements_in_that_order(self):
        self.login(self.outsider)
        assert self._ids(order="disagreement") == [self.middling.pk]

    def test_it_shows_label_buttons_only_to_reviewers(self):
        self.login(self.outsider)
        assert "label-cell" not in self.client.get(reverse("reviews:queue")).content.decode()
        self.login(self.reviewer)
        assert "label-cell" in self.client.get(reverse("reviews:queue")).content.decode()

    def test_an_unknown_run_is_404(self):
        self.login(self.outsider)
        assert self.client.get(reverse("reviews:queue"), {"run": 999999}).status_code == 404


class LabelTests(CastTestCase):
    def test_a_reviewer_labels_with_json_for_the_keyboard(self):
        trajectory = make_trajectory(p_yes=0.6)
        self.login(self.reviewer)
        response = self.client.post(
            reverse("reviews:label", args=[trajectory.pk]),
            {"label": "no"},
            HTTP_ACCEPT="application/json",
        )
        assert response.status_code == 200
        assert json.loads(response.content)["label"] == "NO"
        assert Trajectory.objects.get(pk=trajectory.pk).human_label is False

    def test_without_javascript_it_redirects_to_the_queue_or_the_detail(self):
        trajectory = make_trajectory()
        self.login(self.reviewer)
        response = self.client.post(
            reverse("reviews:label", args=[trajectory.pk]), {"label": "yes"}
        )
        assert response["Location"] == reverse("reviews:queue")
        response = self.client.post(
            reverse("reviews:label", args=[trajectory.pk]),
            {"label": "y", "next": "https://evil.example/"},
        )
        assert response["Location"] == reverse("reviews:queue")
        response = self.client.post(
            reverse("reviews:label", args=[trajectory.pk]), {"label": "1", "next": "detail"}
        )
        assert response["Location"] == reverse("rollouts:detail", args=[trajectory.pk])

    def test_it_forbids_operators_and_outsiders(self):
        trajectory = make_trajectory()
        for user in (self.owner, self.outsider):
            self.login(user)
            assert (
                self.client.post(
                    reverse("reviews:label", args=[trajectory.pk]), {"label": "yes"}
                ).status_code
                == 403
            )
        assert not HumanLabel.objects.exists()

    def test_it_rejects_a_label_that_is_neither_yes_nor_no(self):
        trajectory = make_trajectory()
        self.login(self.reviewer)
        assert (
            self.client.post(
                reverse("reviews:label", args=[trajectory.pk]), {"label": "maybe"}
            ).status_code
            == 400
        )

    def test_it_needs_the_csrf_token_and_post(self):
        trajectory = make_trajectory()
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.reviewer)
        assert (
            client.post(
                reverse("reviews:label", args=[trajectory.pk]), {"label": "yes"}
            ).status_code
            == 403
        )
        assert client.get(reverse("reviews:label", args=[trajectory.pk])).status_code == 405


class StatsAndExportTests(CastTestCase):
    def test_the_agreement_page_shows_the_figures(self):
        trajectory = make_trajectory(p_yes=0.9, score=1.0, human_label=True)
        HumanLabel.objects.create(trajectory=trajectory, user=self.reviewer, label=True)
        self.login(self.outsider)
        body = self.client.get(reverse("reviews:stats")).content.decode()
        assert 'id="orm-vs-human"' in body and "100 %" in body and "reviewer" in body

    async def test_the_export_streams_jsonl_under_asgi(self):
        trajectories = [await sync_to_async(make_trajectory)(human_label=True) for _ in range(5)]
        await self.async_client.aforce_login(self.outsider)
        response = await self.async_client.get(reverse("reviews:export"))
        assert response["Content-Type"] == "application/x-ndjson"
        # An async iterator, read batch by batch as it is sent: a sync one is read whole first.
        assert response.is_async
        chunks = [chunk async for chunk in response.streaming_content]
        lines = b"".join(chunks).decode().splitlines()
        assert [json.loads(line)["trajectory_id"] for line in lines] == [t.pk for t in trajectories]

    async def test_the_export_is_sent_in_batches(self):
        from apps.reviews import views

        lines = (f"{i}\n" for i in range(5))
        chunks = [chunk async for chunk in views.stream_in_batches(lines, size=2)]
        assert chunks == ["0\n1\n", "2\n3\n", "4\n"]
