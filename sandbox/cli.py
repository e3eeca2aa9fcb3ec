"""`world` commands: serve, oracle (solve tasks through the real browser), bench, export-sft.

Run `python -m sandbox.cli oracle --split test --json` (or `python manage.py world oracle ...`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from sandbox import DEFAULT_SEED
from sandbox.client import WorldClient
from sandbox.server import WorldThread, serve
from sandbox.tasks import TEST_MIX, load_tasks
from trainer.env.types import VIEWS
from trainer.prompts import PROMPTS

DEFAULT_WORLD_URL = "http://127.0.0.1:9400"
GAMMA = 0.9
INFRA_RETRIES = 1


class WrongWorld(RuntimeError):
    """The world answering at the URL was built from another seed than the tasks asked for."""


def ensure_world(
    world_url: str, instances: int, seed: int = DEFAULT_SEED
) -> tuple[WorldClient, WorldThread | None]:
    """A client for the world at `world_url`, starting one from `seed` in-process if none answers
    there; a world already there must have been built from `seed` (else WrongWorld)."""
    client = WorldClient(world_url)
    if client.healthy():
        if client.seed() != seed:
            raise WrongWorld(
                f"the world at {world_url} was built from seed {client.seed()}, these tasks need "
                f"seed {seed}: serve one with `world serve --seed {seed}` or use another --world-url"
            )
        return client, None
    parts = urlsplit(world_url)
    host = parts.hostname or "127.0.0.1"
    thread = WorldThread(instances, parts.port or 9400, host, seed=seed).start()
    return client, thread


def group(task: dict) -> str:
    return "cross_site" if len(task["sites"]) > 1 else task["sites"][0]


def report(split: str, results: list[dict]) -> dict:
    """The oracle's JSON: totals and per-site {total, solved} in WebArena-Lite's groups."""
    by_site = {name: {"total": 0, "solved": 0} for name in TEST_MIX}
    for r in results:
        entry = by_site.setdefault(r["group"], {"total": 0, "solved": 0})
        entry["total"] += 1
        entry["solved"] += int(r["solved"])
    return {
        "split": split,
        "total": len(results),
        "solved": sum(int(r["solved"]) for r in results),
        "by_site": by_site,
    }


async def run_oracle(
    tasks: list[dict],
    client: WorldClient,
    instances: int,
    *,
    keep_steps: bool = False,
    on_result: Callable[[dict], None] | None = None,
    view: str = "webrl",
) -> list[dict]:
    """Run the oracle on every task, one worker (browser context + world instance) per instance.

    Every episode starts from a reset instance. Results keep the task order.
    """
    from sandbox.oracle import oracle_policy
    from trainer.env.pool import BrowserPool
    from trainer.env.types import EpisodeLimits, EpisodeResult
    from trainer.env.webarena import resolve_placeholders

    instances = max(1, min(instances, client.instances()))
    queue: asyncio.Queue = asyncio.Queue()
    for index, task in enumerate(tasks):
        queue.put_nowait((index, task))
    results: list[dict | None] = [None] * len(tasks)
    limits = EpisodeLimits(max_steps=30, screenshots=False, settle_ms=3000, view=view)

    async def worker(pool: BrowserPool, instance: int) -> None:
        urls = client.site_urls(instance)
        state, origins = client.storage_state(instance), client.allowed_origins(instance)
        while not queue.empty():
            index, task = queue.get_nowait()
            started = time.perf_counter()
            resolved = resolve_placeholders(task, urls)
            attempts = 0
            while attempts <= INFRA_RETRIES:
                attempts += 1
                # Infrastructure faults (a crashed renderer, a timeout) are retried on a fresh
                # reset; a wrong score is never retried.
                await asyncio.to_thread(client.reset, instance)
                try:
                    policy = oracle_policy(resolved)
                except ValueError as exc:  # a malformed plan fails this task, not the run
                    result = EpisodeResult("error", [], None, "", "", None, {}, f"oracle: {exc}")
                    break
                result = await pool.run_episode(
                    resolved, policy, limits=limits, allowed_origins=origins, storage_state=state
                )
                if result.status == "ok":
                    break
            record = {
                "task_id": task["task_id"],
                "template_id": task["intent_template_id"],
                "group": group(task),
                "status": result.status,
                "score": result.score,
                "solved": result.status == "ok" and (result.score or 0) >= 1.0,
                "steps": len(result.steps),
                "answer": result.final_answer,
                "error": result.error,
                "eval_detail": result.eval_detail,
                "seconds": round(time.perf_counter() - started, 3),
                "attempts": attempts,
            }
            if keep_steps:
                record["task"] = task
                record["episode"] = result
            results[index] = record
            if on_result is not None:
                on_result(record)

    async with BrowserPool(contexts=instances) as pool:
        await asyncio.gather(*(worker(pool, i) for i in range(instances)))
    return [r for r in results if r is not None]


def sft_records(task: dict, episode, outcome: float, variant: str = "webrl") -> list[dict]:
    """§10 step records of one oracle episode, with §7.3's prompt strings (of `variant`)."""
    from trainer.learn.data import mc_returns
    from trainer.prompts import build_agent_prompt

    intent = task["intent"]
    steps = episode.steps
    responses = [s.response for s in steps]
    trajectory_reward = 1.0 if outcome >= 0.5 else 0.0
    returns = mc_returns([outcome] * len(steps), GAMMA)
    records = []
    for t, step in enumerate(steps):
        last = t == len(steps) - 1
        next_html = step.observation if last else steps[t + 1].observation
        records.append(
            {
                "observation": build_agent_prompt(
                    intent, responses[:t], step.observation, variant=variant
                ),
                "next_observation": build_agent_prompt(
                    intent, responses[: t + 1], next_html, variant=variant
                ),
                "task": intent,
                "action": step.response,
                "reward": outcome,
                "done": last,
                "trajectory_reward": trajectory_reward,
                "mc_return": returns[t],
                "task_id": task["task_id"],
                "template_id": task["intent_template_id"],
            }
        )
    return records


