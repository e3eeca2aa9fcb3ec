"""`python manage.py eval_policy --model DIR [--config demo-cpu] [--set K=V ...]
[--variant NAME=K=V[,K=V...] ...] [--test-limit N] [--json]`.

Evaluates one policy checkpoint on the test split, once per variant (config overrides on top of
`--set`; the first is the reference, "base" with no overrides when none is given), and compares
every variant with the first on the same tasks: McNemar's test and Newcombe's 95% interval. For
measuring decoding and prompt options on a trained policy without training again; each variant
is an eval-only run on the dashboard.
"""

from __future__ import annotations

import json as jsonlib
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from trainer.config import ConfigError, load_config


def parse_variant(text: str) -> tuple[str, list[str]]:
    """ "NAME=K=V,K=V" → (NAME, ["K=V", "K=V"]); "NAME=" is the config as given."""
    name, sep, sets = text.partition("=")
    if not sep or not name.strip():
        raise CommandError(f"--variant {text!r}: write NAME=SECTION.FIELD=VALUE[,...]")
    return name.strip(), [s.strip() for s in sets.split(",") if s.strip()]


class Command(BaseCommand):
    help = "Evaluate a policy checkpoint on the test split under config variants, paired."

    def add_arguments(self, parser):
        parser.add_argument("--model", required=True, help="the policy's checkpoint directory")
        parser.add_argument("--config", default="demo-cpu")
        parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
        parser.add_argument("--variant", action="append", default=[],
                            metavar="NAME=SECTION.FIELD=VALUE[,...]")  # fmt: skip
        parser.add_argument("--test-limit", type=int, default=None,
                            help="a site-balanced subset of this many test tasks")  # fmt: skip
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, model, config, set, variant, test_limit, json, **opts):
        from apps.runs.experiment import eval_variants
        from apps.runs.learning_report import comparisons_markdown
        from apps.runs.management.commands.train_run import cli_owner

        if not (Path(model) / "config.json").is_file():
            raise CommandError(f"--model {model}: not a checkpoint directory (no config.json)")
        if test_limit is not None and test_limit < 1:
            raise CommandError("--test-limit: must be >= 1")
        variants = dict(parse_variant(v) for v in variant) or {"base": []}
        if len(variants) != len(variant or [None]):
            raise CommandError("--variant: names must differ")
        try:
            cfg = load_config(config, set)
            for sets in variants.values():
                cfg.with_overrides(sets)
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        result = eval_variants(cli_owner(), cfg, model, variants, test_limit)
        if json:
            self.stdout.write(jsonlib.dumps(result, indent=2))  # rows in the order given
            return
        for name, row in result["rows"].items():
            solved = round(row["avg"] * row["n"] / 100)
            self.stdout.write(
                f"{name}: {solved}/{row['n']} ({row['avg']:.1f}%), run {row['run_id']}"
            )
        if result["comparisons"]:
            self.stdout.write(comparisons_markdown(result["comparisons"]))
