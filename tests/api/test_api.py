"""The JSON API with per-user tokens: the pages' roles, the one error shape, pagination and filters,
run creation from a preset with the trainer's own messages, and every write through its service."""

from __future__ import annotations

from apps.api.services import create_token, revoke_token
from apps.curriculum.models import Task, TaskEdit
from apps.reviews.models import HumanLabel
from apps.runs.models import Checkpoint, MetricPoint, Run
from tests.web.factories import CastTestCase, make_phase, make_run, make_task, make_trajectory


class ApiTestCase(CastTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.keys = {u.username: create_token(u, "tests")[1] for u in (cls.owner, cls.reviewer, cls.outsider)}  # fmt: skip

    def call(self, method: str, path: str, user: str | None = "outsider", **kw):
        headers = {"Authorization": f"Bearer {self.keys[user]}"} if user else {}
        return getattr(self.client, method)(
            "/api" + path, content_type="application/json", headers=headers, **kw
        )

    def assert_error(self, response, status: int, code: str, field=None) -> dict:
        assert response.status_code == status, response.content
        body = response.json()
        assert set(body) == {"error"}
        error = body["error"]
        assert set(error) == {"status", "code", "message", "field", "details"}
        assert (error["status"], error["code"], error["field"]) == (status, code, field)
        return error


class AuthTests(ApiTestCase):
    def test_it_answers_401_in_the_error_shape_without_a_token(self):
        error = self.assert_error(self.call("get", "/runs", user=None), 401, "unauthenticated")
        assert "Bearer" in error["message"] and "/tokens/" in error["message"]

    def test_a_wrong_or_revoked_token_is_refused(self):
        response = self.client.get("/api/runs", headers={"Authorization": "Bearer webrl_nope"})
        self.assert_error(response, 401, "unauthenticated")
        token, raw = create_token(self.outsider, "short-lived")
        ok = self.client.get("/api/runs", headers={"Authorization": f"Bearer {raw}"})
        assert ok.status_code == 200
        assert revoke_token(self.outsider, token.pk)
        again = self.client.get("/api/runs", headers={"Authorization": f"Bearer {raw}"})
        self.assert_error(again, 401, "unauthenticated")

    def test_a_token_stores_only_a_hash_and_records_its_use(self):
        token, raw = create_token(self.reviewer, "notebook")
        assert raw not in (token.key_hash, token.prefix) and raw.startswith(token.prefix)
        self.client.get("/api/runs", headers={"Authorization": f"Bearer {raw}"})
        token.refresh_from_db()
        assert token.last_used_at is not None

    def test_an_unknown_path_and_a_wrong_method_answer_in_the_error_shape(self):
        self.assert_error(self.call("get", "/nope"), 404, "not_found")
        response = self.call("delete", "/runs")
        error = self.assert_error(response, 405, "method_not_allowed")
        assert response["Allow"] == "GET, POST" and "GET, POST" in error["message"]

    def test_the_schema_and_the_docs_are_served(self):
        schema = self.client.get("/api/openapi.json").json()
        assert {"/api/runs", "/api/runs/{run_id}/cancel", "/api/trajectories",
                "/api/trajectories/{trajectory_id}/labels", "/api/tasks/{task_id}/approve",
                "/api/checkpoints"} <= set(schema["paths"])  # fmt: skip
        assert schema["components"]["securitySchemes"]["TokenAuth"]["scheme"] == "bearer"
        docs = self.client.get("/api/docs")
        assert docs.status_code == 200 and b"swagger" in docs.content.lower()


class RunEndpointTests(ApiTestCase):
    def test_only_operators_launch_runs(self):
        for user in ("outsider", "reviewer"):
            response = self.call("post", "/runs", user, data={"name": "x"})
            self.assert_error(response, 403, "forbidden")
        assert not Run.objects.exists()

    def test_an_operator_launches_from_a_preset_with_overrides(self):
        overrides = {"actor.lr": 3e-5, "run.phases": 2, "engine.device": "cpu"}
        with self.captureOnCommitCallbacks(execute=False):
            response = self.call("post", "/runs", "owner", data={"name": "sweep-1", "preset": "demo-cpu", "overrides": overrides})  # fmt: skip
        assert response.status_code == 201, response.content
        body = response.json()
        run = Run.objects.get(pk=body["id"])
        assert (run.name, run.status, run.owner) == ("sweep-1", "queued", self.owner)
        assert run.config["actor"]["lr"] == 3e-5 and run.config["run"]["phases"] == 2
        assert body["config"] == run.config and body["preset"] == "demo-cpu"

    def test_a_bad_override_answers_with_the_trainers_message_and_field(self):
        cases = [
            ({"actor.lr": "fast"}, "actor.lr", "actor.lr: expected a float, got 'fast'"),
            ({"actor.lrr": 1e-5}, "actor.lrr", "unknown key 'actor.lrr' (did you mean 'actor.lr'?)"),
            ({"curriculum.critic_band": [0.9, 0.1]}, "curriculum.critic_band", None),
            ({"run.report_to": ["tensorbord"]}, "run.report_to", None),
            ({"model.policy": "a\x00b"}, "model.policy", None),
        ]  # fmt: skip
        for overrides, field, message in cases:
            response = self.call("post", "/runs", "owner", data={"name": "bad", "overrides": overrides})  # fmt: skip
            error = self.assert_error(response, 422, "invalid_config", field)
            if message:
                assert error["message"] == message
            assert error["message"].startswith(field) or field in error["message"]
        assert not Run.objects.exists()

    def test_a_malformed_body_names_the_field(self):
        response = self.call("post", "/runs", "owner", data={"name": "", "preset": "nope"})
        error = self.assert_error(response, 422, "invalid", "name")
        assert {d["field"] for d in error["details"]} == {"name", "preset"}

    def test_a_run_comes_with_its_phases_and_latest_metrics(self):
        run = make_run(self.owner, name="alpha")
        phase = make_phase(run, 1)
        for step, value in enumerate([0.1, 0.3]):
            MetricPoint.objects.create(run=run, phase=phase, name="eval/success_rate", step=step, value=value)  # fmt: skip
        MetricPoint.objects.create(run=run, name="loss/actor", step=5, value=float("nan"))
        body = self.call("get", f"/runs/{run.pk}").json()
        assert [p["index"] for p in body["phases"]] == [1]
        assert body["latest_metrics"] == {
            "eval/success_rate": {"step": 1, "value": 0.3},
            "loss/actor": {"step": 5, "value": None},
        }
        series = self.call("get", f"/runs/{run.pk}/metrics?prefix=eval/").json()
        assert series["series"] == [{"name": "eval/success_rate", "points": [{"step": 0, "value": 0.1}, {"step": 1, "value": 0.3}]}]  # fmt: skip
        self.assert_error(self.call("get", "/runs/999999"), 404, "not_found")

    def test_only_operators_cancel_and_it_uses_the_cancel_service(self):
        run = make_run(self.owner)
        self.assert_error(self.call("post", f"/runs/{run.pk}/cancel", "reviewer"), 403, "forbidden")
        response = self.call("post", f"/runs/{run.pk}/cancel", "owner")
        assert response.json() == {"cancelled": True, "status": "cancelling"}
        again = self.call("post", f"/runs/{run.pk}/cancel", "owner").json()
        assert again == {"cancelled": False, "status": "cancelling"}

    def test_runs_page_newest_first_and_filter_by_status(self):
        runs = [make_run(self.owner, name=f"r{i}") for i in range(5)]
        runs[0].status = Run.Status.FAILED
        runs[0].save()
        first = self.call("get", "/runs?limit=2").json()
        assert [r["name"] for r in first["items"]] == ["r4", "r3"] and first["limit"] == 2
        second = self.call("get", f"/runs?limit=2&before={first['next_before']}").json()
        third = self.call("get", f"/runs?limit=2&before={second['next_before']}").json()
        assert [r["name"] for r in second["items"] + third["items"]] == ["r2", "r1", "r0"]
        assert third["next_before"] is None
        failed = self.call("get", "/runs?status=failed").json()["items"]
        assert [r["id"] for r in failed] == [runs[0].pk]
        self.assert_error(self.call("get", "/runs?limit=0"), 422, "invalid", "limit")
        self.assert_error(self.call("get", "/runs?status=lost"), 422, "invalid", "status")


class DataEndpointTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.alpha = make_run(cls.owner)
        cls.phase = make_phase(cls.alpha, 1)
        cls.win = make_trajectory(cls.alpha, phase=cls.phase, p_yes=0.9, score=1.0, steps=2)
        cls.loss = make_trajectory(cls.alpha, phase=cls.phase, p_yes=0.2, score=0.0, steps=1)
        cls.other = make_trajectory(make_run(cls.owner, name="other"), p_yes=0.6)
        cls.generated = make_task("Star the repo", origin=Task.Origin.GENERATED, status=Task.Status.PROPOSED, run=cls.alpha, generating_phase=cls.phase)  # fmt: skip
        cls.seed = make_task("A seed task")
        Checkpoint.objects.create(run=cls.alpha, phase=cls.phase, kind="actor", path="/c/a", step=9)

    def test_trajectories_filter_by_run_phase_status_and_outcome_with_steps(self):
        items = self.call("get", f"/trajectories?run={self.alpha.pk}&phase=1&outcome=success&with_steps=true").json()["items"]  # fmt: skip
        assert [t["id"] for t in items] == [self.win.pk]
        assert [s["index"] for s in items[0]["steps"]] == [0, 1]
        assert items[0]["steps"][0]["observation"] is None  # page HTML only when asked for
        assert items[0]["phase"] == 1 and items[0]["intent"] == self.win.task.intent
        failures = self.call("get", f"/trajectories?run={self.alpha.pk}&outcome=failure").json()
        assert [t["id"] for t in failures["items"]] == [self.loss.pk]
        assert failures["items"][0]["steps"] is None
        none = self.call("get", f"/trajectories?run={self.alpha.pk}&status=timeout").json()
        assert none["items"] == []
        one = self.call("get", f"/trajectories/{self.win.pk}?observations=true").json()
        assert "Step 1 button" in one["steps"][1]["observation"]

    def test_only_reviewers_post_labels_and_the_label_then_counts(self):
        path = f"/trajectories/{self.loss.pk}/labels"
        for user in ("outsider", "owner"):
            self.assert_error(self.call("post", path, user, data={"label": True}), 403, "forbidden")
        response = self.call("post", path, "reviewer", data={"label": True, "note": "it did"})
        assert response.status_code == 201
        assert response.json()["label"] is True and response.json()["user"] == "reviewer"
        self.loss.refresh_from_db()
        assert (self.loss.human_label, self.loss.reward) == (True, 1.0)
        assert HumanLabel.objects.get().note == "it did"
        self.assert_error(self.call("post", path, "reviewer", data={"label": "maybe"}), 422, "invalid", "label")  # fmt: skip

    def test_only_reviewers_curate_and_only_generated_tasks(self):
        path = f"/tasks/{self.generated.pk}/approve"
        self.assert_error(self.call("post", path, "owner"), 403, "forbidden")
        response = self.call("post", path, "reviewer", data={"note": "good"})
        assert (
            response.json()["changed"] is True and response.json()["task"]["status"] == "approved"
        )
        assert TaskEdit.objects.get(task=self.generated).action == "approve"
        rejected = self.call("post", f"/tasks/{self.generated.pk}/reject", "reviewer").json()
        assert rejected["task"]["status"] == "rejected"
        self.assert_error(self.call("post", f"/tasks/{self.seed.pk}/reject", "reviewer"), 409, "conflict")  # fmt: skip
        self.seed.refresh_from_db()
        assert self.seed.status == Task.Status.APPROVED

    def test_tasks_and_checkpoints_list_with_filters(self):
        tasks = self.call("get", f"/tasks?run={self.alpha.pk}&status=proposed").json()["items"]
        assert [t["id"] for t in tasks] == [self.generated.pk] and tasks[0]["phase"] == 1
        generated = self.call("get", "/tasks?origin=generated").json()["items"]
        assert self.seed.pk not in [t["id"] for t in generated]
        ckpts = self.call("get", f"/checkpoints?run={self.alpha.pk}&kind=actor").json()["items"]
        assert [(c["path"], c["phase"], c["step"]) for c in ckpts] == [("/c/a", 1, 9)]


class ExportEndpointTests(ApiTestCase):
    async def export(self, path: str):
        headers = {"Authorization": f"Bearer {self.keys['outsider']}"}
        response = await self.async_client.get("/api" + path, headers=headers)
        assert response.status_code == 200, response.content
        # An async iterator, read chunk by chunk as it is sent: under ASGI a sync one (a
        # FileResponse's too) is read whole into memory first.
        assert response.is_async
        body = b"".join([chunk async for chunk in response.streaming_content])
        assert int(response["Content-Length"]) == len(body)
        return response, body

    async def test_everyone_downloads_an_export_that_datasets_loads(self):
        import tempfile
        from pathlib import Path

        import datasets
        from asgiref.sync import sync_to_async

        @sync_to_async
        def arrange() -> Run:
            run = make_run(self.owner)
            phase = make_phase(run, 1)
            make_trajectory(run, phase=phase, p_yes=0.9, steps=2)
            make_trajectory(run, phase=phase, p_yes=0.1, steps=1)
            return run

        run = await arrange()
        response, body = await self.export(f"/runs/{run.pk}/export?kind=orm&format=parquet")
        assert response["Content-Type"] == "application/vnd.apache.parquet"
        assert f"run-{run.pk}-orm-parquet.parquet" in response["Content-Disposition"]
        assert response["Content-Disposition"].startswith("attachment")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "orm.parquet"
            path.write_bytes(body)
            rows = datasets.load_dataset("parquet", data_files=str(path), split="train",
                                         cache_dir=str(Path(tmp) / "cache"))  # fmt: skip
        assert sorted(rows["completion"]) == ["NO", "YES"]
        assert set(rows["label_source"]) == {"orm"}

    async def test_a_large_export_is_sent_in_chunks(self):
        from apps.api import runs as api_runs

        handle = open(__file__, "rb")  # noqa: SIM115 (file_chunks closes it)
        chunks = [chunk async for chunk in api_runs.file_chunks(handle, size=1000)]
        assert handle.closed
        with open(__file__, "rb") as whole:
            assert b"".join(chunks) == whole.read()
        assert len(chunks) > 2 and all(len(c) == 1000 for c in chunks[:-1])

    def test_an_empty_or_impossible_export_answers_in_the_error_shape(self):
        run = make_run(self.owner)
        self.assert_error(self.call("get", f"/runs/{run.pk}/export?kind=sft"), 404, "not_found")
        self.assert_error(self.call("get", f"/runs/{run.pk}/export?kind=tasks&format=alpaca"), 422, "invalid")  # fmt: skip
        self.assert_error(self.call("get", f"/runs/{run.pk}/export?kind=weights"), 422, "invalid", "kind")  # fmt: skip
