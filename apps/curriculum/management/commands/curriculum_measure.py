"""`python manage.py curriculum_measure --actor DIR [--critic DIR] [--orm DIR] [--seeds 40]
[--cap 40]`: a demo-sized curriculum round on the built-in world (served in-process), printed as
JSON (see `apps.curriculum.measure`). Creates a run named "curriculum measure ..." in the DB."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.curriculum.measure import measure
from sandbox.server import free_port_block


class Command(BaseCommand):
    help = (
        "Measure one demo-sized curriculum round (filters, success on kept tasks, diversity, ORM)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--actor", required=True, help="HF directory of the current policy")
        parser.add_argument("--critic", default=None, help="critic directory (none: phase 0)")
        parser.add_argument("--orm", default=None, help="ORM directory")
        parser.add_argument("--seeds", type=int, default=40, help="train tasks rolled out")
        parser.add_argument("--cap", type=int, default=40, help="tasks kept per phase")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: object, **o: object) -> None:
        from sandbox.server import WorldThread

        with WorldThread(instances=1, port=free_port_block()) as world:
            settings.WORLD_URL = world.url
            result = measure(
                actor=o["actor"], critic=o["critic"], orm=o["orm"], seeds=o["seeds"],
                cap=o["cap"], world_url=world.url, chromium=settings.CHROMIUM_PATH, seed=o["seed"],
            )  # fmt: skip
        self.stdout.write(json.dumps(result, sort_keys=True))
