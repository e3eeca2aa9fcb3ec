"""Checkpoints per phase and the comparison of two checkpoints' test results."""

from __future__ import annotations

from django.urls import reverse

from apps.runs.models import Checkpoint
from tests.web.factories import CastTestCase, make_phase, make_run


class CheckpointTests(CastTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.alpha = make_run(cls.owner, name="alpha")
        one, two = make_phase(cls.alpha, 1), make_phase(cls.alpha, 2)
        metrics_a = {"eval/success_rate": 0.2, "eval/success_rate/reddit": 0.1, "loss/actor": 1.0}
        metrics_b = {"eval/success_rate": 0.3, "eval/success_rate/reddit": 0.05}
        cls.a = Checkpoint.objects.create(
            run=cls.alpha, phase=one, kind="actor", path="/ck/1", metrics=metrics_a
        )
        cls.b = Checkpoint.objects.create(
            run=cls.alpha, phase=two, kind="actor", path="/ck/2", metrics=metrics_b
        )
        Checkpoint.objects.create(
            run=cls.alpha, phase=two, kind="orm", path="/ck/orm-2", config={"seed": 3}
        )

    def test_it_lists_checkpoints_with_paths_and_config(self):
        self.login(self.outsider)
        body = self.client.get(reverse("checkpoints"), {"run": self.alpha.pk}).content.decode()
        assert "/ck/orm-2" in body and "&quot;seed&quot;: 3" in body

    def test_it_compares_two_checkpoints_per_site(self):
        self.login(self.outsider)
        response = self.client.get(reverse("checkpoints"), {"a": self.a.pk, "b": self.b.pk})
        rows = {r["metric"]: r for r in response.context["comparison"]}
        assert set(rows) == {"eval/success_rate", "eval/success_rate/reddit"}
        assert abs(rows["eval/success_rate"]["delta"] - 0.1) < 1e-9
        assert abs(rows["eval/success_rate/reddit"]["delta"] + 0.05) < 1e-9

    def test_it_ignores_bad_ids(self):
        self.login(self.outsider)
        response = self.client.get(reverse("checkpoints"), {"a": "x", "b": 99999})
        assert response.status_code == 200 and response.context["comparison"] is None

    def test_it_requires_login(self):
        assert self.client.get(reverse("checkpoints")).status_code == 302
