"""`python manage.py curriculum_step --run ID [--phase N] [--json]`: one generation-and-filter
round for a run (see `apps.curriculum.round`); prints counts generated, kept and dropped per filter
and per site."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from apps.curriculum.round import FILTERS, run_curriculum_round
from apps.runs.models import Run
from trainer.config import ConfigError
from trainer.curriculum.generators import CurriculumError


class Command(BaseCommand):
    help = "Run one curriculum round (generate from failures, filter, store) for a run's phase."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--run", type=int, required=True, help="the run's id")
        parser.add_argument("--phase", type=int, default=None, help="phase index (default: latest)")
        parser.add_argument("--json", action="store_true", help="print the counts as JSON")

    def handle(self, *args: object, **options: object) -> None:
        try:
            run = Run.objects.get(pk=options["run"])
        except Run.DoesNotExist:
            raise CommandError(f"no run with id {options['run']}") from None
        try:
            result = run_curriculum_round(run, options["phase"])
        except (CurriculumError, ConfigError) as exc:
            raise CommandError(str(exc)) from exc
        phase = options["phase"]
        if phase is None:
            phase = run.phases.order_by("-index").values_list("index", flat=True).first()
        result = {"run": run.pk, "phase": phase, **result}
        if options["json"]:
            self.stdout.write(json.dumps(result, sort_keys=True))
            return
        dropped = ", ".join(f"{name} {result[f'dropped_{name}']}" for name in FILTERS)
        self.stdout.write(
            f"run {run.pk}: {result['seeds']} failed seeds, {result['generated']} generated, "
            f"{result['kept']} kept (dropped by {dropped}); "
            f"{result['created']} new rows, {result['existing']} already stored"
        )
        for site, row in result["per_site"].items():
            self.stdout.write(f"  {site}: {row['generated']} generated, {row['kept']} kept")
