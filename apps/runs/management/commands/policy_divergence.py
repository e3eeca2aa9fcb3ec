"""`python manage.py policy_divergence --run ID [--phase N] [--examples K] [--json]`: where the run's
evaluation episodes first left the oracle's path on the same test tasks (`apps.runs.divergence`).

`--coverage [--purpose demo|heldout]` instead counts the oracle's steps that the run's valid-action
set (`rollout.decoding="valid_actions"`) holds: the tasks a policy could not solve along the
oracle's path however well it chose."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from apps.runs.divergence import DivergenceError, divergence_report, valid_action_coverage
from apps.runs.models import Run
from trainer.bench.divergence import CLASSES


class Command(BaseCommand):
    help = "Where a run's evaluation episodes first differ from the oracle's, and how."

    def add_arguments(self, parser):
        parser.add_argument("--run", type=int, required=True)
        parser.add_argument("--phase", type=int, default=None,
                            help="the evaluation of this phase (default: the latest)")  # fmt: skip
        parser.add_argument("--examples", type=int, default=3, help="examples per class")
        parser.add_argument("--templates", type=int, default=15,
                            help="templates listed in the text report, most failed first")  # fmt: skip
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--coverage", action="store_true",
                            help="the oracle's steps the valid-action set holds, instead")  # fmt: skip
        parser.add_argument("--purpose", choices=("demo", "heldout"), default="demo",
                            help="--coverage of phase 0's demonstrations or of the held-out test tasks")  # fmt: skip

    def handle(self, *args, run, phase, examples, templates, json: bool, **options):
        found = Run.objects.filter(pk=run).first()
        if found is None:
            raise CommandError(f"no run {run}")
        if options["coverage"]:
            try:
                cover = valid_action_coverage(found, options["purpose"])
            except DivergenceError as exc:
                raise CommandError(str(exc)) from None
            if json:
                self.stdout.write(_dumps(cover))
                return
            self.stdout.write(
                f"run {cover['run']}, {cover['purpose']}: {cover['steps_outside']} of "
                f"{cover['steps']} oracle steps are outside the valid-action set; "
                f"{cover['tasks_with_a_step_outside']} of {cover['tasks']} tasks have one"
            )
            for kind, n in cover["outside_by_kind"].items():
                self.stdout.write(f"  {kind:<24} {n:>5} of {cover['steps_by_kind'][kind]}")
            for template, n in list(cover["outside_by_template"].items())[:templates]:
                self.stdout.write(f"  {n:>4}  {template[:90]}")
            return
        try:
            report = divergence_report(found, phase, max(examples, 0))
        except DivergenceError as exc:
            raise CommandError(str(exc)) from None
        if json:
            self.stdout.write(_dumps(report))
            return
        n = report["episodes"]
        self.stdout.write(f"run {report['run']}, phase {report['phase']}: {n} evaluation episodes "
                          "with an oracle episode of the same task")  # fmt: skip
        for cls in CLASSES:
            count = report["by_class"][cls]
            self.stdout.write(f"  {cls:<9} {count:>4}  {100 * count / max(n, 1):5.1f}%")
        if report["kind_changes"]:
            self.stdout.write("another kind of action (policy -> oracle):")
            for change, count in report["kind_changes"].items():
                self.stdout.write(f"  {count:>4}  {change}")
        self.stdout.write("first difference by step: " + ", ".join(
            f"{k} {v}" for k, v in report["by_class_and_step"].items()))  # fmt: skip
        ranked = sorted(report["by_template"].items(),
                        key=lambda kv: (-sum(v for c, v in kv[1].items() if c != "solved"), kv[0]))  # fmt: skip
        self.stdout.write("templates (most failed first):")
        for template, counts in ranked[:templates]:
            parts = ", ".join(f"{c} {counts[c]}" for c in CLASSES if counts.get(c))
            self.stdout.write(f"  {template[:70]:<70}  {parts}")
        for cls, shown in report["examples"].items():
            self.stdout.write(f"examples of {cls}:")
            for e in shown:
                self.stdout.write(f"  [{e['step']}] {e['intent'][:90]}")
                self.stdout.write(f"      policy: {e['policy'][:110]}")
                self.stdout.write(f"      oracle: {e['oracle'][:110]}")


def _dumps(report: dict) -> str:
    return json.dumps(report)
