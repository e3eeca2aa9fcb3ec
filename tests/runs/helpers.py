"""Shared builders for the run tests: a tiny config, task rows from the world, a run row."""

from __future__ import annotations

from trainer.config import preset

TINY = [
    "model.hidden_size=64",
    "model.intermediate_size=128",
    "model.num_layers=2",
    "model.num_heads=2",
    "model.vocab_size=1024",
    "rollout.max_steps=3",
    "rollout.max_new_tokens=24",
    "rollout.tasks_per_phase=3",
    "rollout.slots=2",
    "rollout.contexts=2",
    "rollout.batch_size=4",
    "eval.max_tokens=24",
    "orm.epochs=1",
    "sft.epochs=2",
    "sft.demo_tasks=0",
    "model.pretrain_steps=4",
    "engine.max_seq_len=512",
    "engine.micro_batch=4",
    "run.phases=1",
]


def tiny_config(phases: int = 1, extra: list[str] | None = None) -> dict:
    return (
        preset("demo-cpu").with_overrides([*TINY, f"run.phases={phases}", *(extra or [])]).to_dict()
    )


def make_tasks(n_train: int, n_test: int, sites: tuple[str, ...] = ("shopping",)) -> list:
    """Task rows from the world's own task lists (a handful per split)."""
    from apps.curriculum.models import Task
    from sandbox.tasks import load_tasks

    rows = []
    for split, n in (("train", n_train), ("test", n_test)):
        configs = [c for c in load_tasks(split) if c["sites"][0] in sites and len(c["sites"]) == 1]
        for config in configs[:n]:
            rows.append(
                Task.objects.create(
                    key=f"sandbox:{split}:{config['task_id']}",
                    config=config,
                    intent=config["intent"],
                    sites=config["sites"],
                    world="sandbox",
                    split=split,
                )
            )
    return rows


def make_run(owner, config: dict, name: str = "tiny"):
    from apps.runs.models import Run

    return Run.objects.create(owner=owner, name=name, config=config)
