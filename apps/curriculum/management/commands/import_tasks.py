"""`python manage.py import_tasks [PATH] --world webarena [--dry-run] [--json]`: validate WebArena(-Lite)
task configs and store the good ones as Task rows, idempotently keyed by `webarena:<task_id>`.

PATH defaults to the project's vendored copy of WebArena-Lite's 165 test tasks,
`data/webarena-lite/test_webarena_lite.raw.json` (its source and licence: that folder's README)."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.curriculum.models import Task
from apps.curriculum.validation import storable_errors
from trainer.env.webarena import resolve_placeholders, validate_indexed

LITE_PATH = Path(settings.BASE_DIR) / "data" / "webarena-lite" / "test_webarena_lite.raw.json"


def load_records(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise CommandError(f"{path} is not JSON: {exc}") from exc
    except RecursionError:
        raise CommandError(f"{path}: JSON nested too deeply") from None


def check_resolvable(
    good: list[tuple[int, dict]], site_urls: dict[str, str]
) -> tuple[list[tuple[int, dict]], list[dict]]:
    """Records whose placeholders all have a configured site URL, and errors for the rest."""
    ok, errors = [], []
    for index, record in good:
        try:
            resolve_placeholders(record, site_urls)
        except ValueError as exc:
            errors.append({"index": index, "reason": f"{exc} (set WEBARENA_<SITE>_URL)"})
        else:
            ok.append((index, record))
    return ok, errors


def store(records: list[dict], split: str) -> tuple[int, int]:
    created = updated = 0
    with transaction.atomic():
        for record in records:
            _, was_created = Task.objects.update_or_create(
                key=f"webarena:{record['task_id']}",
                defaults={
                    "config": record,
                    "intent": record["intent"],
                    "sites": list(record["sites"]),
                    "world": Task.World.WEBARENA,
                    "split": split,
                    "origin": Task.Origin.SEED,
                    "status": Task.Status.APPROVED,
                    "has_evaluator": True,
                    "template_id": record.get("intent_template_id"),
                },
            )
            created += was_created
            updated += not was_created
    return created, updated


class Command(BaseCommand):
    help = "Validate WebArena/WebArena-Lite task configs and import the good ones as Tasks."

    def add_arguments(self, parser):
        parser.add_argument(
            "path",
            type=Path,
            nargs="?",
            default=LITE_PATH,
            help="a JSON list of task configs (default: the vendored WebArena-Lite test set, "
            "data/webarena-lite/test_webarena_lite.raw.json)",
        )
        parser.add_argument("--world", choices=["webarena"], required=True)
        parser.add_argument("--split", choices=["train", "test"], default="test")
        parser.add_argument("--dry-run", action="store_true", help="validate only; write nothing")
        parser.add_argument("--json", action="store_true", help='print {"ok": N, "errors": [...]}')

    def handle(self, *args, **opts):
        data = load_records(opts["path"])
        indexed, errors = validate_indexed(data)
        resolvable, unresolved = check_resolvable(indexed, settings.WEBARENA_URLS)
        unstorable = [{"index": i, "reason": "; ".join(storable_errors(r))}
                      for i, r in resolvable if storable_errors(r)]  # fmt: skip
        resolvable = [(i, r) for i, r in resolvable if not storable_errors(r)]
        errors = sorted(
            errors + unresolved + unstorable, key=lambda e: (e["index"] is None, e["index"] or 0)
        )
        records = [r for _, r in resolvable]
        created = updated = 0
        if not opts["dry_run"]:
            created, updated = store(records, opts["split"])
        if opts["json"]:
            self.stdout.write(json.dumps({"ok": len(records), "errors": errors}))
            return
        verb = "would import" if opts["dry_run"] else f"imported ({created} new, {updated} updated)"
        self.stdout.write(f"{len(records)} tasks {verb}; {len(errors)} bad records")
        for e in errors:
            self.stdout.write(f"  record {e['index']}: {e['reason']}")
