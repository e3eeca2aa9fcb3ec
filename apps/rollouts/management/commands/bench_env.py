"""`python manage.py bench_env [--json] [...]`: the environment speed benchmark (trainer.bench.env_bench)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from trainer.bench import env_bench


class Command(BaseCommand):
    help = "Step speed of our browser environment vs raw Playwright vs BrowserGym (JSON)."

    def run_from_argv(self, argv):
        # trainer.bench.env_bench owns its options; Django only sets up and hands the rest over.
        env_bench.main(argv[2:])

    def add_arguments(self, parser):
        parser.add_argument("rest", nargs="*")

    def handle(self, *args, **options):
        env_bench.main(list(options.get("rest") or []))
