"""`python manage.py orm_measure --run ID [--json]`: phase 0's ORM with and without label balance.

Retrains the run's initial ORM on its own phase-0 data under each setting of `orm.balance` and
reports accuracy, precision, recall and specificity against the ground truth of the run's later
trajectories. Takes a few minutes on 2 cores for the demo-cpu model.
"""

from __future__ import annotations

import json as jsonlib

from django.core.management.base import BaseCommand, CommandError

from apps.runs.models import Run


class Command(BaseCommand):
    help = "Retrain a run's phase-0 ORM with orm.balance off and on; score its later trajectories."

    def add_arguments(self, parser):
        parser.add_argument("--run", type=int, required=True, metavar="RUN_ID")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                            help="applied to both variants")  # fmt: skip

    def handle(self, *args, run: int, json: bool, set: list[str], **opts):
        from apps.runs.orm_measure import measure_orm_variants
        from trainer.config import ConfigError

        if not Run.objects.filter(pk=run).exists():
            raise CommandError(f"no run {run}")
        variants = {
            "unbalanced": [*set, "orm.balance=false"],
            "balanced": [*set, "orm.balance=true"],
        }
        try:
            result = measure_orm_variants(run, variants)
        except (ValueError, ConfigError) as exc:
            raise CommandError(str(exc)) from None
        if json:
            self.stdout.write(_dumps(result))
            return
        self.stdout.write(
            f"run {run}: trained on {result['train_examples']} phase-0 examples "
            f"({result['train_positives']} YES); judged {result['judged']} later trajectories "
            f"({result['judged_successes']} successful by ground truth)"
        )
        for name, v in result["variants"].items():
            m = v["later"]
            self.stdout.write(
                f"  {name:<11} accuracy {m['orm/accuracy']:.3f}  precision {m['orm/precision']:.3f}"
                f"  recall {m['orm/recall']:.3f}  specificity {m['orm/specificity']:.3f}"
                f"  YES {v['said_yes']}  ({v['seconds']} s)"
            )


def _dumps(result: dict) -> str:
    return jsonlib.dumps(result, indent=2, sort_keys=True)