def _select(
    split: str, limit: int | None, template: int | None = None, seed: int = DEFAULT_SEED
) -> list[dict]:
    tasks = load_tasks(split, seed)
    if template is not None:
        tasks = [t for t in tasks if t["intent_template_id"] == template]
    return tasks[:limit] if limit else tasks


def cmd_oracle(args: argparse.Namespace) -> dict:
    tasks = _select(args.split, args.limit, args.template, args.seed)
    client, thread = ensure_world(args.world_url, args.instances, args.seed)
    started = time.perf_counter()
    failures: list[dict] = []

    done: list[int] = []

    def progress(record: dict) -> None:
        done.append(int(record["solved"]))
        if args.progress and len(done) % 50 == 0:
            elapsed = time.perf_counter() - started
            print(f"{len(done)}/{len(tasks)} run, {sum(done)} solved, {elapsed:.0f} s",
                  file=sys.stderr, flush=True)  # fmt: skip
        if not record["solved"]:
            failures.append(record)
            if args.verbose:
                keys = (
                    "task_id",
                    "template_id",
                    "status",
                    "score",
                    "answer",
                    "error",
                    "eval_detail",
                )
                print(json.dumps({k: record[k] for k in keys})[:1500], file=sys.stderr)

    try:
        results = asyncio.run(run_oracle(tasks, client, args.instances, on_result=progress))
    finally:
        if thread is not None:
            thread.stop()
    out = report(args.split, results)
    out["seed"] = args.seed
    out["seconds"] = round(time.perf_counter() - started, 1)
    out["failed_task_ids"] = [f["task_id"] for f in failures][:50]
    out["infra_retries"] = sum(r["attempts"] - 1 for r in results)
    return out


def cmd_export_sft(args: argparse.Namespace) -> dict:
    tasks = _select(args.split, args.limit, seed=args.seed)
    client, thread = ensure_world(args.world_url, args.instances, args.seed)
    written = trajectories = 0
    try:
        results = asyncio.run(
            run_oracle(tasks, client, args.instances, keep_steps=True, view=args.view)
        )
        with open(args.out, "w", encoding="utf-8") as fh:
            for r in results:
                if r["status"] != "ok" or not r["episode"].steps:
                    continue
                trajectories += 1
                score = float(r["score"] or 0.0)
                for record in sft_records(r["task"], r["episode"], score, args.prompt):
                    fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                    written += 1
    finally:
        if thread is not None:
            thread.stop()
    solved = sum(int(r["solved"]) for r in results)
    return {
        "split": args.split,
        "out": args.out,
        "trajectories": trajectories,
        "solved": solved,
        "steps": written,
    }


