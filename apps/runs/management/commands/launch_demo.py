"""`python manage.py launch_demo`: the first admin launches the `demo-cpu` run if no run exists yet."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from apps.runs.models import Run
from apps.runs.services import launch_run
from trainer.config import preset


class Command(BaseCommand):
    help = "Create and enqueue the demo-cpu run as the first admin, unless some run exists."

    def handle(self, *args, **options):
        if Run.objects.exists():
            self.stdout.write("a run exists already; no demo launched")
            return
        admin = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
        if admin is None:
            self.stderr.write("no admin yet: run `manage.py bootstrap_admin` first")
            return
        run = launch_run(admin, "demo-cpu", preset("demo-cpu").to_dict())
        self.stdout.write(f"demo run {run.pk} launched")
