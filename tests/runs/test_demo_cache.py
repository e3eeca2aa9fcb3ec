"""Phase 0's demonstrations: every template covered, the oracle's waiting steps left out of the SFT
records, and a cache that lets a second run skip the browser for the same tasks."""

from __future__ import annotations

from collections import Counter

import pytest

from apps.curriculum.management.commands.load_world_tasks import store_world_tasks
from apps.curriculum.models import Task
from apps.rollouts.models import Step, Trajectory
from apps.runs import demo_cache
from apps.runs.browser_stage import demo_step_limit, run_inline
from apps.runs.models import Phase, Run, StageRun
from apps.runs.orchestrator import claim_stage
from apps.runs.rows import demo_rows, records_of, without_waiting_steps
from apps.runs.runner import context
from apps.runs.stages import demo_task_ids
from sandbox.server import WorldThread, free_port_block
from sandbox.tasks import load_tasks
from tests.runs.helpers import make_run, tiny_config
from trainer.config import RunConfig, preset

CLICK = '# Element: Search\ndo(action="Click", element="4")'
WAIT_1 = '# Note: waiting for the page to update\ndo(action="Hover", element="0")'
WAIT_2 = 'do(action="Hover", element="0")'
TYPE = '# Element: Name\ndo(action="Type", argument="Ada", element="7")'
EXIT = 'exit(message="done")'


def test_the_oracles_waiting_steps_are_left_out_of_the_sft_records():
    row = {
        "id": 1, "intent": "Find Ada", "site": "shopping", "score": 1.0, "reward": 1.0,
        "human_label": None,
        "observations": ["<page A>", "<page A>", "<page A>", "<page B>", "<page C>"],
        "responses": [CLICK, WAIT_1, WAIT_2, TYPE, EXIT],
        "token_ids": [None] * 5,
    }  # fmt: skip
    kept = without_waiting_steps(row)
    assert kept["responses"] == [CLICK, TYPE, EXIT]
    assert kept["observations"] == ["<page A>", "<page B>", "<page C>"]
    records = records_of([kept], 0.9)
    assert [r["action"] for r in records] == [CLICK, TYPE, EXIT]
    assert "<page B>" in records[0]["next_observation"]  # the click led to page B
    assert (
        "Hover" not in records[1]["observation"]
        and CLICK.splitlines()[1] in records[1]["observation"]
    )
    assert row["responses"][1] == WAIT_1  # the stored trajectory keeps every step


@pytest.mark.django_db
def test_phase_zero_demonstrates_every_train_template_at_least_four_times():
    store_world_tasks(("train",))
    config = preset("demo-cpu")
    chosen = Task.objects.filter(pk__in=demo_task_ids(config))
    available = Counter(t["intent_template_id"] for t in load_tasks("train"))
    per_template = Counter(chosen.values_list("template_id", flat=True))
    assert set(per_template) == set(available)  # 89 templates
    assert all(per_template[t] >= min(4, n) for t, n in available.items())
    assert chosen.count() == max(config.sft.demo_tasks, sum(min(4, n) for n in available.values()))
    assert demo_task_ids(config) == demo_task_ids(config.with_overrides(["seed=5"]))


def test_a_cache_entry_changes_with_anything_that_changes_the_episode(settings, tmp_path):
    settings.CHECKPOINT_ROOT = tmp_path
    config = preset("demo-cpu")
    task = load_tasks("train")[0]
    key = demo_cache.demo_key(task, config, 30)
    assert key == demo_cache.demo_key(dict(task), config, 30)
    others = [
        demo_cache.demo_key({**task, "start_url": task["start_url"] + "?x"}, config, 30),
        demo_cache.demo_key(task, config.with_overrides(["world_seed=1"]), 30),
        demo_cache.demo_key(task, config.with_overrides(["rollout.observation=webrl"]), 30),
        demo_cache.demo_key(task, config, 31),
    ]
    assert key not in others and len(set(others)) == len(others)
    assert demo_cache.cache_dir(config) == tmp_path / "demo-cache"


@pytest.fixture(scope="module")
def world():
    with WorldThread(instances=2, port=free_port_block()) as w:
        yield w


def demonstrate(owner, config: RunConfig, task_ids: list[int]) -> tuple[Run, int]:
    """Phase 0's demonstration part of `stage_sft`: restore, run what is left, store."""
    run = make_run(owner, config.to_dict())
    run.status = Run.Status.RUNNING
    run.save()
    phase = Phase.objects.create(run=run, index=0)
    stage = StageRun.objects.create(phase=phase, name="sft", order=0, status="pending")
    token = claim_stage(stage.pk, "test-demo-cache")
    assert token is not None
    ctx = context(stage.pk, token)
    limit = demo_step_limit(config)
    tasks = Task.objects.filter(pk__in=task_ids)
    restored = demo_cache.restore(run.pk, phase.pk, config, tasks, limit)
    run_inline(ctx, "demo", task_ids)
    demo_cache.store(phase.pk, config, limit)
    return run, restored


@pytest.mark.django_db(transaction=True)
@pytest.mark.browser
@pytest.mark.timeout(600)
def test_a_second_run_takes_its_demonstrations_from_the_cache(owner, settings, tmp_path, world):
    settings.WORLD_URL = world.url
    settings.CHECKPOINT_ROOT = tmp_path / "ckpt"
    settings.MEDIA_ROOT = tmp_path / "media"
    configs = [c for c in load_tasks("train") if c["sites"] == ["shopping"]][:3]
    ids = [
        Task.objects.create(key=f"sandbox:train:{c['task_id']}", config=c, intent=c["intent"],
                            sites=c["sites"], world="sandbox", split="train").pk
        for c in configs
    ]  # fmt: skip
    config = RunConfig.from_dict(tiny_config())

    first, restored = demonstrate(owner, config, ids)
    assert restored == 0
    demos = Trajectory.objects.filter(run=first, purpose="demo", status="ok", score=1.0)
    assert demos.count() == 3
    assert len(list((tmp_path / "ckpt" / "demo-cache").rglob("*.json.gz"))) == 3

    second, restored = demonstrate(owner, config, ids)
    assert restored == 3
    again = Trajectory.objects.filter(run=second, purpose="demo")
    assert again.count() == 3 and all(t.eval_detail.get("from_cache") for t in again)
    for old in demos:
        new = again.get(task_id=old.task_id)
        assert (new.status, new.score, new.step_count) == ("ok", 1.0, old.step_count)
        assert list(Step.objects.filter(trajectory=new).values_list("response", "observation")) == (
            list(Step.objects.filter(trajectory=old).values_list("response", "observation"))
        )
    assert records_of(demo_rows(second.pk), 0.9) == records_of(demo_rows(first.pk), 0.9)

    # another world seed is another episode: nothing to restore for it
    other = config.with_overrides(["world_seed=1"])
    tasks = Task.objects.filter(pk__in=ids)
    phase = Phase.objects.create(run=second, index=1)
    assert demo_cache.restore(second.pk, phase.pk, other, tasks, demo_step_limit(other)) == 0
