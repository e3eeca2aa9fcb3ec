"""`python manage.py bench_env [--json] [...]`: the environment speed benchmark (trainer.bench_env)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from trainer import bench_env


class Command(BaseCommand):
    help = "Step speed of our browser environment vs raw Playwright vs BrowserGym (JSON)."

    def run_from_argv(self, argv):
        # trainer.bench_env owns its options; Django only sets up and hands the rest over.
        bench_env.main(argv[2:])

    def add_arguments(self, parser):
        parser.add_argument("rest", nargs="*")

    def handle(self, *args, **options):
        bench_env.main(list(options.get("rest") or []))
