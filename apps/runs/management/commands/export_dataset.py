"""`python manage.py export_dataset --run ID --kind sft|orm|tasks --format jsonl|parquet|sharegpt|alpaca
[--phase N] [--approved-only] --out PATH`: a run's data as a file `datasets` and LLaMA-Factory read."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from apps.runs.exports import FORMATS, KINDS, LLAMA_FACTORY, ExportError, ExportSpec, write_export


class Command(BaseCommand):
    help = "Export a run's SFT steps, ORM examples or generated tasks as a dataset file."

    def add_arguments(self, parser):
        parser.add_argument("--run", type=int, required=True, metavar="ID")
        parser.add_argument("--kind", choices=KINDS, required=True)
        parser.add_argument("--format", choices=FORMATS, default="jsonl")
        parser.add_argument("--phase", type=int, default=None, metavar="N", help="one phase only")
        parser.add_argument(
            "--approved-only", action="store_true", help="only rows whose task is approved"
        )
        parser.add_argument("--out", required=True, metavar="PATH")

    def handle(self, *args, run, kind, format, phase, approved_only, out, **options):
        spec = ExportSpec(run, kind, format, phase, approved_only)
        try:
            count = write_export(spec, out)
        except ExportError as exc:
            raise CommandError(str(exc)) from None
        loader = "parquet" if format == "parquet" else "json"
        self.stdout.write(f"wrote {count} {kind} rows to {out}")
        self.stdout.write(f'  datasets.load_dataset("{loader}", data_files="{out}")')
        if format in LLAMA_FACTORY:
            entry = {f"webrl_run{run}_{kind}": {"file_name": out, **LLAMA_FACTORY[format]}}
            self.stdout.write("  LLaMA-Factory dataset_info.json entry:")
            self.stdout.write(json.dumps(entry, indent=2))
