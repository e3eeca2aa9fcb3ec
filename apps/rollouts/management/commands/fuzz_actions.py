"""`python manage.py fuzz_actions [--inputs 10000] [--parse-only 100000] [--json] [--chromium PATH]`: hostile model
outputs through the action parser and executor on live pages of a private world (`sandbox.fuzz`)."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sandbox.fuzz import main


class Command(BaseCommand):
    help = "Fuzz the action parser and executor on live pages; exits 1 on an unhandled error."

    def add_arguments(self, parser):
        parser.add_argument("--inputs", type=int, default=10_000)
        parser.add_argument("--parse-only", type=int, default=100_000)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--chromium", default=None, help="default: settings.CHROMIUM_PATH")

    def handle(self, *args, inputs, parse_only, seed, json, chromium, **options):
        chromium = chromium or settings.CHROMIUM_PATH
        if not os.access(chromium, os.X_OK):
            raise CommandError(f"no Chromium at {chromium}: pass --chromium or set CHROMIUM_PATH")
        argv = ["--inputs", str(inputs), "--parse-only", str(parse_only), "--seed", str(seed),
                "--chromium", chromium]  # fmt: skip
        code = main(argv + (["--json"] if json else []))
        if code:
            raise SystemExit(code)
