"""`manage.py import_tasks`: all 165 WebArena-Lite configs import, idempotently; bad ones say why."""

import copy
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.curriculum.management.commands.import_tasks import LITE_PATH
from apps.curriculum.models import Task
from tests.env.test_webarena import LITE

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command("import_tasks", *[str(a) for a in args], stdout=out)
    return out.getvalue()


def test_all_165_webarena_lite_tasks_import_and_reimport_idempotently():
    first = json.loads(run(LITE, "--world", "webarena", "--json"))
    assert first == {"ok": 165, "errors": []}
    second = json.loads(run(LITE, "--world", "webarena", "--json"))
    assert second == first
    assert Task.objects.filter(world="webarena").count() == 165
    task = Task.objects.get(key="webarena:0")
    assert task.intent == "What are the top-3 best-selling product in Jan 2023"
    assert task.sites == ["shopping_admin"]
    assert (task.split, task.origin, task.status) == ("test", "seed", "approved")
    assert task.config["start_url"] == "__SHOPPING_ADMIN__"  # stored raw, resolved at rollout time


def test_without_a_path_the_vendored_webarena_lite_set_imports():
    assert LITE_PATH == LITE
    assert json.loads(run("--world", "webarena", "--json")) == {"ok": 165, "errors": []}
    assert Task.objects.filter(world="webarena", split="test").count() == 165


def test_dry_run_writes_nothing():
    out = run(LITE, "--world", "webarena", "--dry-run")
    assert "165 tasks would import" in out
    assert Task.objects.count() == 0


def test_bad_records_are_reported_by_index_and_good_ones_still_import(tmp_path):
    data = json.loads(LITE.read_text())[:3]
    broken = copy.deepcopy(data[1])
    broken["eval"]["eval_types"] = ["vibes"]
    data[1] = broken
    data.append({"task_id": 99})
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(data))
    got = json.loads(run(path, "--world", "webarena", "--json"))
    assert got["ok"] == 2
    assert [e["index"] for e in got["errors"]] == [1, 3]
    assert "unknown eval type 'vibes'" in got["errors"][0]["reason"]
    assert Task.objects.count() == 2


def test_a_site_without_a_configured_url_is_a_record_error(tmp_path, settings):
    settings.WEBARENA_URLS = {k: v for k, v in settings.WEBARENA_URLS.items() if k != "map"}
    data = [r for r in json.loads(LITE.read_text()) if r["sites"] == ["map"]][:1]
    path = tmp_path / "map.json"
    path.write_text(json.dumps(data))
    got = json.loads(run(path, "--world", "webarena", "--json"))
    assert got["ok"] == 0
    assert "no URL for site 'map'" in got["errors"][0]["reason"]


def test_unreadable_files_are_command_errors(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        run(tmp_path / "missing.json", "--world", "webarena")
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(CommandError, match="not JSON"):
        run(bad, "--world", "webarena")
