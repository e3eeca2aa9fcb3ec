"""The compare page: success per phase and site, ORM accuracy, differing config fields only, and
per test task which run solved it."""

from __future__ import annotations

from django.urls import reverse

from apps.rollouts.models import Trajectory
from apps.runs.compare import comparison
from apps.runs.models import Phase, Run
from tests.web.factories import CastTestCase, make_run, make_task, make_trajectory


def evaluated(run: Run, rates: list[dict]) -> list[Phase]:
    phases = []
    for index, metrics in enumerate(rates):
        phases.append(Phase.objects.create(run=run, index=index, status="done", metrics=metrics))
    return phases


class CompareTests(CastTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.a = make_run(cls.owner, name="lr-small")
        cls.b = make_run(cls.owner, name="lr-large")
        cls.b.config["actor"]["lr"] = 1e-4
        cls.b.config["run"]["phases"] = 5
        cls.b.save()
        pa = evaluated(cls.a, [{"eval/success_rate": 0.1, "eval/success_rate/reddit": 0.2, "orm/accuracy": 0.7},
                               {"eval/success_rate": 0.3, "eval/success_rate/reddit": 0.4, "orm/accuracy": 0.8}])  # fmt: skip
        pb = evaluated(cls.b, [{"eval/success_rate": 0.1, "orm/accuracy": 0.6},
                               {"eval/success_rate": 0.05, "orm/accuracy": 0.65}])  # fmt: skip
        cls.both, cls.only_a, cls.lost = (
            make_task(f"test task {i}", split="test") for i in range(3)
        )
        for run, phases, solved in ((cls.a, pa, {cls.both, cls.only_a}), (cls.b, pb, {cls.both})):
            for task in (cls.both, cls.only_a, cls.lost):
                for phase in phases:
                    won = task in solved and (phase.index == 1 or task is not cls.lost)
                    make_trajectory(run, task, phase=phase, purpose=Trajectory.Purpose.EVAL,
                                    score=1.0 if won else 0.0, p_yes=None)  # fmt: skip
        # b solved `lost` in phase 0 only: solved earlier, not at its latest phase
        t = Trajectory.objects.get(run=cls.b, task=cls.lost, phase=pb[0])
        t.score = 1.0
        t.save()

    def test_it_shows_every_part_for_two_runs(self):
        self.login(self.outsider)
        url = reverse("runs:compare") + f"?run={self.a.pk}&run={self.b.pk}"
        body = self.client.get(url).content.decode()
        assert 'id="chart-compare-success"' in body and 'id="chart-compare-orm"' in body
        assert f"lr-small #{self.a.pk} · reddit (40)" in body  # legend: latest value, percent
        assert f"lr-large #{self.b.pk} (65)" in body
        assert 'id="diff-actorlr"' in body and 'id="diff-runphases"' in body
        assert 'id="diff-rolloutmax_steps"' not in body  # equal fields are left out

    def test_it_says_per_task_which_run_solved_it(self):
        data = comparison([self.a, self.b])
        states = {t["id"]: [c["state"] for c in t["cells"]] for t in data["tasks"]}
        assert states == {
            self.both.pk: ["solved", "solved"],
            self.only_a.pk: ["solved", "unsolved"],
            self.lost.pk: ["unsolved", "earlier"],
        }
        assert data["solved_counts"] == [2, 1]
        differing = comparison([self.a, self.b], only_differing=True)["tasks"]
        assert {t["id"] for t in differing} == {self.only_a.pk, self.lost.pk}

    def test_it_tabulates_success_per_phase_and_site(self):
        data = comparison([self.a, self.b])
        assert data["sites"] == ["overall", "reddit"]
        assert [r["cells"] for r in data["success_rows"]] == [
            [[0.1, 0.2], [0.1, None]],
            [[0.3, 0.4], [0.05, None]],
        ]
        assert [(r["field"], r["values"]) for r in data["config_diff"]] == [
            ("actor.lr", [1e-5, 1e-4]),
            ("run.phases", [3, 5]),
        ]

    def test_fewer_than_two_runs_shows_the_picker(self):
        self.login(self.outsider)
        response = self.client.get(reverse("runs:compare") + f"?run={self.a.pk}&run=99999&run=x")
        assert response.status_code == 200
        assert 'id="compare-empty"' in response.content.decode()

    def test_the_run_list_offers_the_comparison(self):
        self.login(self.outsider)
        body = self.client.get(reverse("runs:list")).content.decode()
        assert f'name="run" value="{self.a.pk}"' in body and 'id="compare-runs"' in body
