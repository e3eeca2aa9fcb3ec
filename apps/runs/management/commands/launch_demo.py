"""`python manage.py launch_demo [--set K=V ...]`: the first admin launches the `demo-cpu` run if no run
exists yet.

`make run` calls it with no arguments; the WEBRL_DEMO_SET environment variable (space-separated
`section.field=value` overrides, as `--set` takes them) resizes that demo run, for example
`make run WEBRL_DEMO_SET="run.phases=1 sft.demo_tasks=40"`.
"""

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.runs.models import Run
from apps.runs.services import launch_run
from trainer.config import ConfigError, load_config


class Command(BaseCommand):
    help = "Create and enqueue the demo-cpu run as the first admin, unless some run exists."

    def add_arguments(self, parser):
        parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                            help="config overrides (also from WEBRL_DEMO_SET, space-separated)")  # fmt: skip

    def handle(self, *args, set: list[str], **options):
        overrides = os.environ.get("WEBRL_DEMO_SET", "").split() + set
        try:
            config = load_config("demo-cpu", overrides)
        except ConfigError as exc:
            raise CommandError(f"demo run not launched: {exc}") from None
        if Run.objects.exists():
            self.stdout.write("a run exists already; no demo launched")
            return
        admin = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
        if admin is None:
            self.stderr.write("no admin yet: run `manage.py bootstrap_admin` first")
            return
        run = launch_run(admin, "demo-cpu", config.to_dict())
        changed = f" with {' '.join(overrides)}" if overrides else ""
        self.stdout.write(f"demo run {run.pk} launched{changed}")
