"""One curriculum round end to end: failed rollouts of real world tasks in Postgres, the offline
generator, a real tiny critic scoring start pages observed in Chromium on a served world, and the
`curriculum_step` command; re-running the round creates no duplicates."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from transformers import LlamaConfig, LlamaModel

from apps.curriculum.models import Task
from apps.curriculum.round import run_curriculum_round
from apps.rollouts.models import Trajectory
from apps.runs.models import Phase, Run
from sandbox.server import WorldThread
from sandbox.server import free_port_block as free_ports
from sandbox.tasks import load_tasks
from trainer.config import preset
from trainer.learn.critic import Critic
from trainer.learn.tokenizer import eot_id, pad_id, train_tokenizer

pytestmark = [pytest.mark.django_db(transaction=False), pytest.mark.browser]


@pytest.fixture(scope="module")
def world():
    with WorldThread(instances=1, port=free_ports()) as thread:
        yield thread


class RecordingCritic:
    """A real (tiny, untrained) critic that also keeps the prompts it scored."""

    def __init__(self):
        texts = [c["intent"] for c in load_tasks("train")[:200]] + ["<html> <a id=1> x </a>"]
        tokenizer = train_tokenizer(texts, vocab_size=500)
        body = LlamaModel(
            LlamaConfig(
                vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                max_position_embeddings=512, eos_token_id=eot_id(tokenizer),
                pad_token_id=pad_id(tokenizer),
            )
        )  # fmt: skip
        self.critic = Critic(body, tokenizer, max_seq_len=256)
        self.prompts: list[str] = []

    def values(self, prompts):
        self.prompts.extend(prompts)
        return self.critic.values(prompts)


def failed_run(cast, approval: str = "auto") -> tuple[Run, Phase, list[Task]]:
    config = preset("demo-cpu").with_overrides(
        ["curriculum.tasks_per_phase=6", f"curriculum.approval={approval}"]
    )
    run = Run.objects.create(owner=cast[0], name="demo", config=config.to_dict())
    phase = Phase.objects.create(run=run, index=1)
    train = load_tasks("train")
    picked = [c for c in train if c["sites"] == ["reddit"]][:3]
    picked += [c for c in train if c["sites"] == ["shopping"]][:2]
    tasks = []
    for i, config_ in enumerate(picked):
        task = Task.objects.create(
            key=f"sandbox:train:{config_['task_id']}", config=config_, intent=config_["intent"],
            sites=config_["sites"], world="sandbox", split="train",
            template_id=config_["intent_template_id"],
        )  # fmt: skip
        tasks.append(task)
        Trajectory.objects.create(
            task=task, run=run, phase=phase, status="ok", score=1.0 if i == 0 else 0.0
        )
    return run, phase, tasks


def test_a_round_stores_filtered_lineage_linked_tasks_and_a_rerun_adds_nothing(
    cast, world, settings
):
    settings.WORLD_URL = world.url
    run, phase, tasks = failed_run(cast)
    critic = RecordingCritic()
    result = run_curriculum_round(run, 1, critic=critic, embed=None)

    assert result["seeds"] == 4  # the first task was solved
    assert result["generated"] > 6
    assert result["kept"] == 6  # the cap
    rows = Task.objects.filter(run=run)
    assert rows.count() == result["created"] > 0
    failed_keys = {t.key for t in tasks[1:]}
    for row in rows:
        assert row.generating_phase == phase and row.split == "generated"
        assert {p.key for p in row.parents.all()} <= failed_keys and row.parents.exists()
        assert {"dedupe", "feasibility", "critic"} <= set(row.filter_notes)
        assert row.critic_value is not None and row.has_evaluator
        assert row.generator["name"] == "offline" and row.generator["how"]
    approved = rows.filter(status="approved")
    assert approved.count() == 6
    assert all(r.filter_notes["balance"]["keep"] for r in approved)
    assert {s for r in approved for s in r.sites} == {"reddit", "shopping"}
    # The critic read each start page as the browser saw it on the world, not a fixed snapshot.
    assert critic.prompts and all(p.startswith("Task Instruction: ") for p in critic.prompts)
    assert any("data-bbox" in p or "id=" in p for p in critic.prompts)
    assert any("Postmill" in p or "forum" in p.lower() for p in critic.prompts)

    again = run_curriculum_round(run, 1, critic=critic, embed=None)
    assert again["created"] == 0 and again["existing"] > 0
    assert Task.objects.filter(run=run).count() == rows.count()


def test_the_command_prints_counts_per_filter_and_site_as_json(cast, world, settings):
    settings.WORLD_URL = world.url
    run, _, _ = failed_run(cast, approval="reviewer")
    out = io.StringIO()
    call_command("curriculum_step", "--run", str(run.pk), "--json", stdout=out)
    result = json.loads(out.getvalue())
    assert result["run"] == run.pk and result["phase"] == 1
    assert result["generated"] == sum(row["generated"] for row in result["per_site"].values())
    assert {"dropped_dedupe", "dropped_feasibility", "dropped_critic", "dropped_balance"} <= set(
        result
    )
    # No critic checkpoint yet: nothing is dropped for difficulty, and the reason says why.
    assert result["dropped_critic"] == 0
    row = Task.objects.filter(run=run).first()
    assert "no critic yet" in row.filter_notes["critic"]["reason"]
    # Approval by a reviewer: kept tasks wait as proposed.
    assert Task.objects.filter(run=run, status="proposed").count() == result["kept"]
    assert not Task.objects.filter(run=run, status="approved").exists()


def test_the_command_reports_a_missing_run_clearly(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no run with id 999999"):
        call_command("curriculum_step", "--run", "999999")
