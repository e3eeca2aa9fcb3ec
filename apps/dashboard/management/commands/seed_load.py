"""Fill a separate load database with realistic rows: `manage.py seed_load --trajectories 100000 --steps 1000000`.

The database (default `webrl_load`, or `--database-url` / WEBRL_LOAD_DATABASE_URL) is dropped and
recreated, so the developer's own data is never touched. Big tables go in with COPY.
"""

from __future__ import annotations

import json
import os
import random
import time
from datetime import UTC, datetime, timedelta

import psycopg
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from webrl_site.env import parse_database_url

LOAD_ALIAS = "load"
DEFAULT_LOAD_URL = "postgres://postgres@127.0.0.1:5432/webrl_load"
SITES = ["shopping", "shopping_admin", "reddit", "gitlab", "map"]
BENCH_USER, BENCH_PASSWORD = "bench", "bench-password-123"
VERBS = [
    "Find",
    "Show",
    "Open",
    "Count",
    "Star",
    "Upvote",
    "List",
    "Compare",
    "Update",
    "Search for",
]
THINGS = ["the cheapest blue mug", "order #{n}", "the top post in r/books", "issues labelled bug",
          "the route to CMU", "reviews of product {n}", "the merge request !{n}", "user {n}'s profile"]  # fmt: skip


def load_database_url(explicit: str | None = None) -> str:
    return explicit or os.environ.get("WEBRL_LOAD_DATABASE_URL") or DEFAULT_LOAD_URL


def register_load_database(url: str) -> dict:
    """Add the `load` alias to Django's connections (settings unchanged) and return its settings."""
    settings_dict = parse_database_url("--database-url", url)
    connections.databases[LOAD_ALIAS] = {
        **connections.databases["default"],
        **settings_dict,
        "TEST": {"NAME": None},
    }
    return settings_dict


def _conninfo(db: dict, name: str | None = None) -> str:
    parts = {"host": db["HOST"] or "127.0.0.1", "port": db["PORT"] or "5432", "user": db["USER"],
             "password": db["PASSWORD"], "dbname": name or db["NAME"]}  # fmt: skip
    return " ".join(f"{k}={v}" for k, v in parts.items() if v)


def check_load_name(name: str, main: str) -> None:
    """The load database is dropped and recreated: never the main one, never an odd name."""
    if not name.replace("_", "").isalnum():
        raise CommandError(
            f"--database-url: refusing the database name {name!r} (letters, digits, _)"
        )
    if name in (main, main.removeprefix("test_"), "postgres", "template0", "template1"):
        raise CommandError(
            f"--database-url: {name!r} is the main or a system database; use another"
        )


