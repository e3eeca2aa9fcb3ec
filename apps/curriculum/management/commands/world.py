"""`python manage.py world serve|oracle|bench|export-sft ...`: a thin wrapper over `sandbox.cli`.

Examples: `world serve --instances 4`, `world oracle --split test --json`, `world bench --json`.
"""

from __future__ import annotations

import argparse

from django.core.management.base import BaseCommand, CommandError

from sandbox.cli import main


class Command(BaseCommand):
    help = "Serve the built-in web world, run its oracle, benchmark it or export SFT data."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("world_args", nargs=argparse.REMAINDER)

    def handle(self, *args: object, **options: object) -> None:
        argv = list(options["world_args"])
        if not argv:
            raise CommandError("usage: world serve|oracle|bench|export-sft [options]")
        code = main(argv)
        if code:
            raise SystemExit(code)