async def _page_times(client: WorldClient, urls: list[str]) -> list[float]:
    from trainer.env.pool import BrowserPool

    state = client.storage_state(0)
    times = []
    async with BrowserPool(contexts=1) as pool:
        browser = await pool._ensure_browser()
        context = await browser.new_context(
            viewport={"width": 1280, "height": 720}, storage_state=state
        )
        page = await context.new_page()
        for url in urls:
            started = time.perf_counter()
            await page.goto(url, wait_until="load")
            times.append((time.perf_counter() - started) * 1000)
        await context.close()
    return times


def _stats(values: list[float]) -> dict:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"median": round(statistics.median(ordered), 2), "p95": round(p95, 2)}


def cmd_bench(args: argparse.Namespace) -> dict:
    from trainer.env.webarena import resolve_placeholders

    client, thread = ensure_world(args.world_url, args.instances, args.seed)
    try:
        resets, server_resets = [], []
        for _ in range(args.resets):
            started = time.perf_counter()
            server_resets.append(client.reset_ms(0))
            resets.append((time.perf_counter() - started) * 1000)
        urls = client.site_urls(0)
        starts = []
        for task in load_tasks("test", args.seed):
            start = resolve_placeholders(task["start_url"], urls)
            if start not in starts:
                starts.append(start)
        pages = [resolve_placeholders(t["start_url"], urls) for t in load_tasks("test", args.seed)]
        page_times = asyncio.run(_page_times(client, (starts + pages)[: args.pages]))
        return {
            "reset_ms": _stats(resets),
            "reset_server_ms": _stats(server_resets),
            "page_ms": _stats(page_times),
            "instances": client.instances(),
            "resets": len(resets),
            "pages": len(page_times),
        }
    finally:
        if thread is not None:
            thread.stop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="world", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    seed_help = (
        "build the world from this seed: the same templates over other products, forums, "
        "projects, people and places (default %(default)s)"
    )
    p = sub.add_parser("serve", help="serve the world until interrupted")
    p.add_argument("--instances", type=int, default=1)
    p.add_argument("--port", type=int, default=9400)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=seed_help)
    p.add_argument("--host", default="127.0.0.1", help="the address the servers listen on")
    p.add_argument(
        "--public-host",
        default=None,
        help="the host name in the URLs handed to agents (default: --host); in compose, the "
        "world service's name",
    )
    for name in ("oracle", "export-sft", "bench"):
        p = sub.add_parser(name)
        p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=seed_help)
        p.add_argument("--world-url", default=DEFAULT_WORLD_URL)
        p.add_argument("--instances", type=int, default=2)
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        if name != "bench":
            p.add_argument(
                "--split", choices=("train", "test"), required=name == "oracle", default="train"
            )
            p.add_argument("--limit", type=int, default=None)
            p.add_argument("--template", type=int, default=None, help="only this template id")
        if name == "oracle":
            p.add_argument("--verbose", action="store_true", help="print failures to stderr")
            p.add_argument("--progress", action="store_true", help="print a count every 50 tasks")
        if name == "export-sft":
            p.add_argument("--out", required=True)
            p.add_argument(
                "--view",
                choices=VIEWS,
                default="webrl",
                help="the page view the records hold (compact: demo-cpu's; see rollout.observation)",
            )
            p.add_argument(
                "--prompt",
                choices=PROMPTS,
                default="webrl",
                help="the agent prompt's variant (see rollout.prompt)",
            )
        if name == "bench":
            p.add_argument("--resets", type=int, default=50)
            p.add_argument("--pages", type=int, default=50)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        print(
            f"world: {args.instances} instance(s) of seed {args.seed}, control API on port "
            f"{args.port}",
            flush=True,
        )
        serve(args.instances, args.port, args.host, seed=args.seed, public_host=args.public_host)
        return 0
    if getattr(args, "instances", 1) < 1:
        print("--instances must be at least 1", file=sys.stderr)
        return 2
    handler = {"oracle": cmd_oracle, "export-sft": cmd_export_sft, "bench": cmd_bench}
    try:
        out = handler[args.command](args)
    except WrongWorld as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(out))
    else:
        print(json.dumps(out, indent=2))
    if args.command == "oracle":
        return 0 if out["solved"] == out["total"] else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
