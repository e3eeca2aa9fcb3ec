"""`python manage.py world serve|oracle|bench|export-sft ...`: a thin wrapper over `sandbox.cli`
that leases every instance of an already running world first (runs may be using it).

Examples: `world serve --instances 4`, `world oracle --split test --json`, `world bench --json`.
"""

from __future__ import annotations

import argparse

from django.core.management.base import BaseCommand, CommandError

from apps.runs import leases
from sandbox.cli import build_parser, main
from sandbox.client import WorldClient


class Command(BaseCommand):
    help = "Serve the built-in web world, run its oracle, benchmark it or export SFT data."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("world_args", nargs=argparse.REMAINDER)

    def handle(self, *args: object, **options: object) -> None:
        argv = list(options["world_args"])
        if not argv:
            raise CommandError("usage: world serve|oracle|bench|export-sft [options]")
        parsed = build_parser().parse_args(argv)
        url = getattr(parsed, "world_url", None)
        shared, count = False, 0
        if url is not None:
            with WorldClient(url) as world:
                shared = world.healthy()
                count = world.instances() if shared else 0
        if not shared:  # serve, or a private world the command starts itself
            code = main(argv)
        else:  # a running world: runs may be using it, so hold every instance first
            try:
                with leases.holding_all(url, count, holder=f"manage.py world {parsed.command}"):
                    code = main(argv)
            except leases.LeaseBusy as exc:
                raise CommandError(
                    f"{exc}; wait for it, or use another world (--world-url)"
                ) from None
        if code:
            raise SystemExit(code)
