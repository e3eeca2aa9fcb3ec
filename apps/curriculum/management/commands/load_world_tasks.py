"""`python manage.py load_world_tasks [--seed N] [--json]`: store the built-in world's train and test
tasks as Task rows keyed `sandbox:<split>:<task_id>` (`sandbox@N:<split>:<task_id>` for a world built
from seed N != 0), idempotently (update_or_create)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand
from django.db import transaction

from apps.curriculum.models import Task, world_task_key
from sandbox import DEFAULT_SEED
from sandbox.tasks import SPLITS, load_tasks


def store_world_tasks(
    splits: tuple[str, ...] = SPLITS, seed: int = DEFAULT_SEED
) -> dict[str, dict[str, int]]:
    """Create or update one Task row per task of the world built from `seed`; returns
    {split: {created, updated}}."""
    counts = {}
    for split in splits:
        created = updated = 0
        with transaction.atomic():
            for config in load_tasks(split, seed):
                _, was_created = Task.objects.update_or_create(
                    key=world_task_key(split, config["task_id"], seed),
                    defaults={
                        "config": config,
                        "intent": config["intent"],
                        "sites": list(config["sites"]),
                        "world": Task.World.SANDBOX,
                        "world_seed": seed,
                        "split": split,
                        "origin": Task.Origin.SEED,
                        "status": Task.Status.APPROVED,
                        "has_evaluator": True,
                        "template_id": config["intent_template_id"],
                    },
                )
                created += int(was_created)
                updated += int(not was_created)
        counts[split] = {"created": created, "updated": updated}
    return counts


class Command(BaseCommand):
    help = "Store the built-in world's train and test tasks as Task rows (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="print the counts as JSON")
        parser.add_argument(
            "--seed",
            type=int,
            default=DEFAULT_SEED,
            help="the tasks of the world built from this seed (serve it with `world serve --seed`)",
        )

    def handle(self, *args: object, **options: object) -> None:
        counts = store_world_tasks(seed=int(options["seed"]))
        if options["json"]:
            self.stdout.write(json.dumps(counts))
            return
        for split, c in counts.items():
            self.stdout.write(f"{split}: {c['created']} created, {c['updated']} updated")
