"""Generated tasks: lineage, critic value and filter decisions; approve, reject and edit by role."""

from __future__ import annotations

import importlib.util
import json
import unittest

from django.urls import reverse

from apps.curriculum.models import Task
from tests.web.factories import CastTestCase, make_phase, make_run, make_task
from trainer.curriculum.generators import llm_task_config

HAVE_SERVICES = importlib.util.find_spec("apps.curriculum.services") is not None


class CurriculumTests(CastTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.alpha = make_run(cls.owner)
        cls.phase = make_phase(cls.alpha, 1)
        cls.seed = make_task("Find the order total of order 12")
        cls.generated = make_task(
            "Find the order total of <b>order 13</b>",
            origin=Task.Origin.GENERATED,
            split=Task.Split.GENERATED,
            status=Task.Status.PROPOSED,
            run=cls.alpha,
            generating_phase=cls.phase,
            critic_value=0.42,
            generator={"name": "offline-templates"},
            filter_notes={"critic": {"score": 0.42, "keep": True, "reason": "in band"}},
        )
        cls.generated.parents.add(cls.seed)
        cls.other = make_task(
            "Star the repo", origin=Task.Origin.GENERATED, status=Task.Status.PROPOSED
        )

    def test_it_lists_generated_tasks_with_lineage_and_filters(self):
        self.login(self.outsider)
        body = self.client.get(reverse("curriculum:list")).content.decode()
        assert f'id="task-{self.generated.pk}"' in body and f'id="task-{self.seed.pk}"' not in body
        assert "offline-templates" in body and "0.42" in body and "critic 0.42" in body
        assert reverse("curriculum:detail", args=[self.seed.pk]) in body  # the parent
        assert "&lt;b&gt;order 13&lt;/b&gt;" in body
        assert 'name="task_ids"' not in body  # no bulk controls for readers

    def test_it_filters_by_run_and_status(self):
        self.login(self.outsider)
        response = self.client.get(
            reverse("curriculum:list"), {"run": self.alpha.pk, "status": "proposed"}
        )
        assert [t.pk for t in response.context["tasks"]] == [self.generated.pk]

    def test_the_detail_shows_parents_config_and_history(self):
        self.login(self.reviewer)
        body = self.client.get(
            reverse("curriculum:detail", args=[self.generated.pk])
        ).content.decode()
        assert "Find the order total of order 12" in body and 'id="edit-form"' in body

    def test_readers_and_operators_cannot_curate(self):
        for user in (self.outsider, self.owner):
            self.login(user)
            response = self.client.post(
                reverse("curriculum:bulk"), {"action": "approve", "task_ids": [self.generated.pk]}
            )
            assert response.status_code == 403
            edit = self.client.post(
                reverse("curriculum:edit", args=[self.generated.pk]), {"intent": "x"}
            )
            assert edit.status_code == 403
        assert Task.objects.get(pk=self.generated.pk).status == Task.Status.PROPOSED

    def test_a_bulk_request_needs_an_action_and_tasks(self):
        self.login(self.reviewer)
        assert (
            self.client.post(reverse("curriculum:bulk"), {"action": "approve"}).status_code == 400
        )
        assert (
            self.client.post(
                reverse("curriculum:bulk"), {"action": "delete", "task_ids": [1]}
            ).status_code
            == 400
        )

    @unittest.skipUnless(HAVE_SERVICES, "apps.curriculum.services has not landed")
    def test_a_reviewer_approves_and_rejects_in_bulk(self):
        self.login(self.reviewer)
        response = self.client.post(
            reverse("curriculum:bulk"),
            {
                "action": "approve",
                "task_ids": [self.generated.pk, self.other.pk],
                "query": "status=proposed&next=//evil",
            },
        )
        assert response.status_code == 302
        assert response["Location"] == reverse("curriculum:list") + "?status=proposed"
        assert set(
            Task.objects.filter(status="approved", origin="generated").values_list("pk", flat=True)
        ) == {
            self.generated.pk,
            self.other.pk,
        }
        self.client.post(
            reverse("curriculum:bulk"),
            {"action": "reject", "task_ids": [self.other.pk], "note": "dupe"},
        )
        assert Task.objects.get(pk=self.other.pk).status == Task.Status.REJECTED

    @unittest.skipUnless(HAVE_SERVICES, "apps.curriculum.services has not landed")
    def test_an_htmx_curation_answers_with_the_changed_rows_in_place(self):
        self.login(self.reviewer)
        response = self.client.post(
            reverse("curriculum:bulk"),
            {"action": "approve", "task_ids": [self.generated.pk], "reject_one": self.other.pk},
            HTTP_HX_REQUEST="true",
        )
        assert response.status_code == 200
        body = response.content.decode()
        assert body.lstrip().startswith("1 task rejected.")
        assert f'<tr id="task-{self.other.pk}" hx-swap-oob="true">' in body
        assert f'id="task-status-{self.other.pk}">rejected<' in body
        assert f'id="task-{self.generated.pk}"' not in body  # untouched rows are not sent
        assert Task.objects.get(pk=self.other.pk).status == Task.Status.REJECTED

    @unittest.skipUnless(HAVE_SERVICES, "apps.curriculum.services has not landed")
    def test_a_rows_own_button_acts_on_that_row_only(self):
        self.login(self.reviewer)
        self.client.post(
            reverse("curriculum:bulk"),
            {
                "action": "approve",
                "task_ids": [self.generated.pk, self.other.pk],
                "reject_one": self.other.pk,
            },
        )
        assert Task.objects.get(pk=self.other.pk).status == Task.Status.REJECTED
        assert Task.objects.get(pk=self.generated.pk).status == Task.Status.PROPOSED

    @unittest.skipUnless(HAVE_SERVICES, "apps.curriculum.services has not landed")
    def test_a_reviewer_edits_the_intent_and_config(self):
        self.login(self.reviewer)
        # A whole, valid WebArena config: edits are validated as imports are.
        config = llm_task_config("Find the total of order 14", "shopping", "__SHOPPING__/")
        self.client.post(
            reverse("curriculum:edit", args=[self.generated.pk]),
            {"intent": "Find the total of order 14", "config": json.dumps(config), "note": "typo"},
        )
        task = Task.objects.get(pk=self.generated.pk)
        assert task.intent == "Find the total of order 14" and task.edits.exists()

    def test_a_config_that_is_not_json_is_refused_with_a_message(self):
        self.login(self.reviewer)
        response = self.client.post(
            reverse("curriculum:edit", args=[self.generated.pk]),
            {"config": "{not json"},
            follow=True,
        )
        assert "config: not valid JSON" in response.content.decode()
        assert Task.objects.get(pk=self.generated.pk).config == self.generated.config
