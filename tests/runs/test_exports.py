"""`export_dataset`: every kind and format loads back with Hugging Face `datasets`; the ORM export
carries the effective label (a human label wins) and its source; filters and refusals."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from apps.curriculum.models import Task
from apps.reviews.services import add_human_label
from apps.rollouts.models import Trajectory
from apps.runs.exports import ExportSpec, write_export
from tests.conftest import make_cast
from tests.web.factories import make_phase, make_run, make_task, make_trajectory
from trainer.learn.data import read_steps
from trainer.prompts import ORM_SYSTEM

pytestmark = pytest.mark.django_db


@pytest.fixture
def load(tmp_path, monkeypatch):
    """datasets.load_dataset on a local file, offline, with its cache in tmp."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets

    def load(path, fmt: str):
        builder = "parquet" if fmt == "parquet" else "json"
        return datasets.load_dataset(
            builder, data_files=str(path), split="train", cache_dir=str(tmp_path / "hf-cache")
        )

    return load


@pytest.fixture
def world(django_user_model):
    """A run with: a phase-0 oracle demo (ground truth), phase-1 rollouts judged by the ORM, one
    of them relabelled by a reviewer, an eval trajectory, and generated tasks."""
    owner, reviewer, _ = make_cast(django_user_model)
    run = make_run(owner, name="export-run")
    p0, p1 = make_phase(run, 0), make_phase(run, 1)
    demo = make_trajectory(run, phase=p0, purpose=Trajectory.Purpose.DEMO, p_yes=None, score=1.0, steps=3)  # fmt: skip
    orm_yes = make_trajectory(run, phase=p1, p_yes=0.9, score=1.0, steps=2)
    overruled = make_trajectory(run, phase=p1, p_yes=0.8, score=0.0, steps=2)
    add_human_label(reviewer, overruled, False, "it stopped early")
    orm_no = make_trajectory(run, phase=p1, p_yes=0.1, score=0.0, steps=1)
    evaluation = make_trajectory(run, phase=p1, purpose=Trajectory.Purpose.EVAL, p_yes=None, score=1.0)  # fmt: skip
    generated = {
        status: make_task(f"Star repo {status}", origin=Task.Origin.GENERATED, split=Task.Split.GENERATED,
                          status=status, run=run, generating_phase=p1, critic_value=0.4,
                          config={"intent": f"Star repo {status}", "eval": {"eval_types": ["url_match"]}})
        for status in (Task.Status.APPROVED, Task.Status.PROPOSED)
    }  # fmt: skip
    generated[Task.Status.APPROVED].parents.add(demo.task)
    return {"run": run, "demo": demo, "orm_yes": orm_yes, "overruled": overruled,
            "orm_no": orm_no, "eval": evaluation, "tasks": generated}  # fmt: skip


def _export(tmp_path, world, kind, fmt, **kw):
    out = tmp_path / f"{kind}.{fmt}"
    count = write_export(ExportSpec(world["run"].pk, kind, fmt, **kw), out)
    return out, count


def test_sft_steps_load_back_in_every_format_and_the_trainer_reads_the_jsonl(tmp_path, world, load):
    # successes by effective label: the demo (3 steps, ground truth) and orm_yes (2 steps, ORM)
    for fmt in ("jsonl", "parquet", "sharegpt", "alpaca"):
        out, count = _export(tmp_path, world, "sft", fmt)
        rows = load(out, fmt)
        assert count == len(rows) == 5
        assert {r["trajectory_id"] for r in rows} == {world["demo"].pk, world["orm_yes"].pk}
    steps = load(tmp_path / "sft.jsonl", "jsonl")
    first = steps[0]
    assert (
        first["observation"].startswith("Task Instruction: ")
        and first["label_source"] == "ground_truth"
    )
    assert first["action"] == 'do(action="Click", element="0")'.join(
        ["# Element: the button\n", ""]
    )
    assert [r["done"] for r in steps][:3] == [False, False, True]
    assert len(read_steps(tmp_path / "sft.jsonl")) == 5  # `python -m trainer sft --data` input
    chat = load(tmp_path / "sft.sharegpt", "sharegpt")[0]
    assert [t["from"] for t in chat["conversations"]] == ["human", "gpt"]
    assert chat["conversations"][0]["value"] == first["observation"]
    alpaca = load(tmp_path / "sft.alpaca", "alpaca")[0]
    assert (alpaca["instruction"], alpaca["input"], alpaca["output"]) == (first["observation"], "", first["action"])  # fmt: skip


