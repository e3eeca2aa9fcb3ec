"""Hostile input to every form, filter and import: huge sizes, NUL, NaN, deep JSON, wrong types.
Each gets a clear error (a 4xx page or a message), never a 500, and nothing stored changes."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from apps.curriculum.models import Task, TaskEdit
from apps.reviews.models import HumanLabel
from apps.rollouts.models import Trajectory
from apps.runs.forms import LaunchForm
from apps.runs.models import Run
from tests.conftest import make_cast
from trainer.curriculum.generators import llm_task_config

pytestmark = pytest.mark.django_db

HUGE = "x" * 1_000_000
DEEP = "[" * 100_000 + "]" * 100_000
STRINGS = ["\x00", "a\x00b", HUGE, "NaN", "Infinity", "-1", "1e999", "99999999999999999999999",
           DEEP, "\ufffd\u202e", "<script>alert(1)</script>", "", " "]  # fmt: skip
TRIED = {"n": 0}


@pytest.fixture(scope="module", autouse=True)
def count_inputs():
    """How many hostile requests and imports were tried (var/hostile-inputs.json, for reports)."""
    yield
    from tests.conftest import ROOT

    (ROOT / "var").mkdir(exist_ok=True)
    (ROOT / "var" / "hostile-inputs.json").write_text(json.dumps({"tried": TRIED["n"]}))


@pytest.fixture
def scene(django_user_model):
    owner, reviewer, outsider = make_cast(django_user_model)
    run = Run.objects.create(owner=owner, name="r", config=LaunchForm().initial or {})
    config = llm_task_config("Open the forum", "reddit", "__REDDIT__")
    gen = Task.objects.create(key="gen:1", config=config, intent=config["intent"], sites=["reddit"],
                              world="sandbox", split="generated", origin="generated",
                              status="proposed", run=run)  # fmt: skip
    seed = Task.objects.create(key="sandbox:test:1", config=config, intent=config["intent"],
                               sites=["reddit"], world="sandbox", split="test")  # fmt: skip
    traj = Trajectory.objects.create(task=seed, run=run, status="ok", orm_p_yes=0.7, reward=1.0)
    return {
        "owner": owner,
        "reviewer": reviewer,
        "run": run,
        "gen": gen,
        "seed": seed,
        "traj": traj,
    }


def snapshot() -> str:
    """Everything a form or an import may change, as one comparable string."""
    rows = {
        "runs": list(Run.objects.order_by("pk").values("pk", "name", "status", "config")),
        "tasks": list(
            Task.objects.order_by("pk").values("pk", "status", "intent", "config", "sites")
        ),
        "edits": TaskEdit.objects.count(),
        "labels": HumanLabel.objects.count(),
        "trajectories": list(
            Trajectory.objects.order_by("pk").values("pk", "human_label", "reward")
        ),
    }
    return json.dumps(rows, sort_keys=True, default=str)


def _post(client, url: str, data: dict) -> int:
    TRIED["n"] += 1
    response = client.post(url, data)
    assert response.status_code < 500, (url, {k: str(v)[:40] for k, v in data.items()})
    return response.status_code


def _get(client, url: str) -> int:
    TRIED["n"] += 1
    response = client.get(url)
    assert response.status_code < 500, url[:200]
    return response.status_code


def test_the_launch_form_refuses_hostile_values_and_stores_no_run(client, scene):
    client.force_login(scene["owner"])
    form = LaunchForm()
    good = {key: form.fields[key].initial for key in form.config_keys}
    good["curriculum.critic_band"] = "0.05, 0.75"
    good["name"] = "ok"
    before = snapshot()
    numeric = [
        k
        for k in form.config_keys
        if isinstance(good[k], int | float)
        and not isinstance(good[k], bool)
        and not form.fields[k].disabled
    ]
    texts = [
        k
        for k in form.config_keys
        if isinstance(good[k], str) and k not in ("preset", "schema_version")
    ]
    for key in ["name", "curriculum.critic_band", *numeric[:12], *texts]:
        for value in STRINGS:
            if key == "name" and value.strip() and "\x00" not in value and len(value) <= 200:
                continue  # a fine name: the run would be created
            if key in texts and value not in ("\x00", "a\x00b", HUGE, DEEP):
                continue  # any other text is a fine path or name
            if isinstance(good.get(key), float) and value == "99999999999999999999999":
                continue  # a large float is a number (a learning rate of 1e23 is the user's call)
            status = _post(client, reverse("runs:new"), {**good, key: value})
            assert status in (400, 413), (key, value[:20], status)
    assert snapshot() == before


def test_labels_curation_and_cancel_refuse_hostile_values(client, scene):
    client.force_login(scene["reviewer"])
    before = snapshot()
    label_url = reverse("reviews:label", args=[scene["traj"].pk])
    for value in STRINGS + ["maybe", "yes\x00"]:
        _post(client, label_url, {"label": value, "note": "n"})
        if value in (HUGE, "\x00", "a\x00b"):
            _post(client, label_url, {"label": "yes", "note": value})
    for ids in (
        ["\x00"],
        ["-1"],
        ["1e9"],
        ["99999999999999999999999"],
        [str(i) for i in range(600)],
        [HUGE],
    ):
        for action in ("approve", "reject", "\x00", HUGE):
            _post(client, reverse("curriculum:bulk"), {"action": action, "task_ids": ids})
    _post(
        client,
        reverse("curriculum:bulk"),
        {"action": "reject", "task_ids": [scene["gen"].pk], "note": "\x00"},
    )
    _post(client, reverse("curriculum:bulk"), {"action": "reject", "task_ids": [scene["seed"].pk]})
    for raw in STRINGS + [
        json.dumps({"sites": [1, 2]}),
        json.dumps([1]),
        json.dumps({"eval": "no"}),
    ]:
        _post(client, reverse("curriculum:edit", args=[scene["gen"].pk]), {"config": raw})
        if raw in ("\x00", "a\x00b", HUGE, DEEP, "", " "):  # the others are fine intents
            _post(client, reverse("curriculum:edit", args=[scene["gen"].pk]), {"intent": raw})
    client.force_login(scene["owner"])
    _post(client, reverse("runs:cancel", args=[999999]), {})
    assert snapshot() == before


def test_filters_and_lookups_answer_hostile_query_strings_without_a_500(client, scene):
    client.force_login(scene["reviewer"])
    pages = [reverse("rollouts:list"), reverse("reviews:queue"), reverse("reviews:stats"),
             reverse("curriculum:list"), reverse("runs:list"), reverse("checkpoints"),
             reverse("reviews:export")]  # fmt: skip
    params = ("run", "status", "before", "order", "task", "phase", "purpose", "a", "b", "site", "q")
    for page in pages:
        for param in params:
            for value in ("\x00", "-1", "99999999999999999999999", "1e9", "NaN", "x" * 5000, "%00"):
                _get(client, f"{page}?{param}={value}")


def test_login_refuses_hostile_values(client, scene):
    for value in ("\x00", HUGE[:100_000], "a\x00b"):
        assert _post(client, reverse("login"), {"username": value, "password": value}) == 200


@pytest.mark.parametrize(
    "content, why",
    [
        ('[{"task_id": 1, "intent": "x", "sites": ["reddit"], "start_url": "__REDDIT__", "eval": {"eval_types": ["string_match"], "reference_answers": {"exact_match": "x"}}, "geolocation": NaN}]', "NaN"),
        ('[{"task_id": 1, "intent": "a\\u0000b", "sites": ["reddit"], "start_url": "__REDDIT__", "eval": {"eval_types": ["string_match"], "reference_answers": {"exact_match": "x"}}}]', "NUL"),
        (DEEP, "nested"),
        ('[{"task_id": "1", "intent": 5, "sites": "reddit", "start_url": [], "eval": []}]', "task_id"),
        ("[" + ",".join(["1"] * 10) + "]", "record must be an object"),
        ('{"not": "a list"}', "missing required key"),
        ("\x00\x01garbage", "not JSON"),
    ],
)  # fmt: skip
def test_import_tasks_refuses_hostile_files_and_stores_nothing(tmp_path, scene, content, why):
    path = tmp_path / "tasks.json"
    path.write_text(content)
    before = snapshot()
    out = io.StringIO()
    TRIED["n"] += 1
    try:
        call_command("import_tasks", str(path), "--world", "webarena", "--json", stdout=out)
    except CommandError as exc:
        assert why in str(exc)
    else:
        result = json.loads(out.getvalue())
        assert result["ok"] == 0 and why in json.dumps(result["errors"]), result
    assert snapshot() == before


def _api(client, method: str, path: str, key: str, body: str | None = None) -> dict:
    TRIED["n"] += 1
    kw = {"headers": {"Authorization": f"Bearer {key}"}}
    if body is not None:
        kw.update(data=body, content_type="application/json")
    response = getattr(client, method)("/api" + path, **kw)
    assert response.status_code < 500, (method, path, (body or "")[:60], response.content[:200])
    assert 400 <= response.status_code < 500, (
        method,
        path,
        (body or "")[:60],
        response.status_code,
    )
    error = response.json()["error"]  # the API's one error shape
    assert error["status"] == response.status_code and error["message"]
    return error


BODIES = [
    "",  # no body at all
    "{",  # cut short
    "\x00",
    DEEP,
    "[]",
    '"a string"',
    "NaN",
    '{"name": NaN}',
    '{"name": Infinity, "overrides": {}}',
    '{"name": 1e999}',
    '{"name": ["x"]}',
    '{"name": {"$gt": ""}}',
    json.dumps({"name": HUGE}),
    json.dumps({"name": "a\x00b"}),
    json.dumps({"name": "r", "preset": "no-such-preset"}),
    json.dumps({"name": "r", "overrides": []}),
    json.dumps({"name": "r", "overrides": {"run.phases": float("nan")}}, allow_nan=True),
    json.dumps({"name": "r", "overrides": {"run.phases": -1}}),
    json.dumps({"name": "r", "overrides": {"run.phases": 10**30}}),
    json.dumps({"name": "r", "overrides": {"actor.lr": "fast"}}),
    json.dumps({"name": "r", "overrides": {"no.such": 1}}),
    json.dumps({"name": "r", "overrides": {"rollout.server_url": "file:///etc/passwd"}}),
    json.dumps({"name": "r", "overrides": {"eval.split": "te\x00st"}}),
    json.dumps({"name": "r", "overrides": {"x" * 5000: 1}}),
]
LABEL_BODIES = ["", DEEP, "NaN", '{"label": NaN}', '{"label": "maybe"}', '{"label": null}',
                json.dumps({"label": True, "note": HUGE}), json.dumps({"label": True, "note": "\x00"}),
                '{"label": [true]}']  # fmt: skip
NOTE_BODIES = [DEEP, "NaN", '{"note": NaN}', json.dumps({"note": HUGE}),
               json.dumps({"note": "a\x00"}), '{"note": {"x": 1}}', "[1, 2]"]  # fmt: skip
QUERIES = ["run=NaN", "run=-1", "run=1e999", "run=99999999999999999999999", "status=%00",
           "page=0", "page=-5", "page_size=100000000", "phase=abc", "outcome=" + "x" * 5000,
           "labelled=maybe", "kind=%00", "run=1&run=2&run=x"]  # fmt: skip


def test_the_json_api_refuses_hostile_bodies_and_queries_and_stores_nothing(client, scene):
    """Every write of the API (a run, a label, a curation decision, a cancel) and its list
    filters: a 4xx in the API's error shape, never a 500, and the database unchanged."""
    from apps.api.services import create_token

    keys = {name: create_token(scene[name], "hostile")[1] for name in ("owner", "reviewer")}
    before = snapshot()
    for body in BODIES:
        _api(client, "post", "/runs", keys["owner"], body)
    traj, gen, run = scene["traj"].pk, scene["gen"].pk, scene["run"].pk
    for body in LABEL_BODIES:
        _api(client, "post", f"/trajectories/{traj}/labels", keys["reviewer"], body)
    for body in NOTE_BODIES:
        _api(client, "post", f"/tasks/{gen}/approve", keys["reviewer"], body)
        _api(client, "post", f"/tasks/{gen}/reject", keys["reviewer"], body)
    for path in (f"/runs/{2**63}/cancel", "/runs/0/cancel", "/runs/-1/cancel",
                 f"/trajectories/{2**70}/labels", "/tasks/NaN/approve"):  # fmt: skip
        _api(client, "post", path, keys["owner"], "{}")
    for base in ("/runs", "/trajectories", "/tasks", "/checkpoints", f"/runs/{run}/metrics",
                 f"/runs/{run}/export"):  # fmt: skip
        for query in QUERIES:
            TRIED["n"] += 1
            response = client.get(f"/api{base}?{query}",
                                  headers={"Authorization": f"Bearer {keys['owner']}"})  # fmt: skip
            assert response.status_code < 500, (base, query, response.content[:200])
    assert snapshot() == before
