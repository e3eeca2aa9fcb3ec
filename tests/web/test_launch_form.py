"""The launch form from a preset: common fields first, other sections collapsed with what changed
from the preset, a preview of the differences that launches nothing, and a pasted or uploaded
config JSON."""

from __future__ import annotations

import json

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.runs.models import Run
from tests.web.factories import CastTestCase
from tests.web.test_runs_views import _launch_data
from trainer.config import preset


class LaunchFormLayoutTests(CastTestCase):
    def test_the_common_fields_come_first_and_the_other_sections_are_collapsed(self):
        self.login(self.owner)
        body = self.client.get(reverse("runs:new")).content.decode()
        common = body.split('id="section-common"', 1)[1].split("</section>", 1)[0]
        for key in ("name", "run.phases", "rollout.tasks_per_phase", "model.policy",
                    "rollout.backend", "rollout.server_url", "actor.lr", "sft.lr"):  # fmt: skip
            assert f'name="{key}"' in common
        assert 'name="engine.max_seq_len"' not in common
        assert '<details class="card config-section" id="section-engine">' in body  # not open
        assert 'class="config-field changed"' not in body

    def test_a_preview_lists_the_differences_and_marks_them_without_launching(self):
        self.login(self.owner)
        data = _launch_data(
            **{"actor.lr": "3e-5", "engine.max_seq_len": "512", "action": "preview"}
        )
        response = self.client.post(reverse("runs:new"), data)
        assert response.status_code == 200 and not Run.objects.exists()
        preview = {r["field"]: (r["before"], r["after"]) for r in response.context["preview"]}
        assert preview == {"actor.lr": ("1e-05", "3e-05"), "engine.max_seq_len": ("1024", "512")}
        body = response.content.decode()
        assert 'id="preview-actorlr"' in body
        engine = next(s for s in response.context["form"].sections() if s["name"] == "engine")
        assert engine["changed"] == 1
        assert [r["field"].name for r in engine["rows"] if r["changed"]] == ["engine.max_seq_len"]

    def test_a_preview_of_the_preset_itself_says_nothing_differs(self):
        self.login(self.owner)
        response = self.client.post(reverse("runs:new"), _launch_data(action="preview"))
        assert (
            response.context["preview"] == [] and 'id="preview-same"' in response.content.decode()
        )

    def test_a_preview_with_an_error_shows_the_error_and_no_preview(self):
        self.login(self.owner)
        response = self.client.post(
            reverse("runs:new"), _launch_data(**{"engine.max_seq_len": "0", "action": "preview"})
        )
        assert response.status_code == 400 and response.context["preview"] is None
        engine = next(s for s in response.context["form"].sections() if s["name"] == "engine")
        assert engine["open"]


class LaunchFromJsonTests(CastTestCase):
    def _config(self, **changes) -> dict:
        config = preset("paper-llama8b").to_dict()
        for dotted, value in changes.items():
            section, field = dotted.split(".")
            config[section][field] = value
        return config

    def test_pasted_json_fills_the_fields_against_its_own_preset(self):
        self.login(self.owner)
        config = self._config(**{"run.phases": 2, "actor.lr": 2e-6})
        response = self.client.post(reverse("runs:new"), {
            "name": "pasted", "preset_name": "demo-cpu", "action": "preview",
            "config_json": json.dumps(config)})  # fmt: skip
        assert response.status_code == 200 and not Run.objects.exists()
        form = response.context["form"]
        assert form.preset_name == "paper-llama8b" and form["run.phases"].value() == "2"
        assert {r["field"] for r in response.context["preview"]} == {"run.phases", "actor.lr"}
        assert form["config_json"].value() in (None, "")  # it now lives in the fields

    def test_an_uploaded_json_launches_as_it_is(self):
        self.login(self.owner)
        config = self._config(**{"run.phases": 2})
        config["preset"] = "my-sweep"
        upload = SimpleUploadedFile("config.json", json.dumps(config).encode(), "application/json")
        response = self.client.post(reverse("runs:new"), {
            "name": "uploaded", "preset_name": "demo-cpu", "config_file": upload})  # fmt: skip
        run = Run.objects.get()
        assert response.status_code == 302 and run.name == "uploaded"
        assert run.config == config

    def test_bad_json_and_a_bad_key_are_shown_at_the_json_box(self):
        self.login(self.owner)
        for text, message in (
            ("{not json", "not valid JSON"),
            ("[1, 2]", "expected a JSON object"),
            ('{"actor": {"lrr": 1}}', "unknown key 'actor.lrr' (did you mean 'actor.lr'?)"),
        ):
            response = self.client.post(reverse("runs:new"), {
                "name": "x", "preset_name": "demo-cpu", "config_json": text})  # fmt: skip
            assert response.status_code == 400
            assert message in " ".join(response.context["form"].errors["config_json"])
        assert not Run.objects.exists()
