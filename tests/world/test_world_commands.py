"""`load_world_tasks` stores the splits idempotently; `world` wraps the CLI and fails clearly."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from apps.curriculum.management.commands.load_world_tasks import store_world_tasks
from apps.curriculum.models import Task
from sandbox.cli import main
from sandbox.server import free_port_block as free_ports


@pytest.mark.django_db
def test_loading_the_world_tasks_twice_keeps_one_row_per_task():
    assert store_world_tasks(("test",)) == {"test": {"created": 165, "updated": 0}}
    assert store_world_tasks(("test",)) == {"test": {"created": 0, "updated": 165}}
    rows = Task.objects.filter(world=Task.World.SANDBOX, split=Task.Split.TEST)
    assert rows.count() == 165
    row = Task.objects.get(key="sandbox:test:0")
    assert row.intent == row.config["intent"] and row.sites == row.config["sites"]
    assert row.origin == Task.Origin.SEED and row.status == Task.Status.APPROVED
    assert row.has_evaluator and row.template_id == row.config["intent_template_id"]


def test_the_world_command_needs_a_subcommand():
    with pytest.raises(CommandError, match="usage"):
        call_command("world")


def test_unknown_world_flags_are_rejected():
    with pytest.raises(SystemExit):
        call_command("world", "oracle", "--split", "holdout")


@pytest.mark.browser
def test_world_bench_prints_reset_and_page_times(capsys):
    url = f"http://127.0.0.1:{free_ports()}"
    args = ["bench", "--json", "--world-url", url, "--resets", "5", "--pages", "3"]
    assert main(args + ["--instances", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"reset_ms", "page_ms", "instances"}
    assert out["instances"] == 1 and out["pages"] == 3 and out["resets"] == 5
    assert 0 < out["reset_ms"]["median"] <= out["reset_ms"]["p95"]


@pytest.mark.browser
def test_export_sft_writes_step_records_in_the_view_asked_for(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_ports()}"
    records = {}
    for view in ("webrl", "compact"):
        out = tmp_path / f"{view}.jsonl"
        args = ["export-sft", "--world-url", url, "--instances", "1", "--limit", "1"]
        assert main(args + ["--json", "--out", str(out), "--view", view]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["solved"] == summary["trajectories"] == 1
        records[view] = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records["webrl"]) == len(records["compact"]) > 0
    assert all("data-bbox" in r["observation"] for r in records["webrl"])
    assert not any("data-bbox" in r["observation"] for r in records["compact"])
    assert [r["action"] for r in records["webrl"]] == [r["action"] for r in records["compact"]]


@pytest.mark.browser
def test_export_sft_writes_the_prompt_variant_asked_for(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_ports()}"
    out = tmp_path / "last.jsonl"
    args = ["export-sft", "--world-url", url, "--instances", "1", "--limit", "1", "--json"]
    assert main(args + ["--out", str(out), "--prompt", "instruction_last"]) == 0
    capsys.readouterr()
    records = [json.loads(line) for line in out.read_text().splitlines()]
    tail = "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
    assert records and all(
        r["observation"].endswith(f"\n\nTask Instruction: {r['task']}\n\n{tail}") for r in records
    )


@pytest.mark.django_db
def test_another_seeds_tasks_are_stored_beside_the_default_worlds(capsys):
    store_world_tasks(("test",))
    call_command("load_world_tasks", "--seed", "1", "--json")
    assert json.loads(capsys.readouterr().out)["test"]["created"] == 165
    other = Task.objects.filter(world_seed=1, split=Task.Split.TEST)
    assert other.count() == 165 == Task.objects.filter(world_seed=0, split="test").count()
    row = Task.objects.get(key="sandbox@1:test:0")
    assert row.intent != Task.objects.get(key="sandbox:test:0").intent
    assert row.config["intent"] == row.intent and row.world == Task.World.SANDBOX


@pytest.mark.django_db
def test_a_run_refuses_a_world_built_from_another_seed(settings):
    from apps.runs.browser_stage import check_world_seed
    from apps.runs.errors import StageError
    from sandbox.client import WorldClient
    from sandbox.server import WorldThread
    from trainer.config import preset

    with WorldThread(instances=1, port=free_ports()) as world:
        settings.WORLD_URL = world.url
        client = WorldClient(world.url)
        check_world_seed(client, preset("demo-cpu"))  # seed 0 both
        with pytest.raises(StageError, match=r"built from seed 0.*world serve --seed 1"):
            check_world_seed(client, preset("demo-cpu").with_overrides(["world_seed=1"]))