def test_orm_examples_carry_the_effective_label_and_its_source(tmp_path, world, load):
    for fmt in ("jsonl", "parquet", "sharegpt", "alpaca"):
        out, _ = _export(tmp_path, world, "orm", fmt)
        rows = load(out, fmt)
        labels = {r["trajectory_id"]: (r["label"], r["label_source"]) for r in rows}
        assert labels == {
            world["demo"].pk: (True, "ground_truth"),
            world["orm_yes"].pk: (True, "orm"),
            world["overruled"].pk: (False, "human"),  # the ORM said YES (0.8); the human wins
            world["orm_no"].pk: (False, "orm"),
        }
        assert world["eval"].pk not in labels  # test-split trajectories are never training data
    jsonl = {r["trajectory_id"]: r for r in load(tmp_path / "orm.jsonl", "jsonl")}
    overruled = jsonl[world["overruled"].pk]
    assert overruled["completion"] == "NO" and overruled["orm_p_yes"] == pytest.approx(0.8)
    assert overruled["prompt"].endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    chat = {r["trajectory_id"]: r for r in load(tmp_path / "orm.sharegpt", "sharegpt")}
    turns = chat[world["overruled"].pk]["conversations"]
    assert (
        turns[1] == {"from": "gpt", "value": "NO"}
        and chat[world["overruled"].pk]["system"] == ORM_SYSTEM
    )
    assert turns[0]["value"] == overruled["user"]


def test_generated_tasks_load_back_with_their_config_and_lineage(tmp_path, world, load):
    for fmt in ("jsonl", "parquet"):
        out, count = _export(tmp_path, world, "tasks", fmt)
        rows = load(out, fmt)
        assert count == 2 and {r["status"] for r in rows} == {"approved", "proposed"}
    approved = _export(tmp_path, world, "tasks", "jsonl", approved_only=True)[0]
    (row,) = load(approved, "jsonl")
    assert json.loads(row["config"])["eval"] == {"eval_types": ["url_match"]}
    assert row["parents"] == [world["demo"].task.key] and row["phase"] == 1


def test_phase_and_approved_only_filter_and_an_empty_export_is_an_error(tmp_path, world, load):
    out, count = _export(tmp_path, world, "orm", "jsonl", phase=0)
    assert count == 1 and load(out, "jsonl")[0]["trajectory_id"] == world["demo"].pk
    Task.objects.filter(pk=world["orm_yes"].task_id).update(status=Task.Status.PROPOSED)
    _, count = _export(tmp_path, world, "orm", "parquet", approved_only=True)
    assert count == 3
    with pytest.raises(ValueError, match="nothing to export: run .* no sft rows in phase 5"):
        _export(tmp_path, world, "sft", "jsonl", phase=5)
    assert not (tmp_path / "sft.jsonl").exists()
    with pytest.raises(ValueError, match="format: tasks export as jsonl or parquet"):
        _export(tmp_path, world, "tasks", "alpaca")


def test_the_command_writes_the_file_and_prints_how_to_load_it(tmp_path, world, load, capsys):
    out = tmp_path / "nested" / "orm.jsonl"
    call_command("export_dataset", "--run", str(world["run"].pk), "--kind", "orm",
                 "--format", "sharegpt", "--phase", "1", "--out", str(out))  # fmt: skip
    printed = capsys.readouterr().out
    assert f"wrote 3 orm rows to {out}" in printed
    assert '"formatting": "sharegpt"' in printed and 'load_dataset("json"' in printed
    assert len(load(out, "sharegpt")) == 3
    with pytest.raises(CommandError, match="no run 999999"):
        call_command("export_dataset", "--run", "999999", "--kind", "sft", "--out", str(out))
