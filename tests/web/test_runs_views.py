"""The run list, the launch form, the run page with its live parts, and cancel."""

from __future__ import annotations

import tempfile

from django.test import Client, override_settings
from django.urls import reverse

from apps.rollouts.models import Trajectory
from apps.runs.models import MetricPoint, Run, StageRun
from apps.runs.views import render_slot_html
from tests.web.factories import TINY_JPEG, CastTestCase, make_phase, make_run, make_trajectory
from trainer.config import RunConfig, preset


def _launch_data(**overrides) -> dict:
    data = {"name": "nightly", "preset_name": "demo-cpu"}
    flat: dict = {}

    def walk(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            elif isinstance(v, bool):
                if v:
                    flat[prefix + k] = "on"
            elif isinstance(v, list):
                flat[prefix + k] = ", ".join(str(x) for x in v)
            else:
                flat[prefix + k] = str(v)

    walk(preset("demo-cpu").to_dict())
    data.update(flat)
    data.update(overrides)
    return data


class RunListTests(CastTestCase):
    def test_it_sends_anonymous_users_to_the_login_page(self):
        response = self.client.get(reverse("runs:list"))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))

    def test_it_lists_runs_to_every_logged_in_user(self):
        run = make_run(self.owner, name="visible-run")
        self.login(self.outsider)
        response = self.client.get(reverse("runs:list"))
        assert response.status_code == 200
        assert f'id="run-{run.pk}"' in response.content.decode()
        assert "Launch a run" not in response.content.decode()

    def test_it_offers_the_launch_link_to_operators(self):
        self.login(self.owner)
        assert reverse("runs:new") in self.client.get(reverse("runs:list")).content.decode()


class LaunchFormTests(CastTestCase):
    def test_it_forbids_users_who_are_not_operators(self):
        for user in (self.outsider, self.reviewer):
            self.login(user)
            assert self.client.get(reverse("runs:new")).status_code == 403
            assert self.client.post(reverse("runs:new"), _launch_data()).status_code == 403
        assert not Run.objects.exists()

    def test_it_shows_every_config_field_of_the_preset(self):
        self.login(self.owner)
        body = self.client.get(reverse("runs:new") + "?preset=paper-llama8b").content.decode()
        for key in (
            "rollout.max_steps",
            "actor.lam",
            "curriculum.critic_band",
            "engine.zero_stage",
        ):
            assert f'name="{key}"' in body
        assert 'value="16384"' in body  # paper-llama8b's engine.max_seq_len

    def test_it_launches_a_run_with_the_edited_config(self):
        self.login(self.owner)
        response = self.client.post(reverse("runs:new"), _launch_data(**{"rollout.max_steps": "7"}))
        run = Run.objects.get()
        assert response.status_code == 302
        assert response["Location"] == reverse("runs:detail", args=[run.pk])
        assert run.config["rollout"]["max_steps"] == 7
        assert run.status == Run.Status.QUEUED
        assert RunConfig.from_dict(run.config).rollout.max_steps == 7

    def test_it_puts_the_trainers_error_next_to_the_field(self):
        self.login(self.owner)
        response = self.client.post(
            reverse("runs:new"), _launch_data(**{"curriculum.critic_band": "0.9, 0.1"})
        )
        assert response.status_code == 400
        field = response.context["form"]["curriculum.critic_band"]
        assert "curriculum.critic_band" in " ".join(field.errors)
        assert not Run.objects.exists()

    def test_it_rejects_a_wrong_type_and_an_unknown_choice(self):
        self.login(self.owner)
        response = self.client.post(
            reverse("runs:new"),
            _launch_data(**{"rollout.max_steps": "many", "engine.device": "tpu"}),
        )
        form = response.context["form"]
        assert response.status_code == 400
        assert form["rollout.max_steps"].errors and form["engine.device"].errors

    def test_it_rejects_an_unknown_preset(self):
        self.login(self.owner)
        assert self.client.get(reverse("runs:new") + "?preset=nope").status_code == 400

    def test_it_needs_the_csrf_token(self):
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.owner)
        assert client.post(reverse("runs:new"), _launch_data()).status_code == 403


