"""The trajectory list's filters and pagination, the step-by-step detail, and the screenshot view."""

from __future__ import annotations

import re
import tempfile

from django.test import override_settings
from django.urls import reverse

from apps.reviews.models import HumanLabel
from apps.rollouts.views import PAGE_SIZE, element_bbox
from tests.web.factories import CastTestCase, make_phase, make_run, make_task, make_trajectory


def _ids(response) -> list[int]:
    return [t.pk for t in response.context["trajectories"]]


class TrajectoryListTests(CastTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.alpha = make_run(cls.owner, name="alpha")
        cls.other = make_run(cls.owner, name="beta")
        cls.phase = make_phase(cls.alpha, 2)
        reddit = make_task("Upvote the top post", sites=["reddit"])
        cls.agree = make_trajectory(cls.alpha, phase=cls.phase, p_yes=0.9, score=1.0)
        cls.disagree = make_trajectory(cls.alpha, task=reddit, p_yes=0.8, score=0.0)
        cls.labelled = make_trajectory(
            cls.other, p_yes=0.2, score=0.0, human_label=False, reward=0.0
        )
        cls.error = make_trajectory(cls.other, p_yes=None, score=None, status="error")

    def test_it_requires_login(self):
        assert self.client.get(reverse("rollouts:list")).status_code == 302

    def test_it_filters_by_run_phase_site_and_task(self):
        self.login(self.outsider)
        url = reverse("rollouts:list")
        assert set(_ids(self.client.get(url, {"run": self.alpha.pk}))) == {
            self.agree.pk,
            self.disagree.pk,
        }
        assert _ids(self.client.get(url, {"run": self.alpha.pk, "phase": 2})) == [self.agree.pk]
        assert _ids(self.client.get(url, {"site": "reddit"})) == [self.disagree.pk]
        assert _ids(self.client.get(url, {"task": self.labelled.task_id})) == [self.labelled.pk]

    def test_it_filters_by_outcome_disagreement_and_human_label(self):
        self.login(self.outsider)
        url = reverse("rollouts:list")
        assert set(_ids(self.client.get(url, {"outcome": "success"}))) == {
            self.agree.pk,
            self.disagree.pk,
        }
        assert _ids(self.client.get(url, {"outcome": "error"})) == [self.error.pk]
        assert _ids(self.client.get(url, {"disagree": "1"})) == [self.disagree.pk]
        assert _ids(self.client.get(url, {"labelled": "1"})) == [self.labelled.pk]
        assert self.labelled.pk not in _ids(self.client.get(url, {"labelled": "0"}))

    def test_it_ignores_garbage_filter_values(self):
        self.login(self.outsider)
        response = self.client.get(
            reverse("rollouts:list"), {"run": "x'; drop", "site": "<script>", "outcome": "??"}
        )
        assert response.status_code == 200
        assert len(_ids(response)) == 4

    def test_it_pages_by_id_without_counting(self):
        for _ in range(PAGE_SIZE + 3):
            make_trajectory(self.other, steps=0)
        self.login(self.outsider)
        first = self.client.get(reverse("rollouts:list"))
        ids = _ids(first)
        assert len(ids) == PAGE_SIZE and first.context["next_before"] == ids[-1]
        second = self.client.get(
            reverse("rollouts:list"), {"before": ids[-1]}, HTTP_HX_REQUEST="true"
        )
        older = [int(i) for i in re.findall(r'id="trajectory-(\d+)"', second.content.decode())]
        assert len(older) == 7 and all(i < ids[-1] for i in older)
        assert "<h1>" not in second.content.decode()  # the rows partial only


@override_settings(MEDIA_ROOT=tempfile.mkdtemp(prefix="webrl-media-"))
class TrajectoryDetailTests(CastTestCase):
    def test_it_shows_every_step_with_the_acted_on_element_outlined(self):
        trajectory = make_trajectory(make_run(self.owner), steps=3, screenshot=True)
        HumanLabel.objects.create(
            trajectory=trajectory, user=self.reviewer, label=True, note="looks right"
        )
        self.login(self.outsider)
        body = self.client.get(reverse("rollouts:detail", args=[trajectory.pk])).content.decode()
        for step in trajectory.steps.all():
            assert f'id="step-{step.pk}"' in body
            assert reverse("rollouts:screenshot", args=[step.pk]) in body
        assert body.count('class="outline"') == 3
        assert "left:0.781%;top:2.778%" in body  # 10/1280, 20/720
        assert "P(YES) = 0.700" in body and "looks right" in body

    def test_it_escapes_observations_and_responses(self):
        trajectory = make_trajectory(steps=1)
        step = trajectory.steps.get()
        step.observation = "<script>alert(1)</script>"
        step.response = "<img src=x onerror=alert(2)>"
        step.save()
        self.login(self.outsider)
        body = self.client.get(reverse("rollouts:detail", args=[trajectory.pk])).content.decode()
        assert "<script>alert(1)</script>" not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
        assert "<img src=x" not in body

    def test_screenshots_are_served_only_to_logged_in_users(self):
        step = make_trajectory(steps=1, screenshot=True).steps.get()
        url = reverse("rollouts:screenshot", args=[step.pk])
        assert self.client.get(url).status_code == 302
        self.login(self.outsider)
        response = self.client.get(url)
        assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
        assert b"".join(response.streaming_content)[:2] == b"\xff\xd8"

    def test_a_step_without_a_screenshot_is_404(self):
        step = make_trajectory(steps=1).steps.get()
        self.login(self.outsider)
        assert self.client.get(reverse("rollouts:screenshot", args=[step.pk])).status_code == 404


def test_element_bbox_reads_the_data_bbox_of_the_element_with_that_id():
    html = (
        '<div id="3" data-text="x" data-bbox="5,6,7,8"> <a id="31" data-bbox="1,2,3,4"> </a></div>'
    )
    assert element_bbox(html, "3") == [5, 6, 7, 8]
    assert element_bbox(html, "31") == [1, 2, 3, 4]
    assert element_bbox(html, "4") is None
    assert element_bbox(html, ".*") is None
    assert element_bbox("", "3") is None
