"""`python manage.py disk_usage [--run ID ...] [--json] [--prune]`: checkpoint and screenshot bytes
per run, and the shared demonstration cache; `--prune` first deletes screenshots older than
SCREENSHOT_KEEP_PHASES phases."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from apps.runs.retention import demo_cache_usage, disk_usage, prune_screenshots


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


class Command(BaseCommand):
    help = "Disk used by each run's checkpoints and screenshots."

    def add_arguments(self, parser):
        parser.add_argument("--run", type=int, action="append", help="only this run (repeatable)")
        parser.add_argument("--json", action="store_true", dest="as_json")
        parser.add_argument("--prune", action="store_true", help="prune old screenshots first")

    def handle(self, *args, run, as_json: bool, prune: bool, **options):
        removed = prune_screenshots() if prune else None
        rows = disk_usage(run)
        cache = demo_cache_usage()
        if as_json:
            self.stdout.write(
                json.dumps({"runs": rows, "demo_cache": cache, "pruned_screenshots": removed})
            )
            return
        if removed is not None:
            self.stdout.write(f"pruned {removed} screenshot(s)")
        for r in rows:
            self.stdout.write(
                f"run {r['run']:>5} {r['status']:<10} checkpoints {_human(r['checkpoints_bytes']):>9}"
                f"  screenshots {_human(r['screenshots_bytes']):>9}  total {_human(r['total_bytes']):>9}"
                f"  {r['name']}"
            )
        self.stdout.write(
            f"demo cache: {cache['entries']} demonstration(s), {_human(cache['bytes'])}"
            f" in {cache['path']} (shared by all runs; delete it to empty it)"
        )
