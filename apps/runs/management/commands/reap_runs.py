"""`python manage.py reap_runs [--stale-after S] [--inline]`: re-queue stale stages, re-send lost
stage messages, start runs whose start message was lost (beat runs the same every minute)."""

from django.core.management.base import BaseCommand

from apps.runs.reaper import reap


class Command(BaseCommand):
    help = "Re-queue stages whose heartbeat went stale, re-send lost messages, start lost starts."

    def add_arguments(self, parser):
        parser.add_argument("--stale-after", type=float, default=None, help="seconds")
        parser.add_argument(
            "--inline", action="store_true", help="reset stale stages without enqueueing them"
        )

    def handle(self, *args, stale_after, inline, **options):
        from apps.runs.dispatch import dispatch

        done = reap(stale_after, None if inline else dispatch)
        self.stdout.write(
            f"re-queued or failed {len(done['stages'])} stage(s); re-sent {len(done['resent'])} "
            f"lost stage message(s); started {len(done['started'])} queued run(s)"
        )