@override_settings(MEDIA_ROOT=tempfile.mkdtemp(prefix="webrl-media-"))
class RunPageTests(CastTestCase):
    def setUp(self):
        self.run = make_run(self.owner)
        self.phase = make_phase(self.run, 1)
        StageRun.objects.create(phase=self.phase, name="rollout", order=0, status="done")
        StageRun.objects.create(phase=self.phase, name="orm", order=1, status="running")
        for step, value in enumerate([0.1, 0.2, 0.35]):
            MetricPoint.objects.create(
                run=self.run, name="eval/success_rate", step=step, value=value
            )
            MetricPoint.objects.create(
                run=self.run, name="eval/success_rate/reddit", step=step, value=value / 2
            )
            MetricPoint.objects.create(
                run=self.run, name="loss/actor", step=step, value=2.0 - value
            )

    def test_it_shows_the_phase_timeline_and_charts_with_axes(self):
        self.login(self.outsider)
        body = self.client.get(reverse("runs:detail", args=[self.run.pk])).content.decode()
        assert f'id="phase-{self.phase.pk}"' in body
        assert "rollout" in body and "orm" in body
        assert 'id="chart-success"' in body and "success (%)" in body
        assert "reddit (17.5)" in body  # legend with the latest value in percent
        assert 'id="chart-losses"' in body and "<polyline" in body

    def test_it_shows_the_latest_screenshot_of_each_running_episode(self):
        running = make_trajectory(
            self.run, phase=self.phase, status=Trajectory.Status.RUNNING, screenshot=True, steps=3
        )
        last = running.steps.order_by("-index").first()
        self.login(self.outsider)
        body = self.client.get(
            reverse("runs:live", args=[self.run.pk]) + "?part=slots"
        ).content.decode()
        assert reverse("rollouts:screenshot", args=[last.pk]) in body
        assert 'id="slot-0"' in body and 'id="slot-3"' in body  # demo-cpu has 4 slots

    def test_its_status_fragment_polls_the_same_parts(self):
        self.login(self.reviewer)
        body = self.client.get(reverse("runs:live", args=[self.run.pk])).content.decode()
        assert body.lstrip().startswith('<div id="run-status"')
        assert f'id="phase-{self.phase.pk}"' in body

    def test_it_answers_404_for_a_missing_run(self):
        self.login(self.owner)
        assert self.client.get(reverse("runs:detail", args=[999999])).status_code == 404

    def test_the_slot_fragment_escapes_text_and_inlines_the_jpeg(self):
        html = render_slot_html(
            2, image_jpeg=TINY_JPEG, url="http://x/<script>", intent="<b>buy</b>", step_index=4
        )
        assert 'id="slot-2"' in html and "data:image/jpeg;base64," in html
        assert "<script>" not in html and "&lt;b&gt;buy&lt;/b&gt;" in html


class CancelTests(CastTestCase):
    def test_only_operators_cancel(self):
        run = make_run(self.owner)
        self.login(self.reviewer)
        assert self.client.post(reverse("runs:cancel", args=[run.pk])).status_code == 403
        run.refresh_from_db()
        assert run.status == Run.Status.RUNNING

    def test_an_operator_asks_a_running_run_to_stop(self):
        run = make_run(self.owner)
        self.login(self.owner)
        response = self.client.post(reverse("runs:cancel", args=[run.pk]))
        assert response.status_code == 302
        run.refresh_from_db()
        assert run.status == Run.Status.CANCELLING

    def test_it_rejects_get(self):
        run = make_run(self.owner)
        self.login(self.owner)
        assert self.client.get(reverse("runs:cancel", args=[run.pk])).status_code == 405
