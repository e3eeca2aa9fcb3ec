"""`python manage.py reap_runs [--stale-after S]`: re-queue stale stages, fail runs with dead workers."""

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.runs.orchestrator import reap_stale_stages
from apps.runs.reaper import reap_stale_runs


class Command(BaseCommand):
    help = "Re-queue stages whose heartbeat went stale and fail runs no worker looks after."

    def add_arguments(self, parser):
        parser.add_argument("--stale-after", type=float, default=None, help="seconds")
        parser.add_argument(
            "--inline", action="store_true", help="reset stale stages without enqueueing them"
        )

    def handle(self, *args, stale_after, inline, **options):
        from apps.runs.dispatch import dispatch

        limit = stale_after if stale_after is not None else settings.RUN_HEARTBEAT_STALE_S
        stages = reap_stale_stages(limit, None if inline else dispatch)
        runs = reap_stale_runs(int(limit))
        self.stdout.write(f"re-queued or failed {len(stages)} stage(s); failed {len(runs)} run(s)")
