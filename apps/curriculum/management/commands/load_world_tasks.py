"""`python manage.py load_world_tasks [--json]`: store the built-in world's train and test tasks as
Task rows keyed `sandbox:<split>:<task_id>`, idempotently (update_or_create)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand
from django.db import transaction

from apps.curriculum.models import Task
from sandbox.tasks import SPLITS, load_tasks


def store_world_tasks(splits: tuple[str, ...] = SPLITS) -> dict[str, dict[str, int]]:
    """Create or update one Task row per world task; returns {split: {created, updated}}."""
    counts = {}
    for split in splits:
        created = updated = 0
        with transaction.atomic():
            for config in load_tasks(split):
                _, was_created = Task.objects.update_or_create(
                    key=f"sandbox:{split}:{config['task_id']}",
                    defaults={
                        "config": config,
                        "intent": config["intent"],
                        "sites": list(config["sites"]),
                        "world": Task.World.SANDBOX,
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

    def handle(self, *args: object, **options: object) -> None:
        counts = store_world_tasks()
        if options["json"]:
            self.stdout.write(json.dumps(counts))
            return
        for split, c in counts.items():
            self.stdout.write(f"{split}: {c['created']} created, {c['updated']} updated")
