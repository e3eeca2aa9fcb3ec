"""`python manage.py train_run --config demo-cpu [--set k=v ...] [--resume RUN] [--workers]`.

Runs a WebRL run's stages in this process with a progress bar per stage (or hands it to the workers).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from apps.runs.models import Run
from apps.runs.trackers import check_trackers
from trainer.config import ConfigError, load_config


def cli_owner():
    """The first superuser, else a dedicated operator account for the command line."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    User = get_user_model()
    user = User.objects.filter(is_superuser=True).order_by("pk").first()
    if user is None:
        user, created = User.objects.get_or_create(username="webrl-cli")
        if created:
            user.set_unusable_password()
            user.save()
        group, _ = Group.objects.get_or_create(name="operators")
        user.groups.add(group)
    return user


class StageBars:
    """One tqdm bar per stage: optimizer steps for training, finished trajectories for rollouts."""

    def __init__(self, stdout):
        self.stdout = stdout
        self.bar: tqdm | None = None
        self.part = ""

    def __call__(self, stage):
        if self.bar is not None:
            self.bar.close()
        self.bar = tqdm(desc=f"phase {stage.phase.index} {stage.name}", unit="step", leave=True)
        self.part = ""

        def progress(update: dict) -> None:
            counts = update.get("counts")
            if counts:
                total = sum(counts.values())
                done = total - counts.get("pending", 0) - counts.get("running", 0)
                self.bar.total = total
                self.bar.unit = "episode"
                self.bar.n = done
                self.bar.refresh()
            elif "step" in update and (self.bar.unit != "episode" or update.get("total")):
                # (a browser stage's closing metrics also carry a "step" but no total: no bar)
                # metrics come namespaced ("pretrain/loss", "sft/loss"): a new namespace after
                # episodes or another trainer (phase 0: demonstrations, copy pretraining, SFT)
                # gets a bar of its own
                part = next((k.split("/")[0] for k in update if "/" in k), "")
                if self.bar.unit == "episode" or (self.part and part and part != self.part):
                    self.bar.close()
                    what = "training" if part in ("", stage.name) else part
                    self.bar = tqdm(desc=f"phase {stage.phase.index} {stage.name} {what}",
                                    unit="step", leave=True)  # fmt: skip
                self.part = part or self.part
                if update.get("total"):
                    self.bar.total = int(update["total"])
                self.bar.n = int(update["step"])
                self.bar.refresh()

        return progress

    def close(self):
        if self.bar is not None:
            self.bar.close()


class Command(BaseCommand):
    help = "Run WebRL phase by phase (phase 0 = SFT + initial ORM), in this process by default."

    def add_arguments(self, parser):
        parser.add_argument("--config", default="demo-cpu", help="preset name or JSON file")
        parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
        parser.add_argument("--name", default="")
        parser.add_argument("--resume", type=int, default=None, metavar="RUN_ID")
        parser.add_argument("--workers", action="store_true", help="enqueue for the Celery workers")

    def handle(self, *args, config, set, name, resume, workers, **options):
        from apps.runs.dispatch import dispatch
        from apps.runs.orchestrator import advance, resume_run
        from apps.runs.runner import drive_inline

        if resume is not None:
            run = Run.objects.filter(pk=resume).first()
            if run is None:
                raise CommandError(f"no run {resume}")
            resume_run(run.pk)
        else:
            try:
                cfg = load_config(config, set)
                check_trackers(cfg.run.report_to)
            except ConfigError as exc:
                raise CommandError(str(exc)) from None
            run = Run.objects.create(
                owner=cli_owner(), name=name or f"{cfg.preset} (cli)", config=cfg.to_dict()
            )
        self.stdout.write(f"run {run.pk}: {run.name}")
        if workers:
            advance(run.pk, dispatch)
            self.stdout.write("handed to the workers; watch it on the dashboard")
            return
        bars = StageBars(self.stdout)
        try:
            status = drive_inline(run.pk, on_stage=bars)
        finally:
            bars.close()
        run.refresh_from_db()
        self.stdout.write(
            f"run {run.pk} {status}" + (f": {run.last_error}" if run.last_error else "")
        )
        if status != Run.Status.SUCCEEDED:
            raise CommandError(f"run {run.pk} ended {status}")
