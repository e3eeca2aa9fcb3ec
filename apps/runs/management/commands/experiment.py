"""`python manage.py experiment learning [--json] [--test-limit N] [--set k=v ...] [--eval-seed N]
[--no-ground-truth-row]`.

Trains base → SFT → WebRL phases, WebRL again on ground-truth rewards from the same phase 0, and
the two baselines, evaluates all on the test tasks (and with --eval-seed on another world's), prints
the table, records it in a new dated file in docs/experiments/ and makes it the `## Learning`
section (the current result) of docs/results.md; with --json it also writes docs/results.json
(rows, the ORM's figures per phase, paired comparisons, minutes, command, commit). Takes tens of
minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from trainer.config import ConfigError, load_config


class Command(BaseCommand):
    help = "Measure learning: base, SFT, WebRL phases, SFT continued and filtered BC on the test split."

    def add_arguments(self, parser):
        parser.add_argument("name", choices=["learning"])
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")
        parser.add_argument("--config", default="demo-cpu")
        parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
        parser.add_argument("--test-limit", type=int, default=None,
                            help="evaluate a site-balanced subset of this many test tasks")  # fmt: skip
        parser.add_argument(
            "--results", default=str(Path(settings.BASE_DIR) / "docs" / "results.md")
        )
        parser.add_argument("--no-write", action="store_true")
        parser.add_argument(
            "--eval-seed", type=int, default=None, metavar="N",
            help="also evaluate every row's policy on the test split of the world built from seed "
            "N (rows marked '· world seed N'), to show overfitting to one world's names",
        )  # fmt: skip
        parser.add_argument(
            "--no-ground-truth-row", dest="ground_truth_row", action="store_false",
            help="skip the row 'WebRL with ground-truth reward' (the RL phases run again on the "
            "evaluator's rewards, from the same phase 0)",
        )  # fmt: skip

    def handle(self, *args, name, json: bool, config, set, test_limit, results, no_write,
               ground_truth_row: bool, eval_seed: int | None, **opts):  # fmt: skip
        from apps.runs.experiment import record_results, run_learning, table_markdown
        from apps.runs.management.commands.train_run import StageBars, cli_owner

        try:
            cfg = load_config(config, set)
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        if eval_seed is not None and (eval_seed < 0 or eval_seed == cfg.world_seed):
            raise CommandError(
                f"--eval-seed {eval_seed}: give another world's seed (>= 0) than the training "
                f"world's ({cfg.world_seed})"
            )
        bars = StageBars(self.stdout)
        try:
            summary = run_learning(cli_owner(), cfg, test_limit, on_stage=bars,
                                   ground_truth_row=ground_truth_row, eval_seed=eval_seed)  # fmt: skip
        finally:
            bars.close()
        command = "python manage.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        machine = f"{os.cpu_count()} CPU cores, no GPU" if not _cuda() else "CUDA GPU"
        if not no_write:
            record_results(summary, Path(results), command, machine, json)
        if json:
            self.stdout.write(_dumps({k: v for k, v in summary.items() if k != "outcomes"}))
        else:
            self.stdout.write(table_markdown(summary["rows"]))


def _dumps(summary: dict) -> str:
    return json.dumps(summary, indent=2, sort_keys=True, default=str)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