def recreate_database(db: dict) -> None:
    name = db["NAME"]
    check_load_name(name, connections.databases["default"]["NAME"])
    with psycopg.connect(_conninfo(db, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _observation(rng: random.Random, page: int) -> str:
    items = " ".join(
        f'<a id="{i}" data-text="Item {page}-{i}" data-bbox="{40 + (i % 4) * 300},{120 + (i // 4) * 60},'
        f'{220 + i % 7},{24 + i % 3}"> Item {page}-{i} ${rng.randint(1, 999)}.99 </a>'
        for i in range(12)
    )
    return (
        f'<html> <header> <input id="12" type="text" placeholder="Search entire store here..." '
        f'data-bbox="962,71,250,32"> </input> <button id="13" data-text="Search" '
        f'data-bbox="1212,71,40,32"> Search </button> </header> <main> {items} </main> </html>'
    )


def _intent(rng: random.Random, n: int) -> str:
    return f"{rng.choice(VERBS)} {rng.choice(THINGS).format(n=n)}"


class Command(BaseCommand):
    help = "Drop and refill a separate load database with runs, tasks, trajectories and steps."

    def add_arguments(self, parser):
        parser.add_argument("--database-url", default=None, help=f"default {DEFAULT_LOAD_URL}")
        parser.add_argument("--trajectories", type=int, default=100_000)
        parser.add_argument("--steps", type=int, default=1_000_000)
        parser.add_argument("--runs", type=int, default=4)
        parser.add_argument("--phases", type=int, default=8)
        parser.add_argument("--tasks", type=int, default=2_000)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **opts):
        if opts["trajectories"] < 1 or opts["steps"] < opts["trajectories"] or opts["runs"] < 1:
            raise CommandError("need --trajectories >= 1, --steps >= --trajectories, --runs >= 1")
        started = time.perf_counter()
        db = register_load_database(load_database_url(opts["database_url"]))
        recreate_database(db)
        call_command("migrate", database=LOAD_ALIAS, verbosity=0)
        rng = random.Random(opts["seed"])
        runs, phases = self._small_tables(rng, opts)
        self.stdout.write(f"small tables in {time.perf_counter() - started:.1f} s")
        counts = self._copy_big_tables(db, rng, opts, runs, phases)
        counts["seconds"] = round(time.perf_counter() - started, 1)
        self.stdout.write(json.dumps(counts))

    def _small_tables(self, rng: random.Random, opts) -> tuple[list, dict]:
        from apps.curriculum.models import Task
        from apps.runs.models import Checkpoint, MetricPoint, Phase, Run, StageRun
        from trainer.config import preset

        users = get_user_model().objects.db_manager(LOAD_ALIAS)
        owner = users.create_user(BENCH_USER, password=BENCH_PASSWORD)
        for name in ("operators", "reviewers"):
            owner.groups.add(Group.objects.using(LOAD_ALIAS).get_or_create(name=name)[0])
        config = preset("demo-cpu").to_dict()
        runs = Run.objects.using(LOAD_ALIAS).bulk_create(
            [
                Run(owner=owner, name=f"load-run-{i}", config=config, status="succeeded")
                for i in range(opts["runs"])
            ]
        )
        Run.objects.using(LOAD_ALIAS).filter(pk=runs[0].pk).update(status="running")
        phases: dict[int, list] = {}
        stage_names = ["rollout", "orm", "replay", "critic", "actor", "eval", "curriculum"]
        stages, points, checkpoints = [], [], []
        for run in runs:
            phases[run.pk] = Phase.objects.using(LOAD_ALIAS).bulk_create(
                [Phase(run=run, index=i, status="done") for i in range(opts["phases"])]
            )
            for phase in phases[run.pk]:
                stages += [
                    StageRun(phase=phase, name=n, order=o, status="done")
                    for o, n in enumerate(stage_names)
                ]
                rate = min(0.9, 0.05 + 0.07 * phase.index + rng.random() * 0.03)
                metrics = {"eval/success_rate": rate} | {
                    f"eval/success_rate/{s}": rate * rng.uniform(0.6, 1.3) for s in SITES
                }
                for kind in ("actor", "critic", "orm"):
                    checkpoints.append(Checkpoint(run=run, phase=phase, kind=kind, path=f"/ckpt/{run.pk}/{phase.index}/{kind}",
                                                  metrics=metrics if kind == "actor" else {}, config=config))  # fmt: skip
                for name, value in metrics.items():
                    points.append(
                        MetricPoint(run=run, phase=phase, name=name, step=phase.index, value=value)
                    )
            for step in range(0, 2000, 5):
                points.append(
                    MetricPoint(run=run, name="loss/actor", step=step, value=2.0 / (1 + step / 300))
                )
                points.append(
                    MetricPoint(
                        run=run, name="loss/critic", step=step, value=0.7 / (1 + step / 500)
                    )
                )
                points.append(
                    MetricPoint(
                        run=run, name="rollout/steps_per_s", step=step, value=rng.uniform(14, 19)
                    )
                )
                points.append(
                    MetricPoint(
                        run=run, name="orm/accuracy", step=step, value=min(0.95, 0.6 + step / 8000)
                    )
                )
        StageRun.objects.using(LOAD_ALIAS).bulk_create(stages, batch_size=2000)
        MetricPoint.objects.using(LOAD_ALIAS).bulk_create(points, batch_size=5000)
        Checkpoint.objects.using(LOAD_ALIAS).bulk_create(checkpoints, batch_size=2000)
        tasks = []
        for i in range(opts["tasks"]):
            generated = i % 2 == 1
            run = runs[i % len(runs)]
            site = rng.choice(SITES)
            intent = _intent(rng, i)
            tasks.append(Task(
                key=f"load-{i}", intent=intent, sites=[site], world="sandbox",
                config={"intent": intent, "sites": [site], "start_url": f"__{site.upper()}__/", "eval": {"eval_types": ["string_match"]}},
                split="generated" if generated else "train", origin="generated" if generated else "seed",
                status=rng.choice(["proposed", "approved", "rejected"]) if generated else "approved",
                run=run if generated else None, generating_phase=rng.choice(phases[run.pk]) if generated else None,
                critic_value=rng.random() if generated else None, generator={"name": "offline"} if generated else {},
                filter_notes={"critic": {"score": round(rng.random(), 3), "keep": rng.random() < 0.7, "reason": "band"}} if generated else {},
            ))  # fmt: skip
        Task.objects.using(LOAD_ALIAS).bulk_create(tasks, batch_size=2000)
        through = Task.parents.through
        seeds = [t for t in tasks if t.origin == "seed"]
        links = [
            through(from_task_id=t.pk, to_task_id=rng.choice(seeds).pk)
            for t in tasks
            if t.origin == "generated"
        ]
        through.objects.using(LOAD_ALIAS).bulk_create(links, batch_size=5000)
        self._task_ids = [t.pk for t in tasks]
        self._owner_id = owner.pk
        return runs, phases

    def _copy_big_tables(self, db: dict, rng: random.Random, opts, runs, phases) -> dict:
        n_traj, n_steps = opts["trajectories"], opts["steps"]
        mean = n_steps / n_traj
        now = datetime.now(UTC)
        observations = [_observation(rng, p) for p in range(64)]
        steps_left = n_steps
        with psycopg.connect(_conninfo(db)) as conn, conn.cursor() as cur:
            traj_cols = ("id, purpose, sample_index, status, score, final_answer, final_url, step_count, error, "
                         "env_version, evaluator_version, eval_detail, orm_p_yes, orm_uncertainty, human_label, "
                         "reward, claimed_by, created_at, phase_id, run_id, task_id")  # fmt: skip
            step_plan: list[tuple[int, int, bool]] = []
            labels: list[tuple] = []
            with cur.copy(f"COPY rollouts_trajectory ({traj_cols}) FROM STDIN") as copy:
                for tid in range(1, n_traj + 1):
                    run = runs[tid % len(runs)]
                    phase = phases[run.pk][
                        min(len(phases[run.pk]) - 1, int((tid / n_traj) * len(phases[run.pk])))
                    ]
                    remaining = n_traj - tid + 1
                    count = (
                        steps_left
                        if remaining == 1
                        else max(
                            1, min(steps_left - (remaining - 1), int(rng.uniform(1, 2 * mean)))
                        )
                    )
                    steps_left -= count
                    running = run is runs[0] and tid > n_traj - 64
                    p_yes = rng.betavariate(0.7, 0.7)
                    score = None if rng.random() < 0.2 else float(rng.random() < 0.35)
                    human = (rng.random() < 0.6) if rng.random() < 0.03 else None
                    reward = float(human) if human is not None else float(p_yes >= 0.5)
                    copy.write_row((
                        tid, "train", tid, "running" if running else rng.choice(["ok"] * 8 + ["error", "timeout"]),
                        score, f"answer {tid}", "http://127.0.0.1:9400/", count, "", "w1", "e1", "{}",
                        p_yes, abs(p_yes - 0.5), human, reward, "", now - timedelta(seconds=n_traj - tid),
                        phase.pk, run.pk, rng.choice(self._task_ids),
                    ))  # fmt: skip
                    step_plan.append((tid, count, running))
                    if human is not None:
                        labels.append((tid, self._owner_id, human, "", now))
            self.stdout.write(f"trajectories copied ({n_traj})")
            step_cols = "trajectory_id, index, observation, response, action, url, screenshot, error, elapsed_ms, created_at"
            written = 0
            with cur.copy(f"COPY rollouts_step ({step_cols}) FROM STDIN") as copy:
                for tid, count, running in step_plan:
                    for i in range(count):
                        element = str(rng.randrange(14))
                        copy.write_row((
                            tid, i, observations[(tid + i) % 64],
                            f'# Element: item {element}\ndo(action="Click", element="{element}")',
                            json.dumps({"kind": "click", "element": element, "argument": None}),
                            f"http://127.0.0.1:9400/shop/p/{tid % 997}/{i}",
                            f"screenshots/{tid // 1000}/{tid}/{i}.jpg" if running else "", "", 40.0, now,
                        ))  # fmt: skip
                    written += count
            self.stdout.write(f"steps copied ({written})")
            with cur.copy(
                "COPY reviews_humanlabel (trajectory_id, user_id, label, note, created_at) FROM STDIN"
            ) as copy:
                for row in labels:
                    copy.write_row(row)
            for table in ("rollouts_trajectory", "rollouts_step", "reviews_humanlabel"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                )
            conn.commit()
            conn.autocommit = True
            cur.execute("VACUUM ANALYZE")
        return {"trajectories": n_traj, "steps": written, "human_labels": len(labels), "runs": len(runs),
                "tasks": opts["tasks"], "database": db["NAME"]}  # fmt: skip
