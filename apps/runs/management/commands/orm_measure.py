"""`python manage.py orm_measure --run ID [--json] [--retrain [--set K=V ...]] [--judge-url URL
--judge-model NAME] [--skip-run-orms]`: how well a run's ORMs tell success from failure, against
ground truth.

For each ORM of the run: accuracy, balanced accuracy, precision, recall, specificity and the
counts of successes and failures judged, on the held-out test-task groups (oracle successes,
policy successes and failures, near-misses, each alone and all together) and on each phase's own
rollouts. `--retrain` also trains the phase-0 ORM again from the run's data with this code and
the `--set` overrides (minutes on 2 cores); `--judge-url` also measures an LLM judge.
"""

from __future__ import annotations

import json as jsonlib

from django.core.management.base import BaseCommand, CommandError

from apps.runs.models import Run

COLUMNS = ("n_success", "n_failure", "accuracy", "balanced_accuracy", "precision", "recall",
           "specificity")  # fmt: skip


class Command(BaseCommand):
    help = "Figures of a run's ORMs (and a retrained one or an LLM judge) against ground truth."

    def add_arguments(self, parser):
        parser.add_argument("--run", type=int, required=True, metavar="RUN_ID")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.add_argument("--retrain", action="store_true",
                            help="also retrain the phase-0 ORM from the run's data")  # fmt: skip
        parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                            help="config overrides for --retrain")  # fmt: skip
        parser.add_argument("--skip-run-orms", action="store_true",
                            help="measure only the retrained ORM or the judge, not the run's own")  # fmt: skip
        parser.add_argument("--judge-url", default="", help="an OpenAI-compatible /v1 URL")
        parser.add_argument("--judge-model", default="", help="the judge's model name")

    def handle(self, *args, run: int, json: bool, retrain: bool, set: list[str], **opts):
        from apps.runs.orm_measure import measure_run_orms
        from trainer.config import ConfigError

        if not Run.objects.filter(pk=run).exists():
            raise CommandError(f"no run {run}")
        if bool(opts["judge_url"]) != bool(opts["judge_model"]):
            raise CommandError("--judge-url and --judge-model go together")
        judge = (opts["judge_url"], opts["judge_model"]) if opts["judge_url"] else None
        try:
            result = measure_run_orms(
                run, retrain=set if retrain else None, judge=judge,
                run_orms=not opts["skip_run_orms"],
            )  # fmt: skip
        except (ValueError, ConfigError) as exc:
            raise CommandError(str(exc)) from None
        if json:
            self.stdout.write(jsonlib.dumps(result, indent=2, sort_keys=True))
            return
        self.stdout.write(f"run {run}: held out {result['heldout_counts']}")
        entries = [(f"ORM of phase {o['phase']} (#{o['checkpoint']})", o) for o in result["orms"]]
        if "retrained" in result:
            entries.append((f"retrained {result['retrained']['overrides']}", result["retrained"]))
        if "judge" in result:
            entries.append((f"judge {result['judge']['model']}", result["judge"]))
        for title, entry in entries:
            self.stdout.write(f"{title}: threshold {entry['threshold']:.3f}")
            self.stdout.write("  " + f"{'set':<34}" + "".join(f"{c[:11]:>12}" for c in COLUMNS))
            rows = [*entry["heldout"].items()]
            rows += [(f"rollouts of phase {p}", m) for p, m in entry["rollouts"].items()]
            for name, m in rows:
                cells = "".join(
                    f"{int(m[c]):>12}" if c.startswith("n_") else f"{m[c]:>12.3f}" for c in COLUMNS
                )
                self.stdout.write(f"  {name:<34}{cells}")
