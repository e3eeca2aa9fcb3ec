"""seed_load and bench_dashboard end to end on a small, throwaway load database (slow: about a minute)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_seed_load_fills_a_separate_database_and_the_bench_reads_it():
    name = f"webrl_load_test_{os.getpid()}"
    url = f"postgres://postgres@127.0.0.1:5432/{name}"
    try:
        out = _manage(
            "seed_load",
            "--database-url",
            url,
            "--trajectories",
            "300",
            "--steps",
            "3000",
            "--tasks",
            "40",
        )
        counts = json.loads(out.strip().splitlines()[-1])
        assert (
            counts["trajectories"] == 300 and counts["steps"] == 3000 and counts["database"] == name
        )
        with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={name}") as conn:
            assert conn.execute("SELECT count(*) FROM rollouts_step").fetchone()[0] == 3000
            assert (
                conn.execute("SELECT sum(step_count) FROM rollouts_trajectory").fetchone()[0]
                == 3000
            )
        bench = json.loads(
            _manage("bench_dashboard", "--database-url", url, "--json", "--requests", "3",
                    "--clients", "3", "--frames", "5", "--rate", "20").strip().splitlines()[-1]
        )  # fmt: skip
        assert set(bench["pages"]) == {"run_page", "trajectory_list_filtered", "trajectory_detail",
                                       "review_queue", "review_agreement",
                                       "curriculum_list"}  # fmt: skip
        assert all(p["p50_ms"] > 0 and p["p95_ms"] >= p["p50_ms"] for p in bench["pages"].values())
        assert bench["ws_frame_ms"]["delivered"] == 15 and bench["ws_frame_ms"]["p95"] > 0
    finally:
        with psycopg.connect(
            "host=127.0.0.1 user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_load_database_is_never_the_main_or_a_system_one():
    from django.core.management.base import CommandError

    from apps.dashboard.management.commands.seed_load import check_load_name

    check_load_name("webrl_load", "webrl")
    for bad in ("webrl", "postgres", "template1", 'x"; DROP', "a-b"):
        with pytest.raises(CommandError):
            check_load_name(bad, "webrl")
    with pytest.raises(CommandError):
        check_load_name("webrl", "test_webrl")
