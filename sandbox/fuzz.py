"""Fuzz the action parser and executor on live pages of a private world:
`python -m sandbox.fuzz --inputs 10000 --json` (or `python manage.py fuzz_actions ...`).

A policy that answers with `trainer.bench.fuzz.fuzz_outputs` drives real episodes in Chromium; every
output is parsed and, when it parses, executed on the page. It reports how many outputs were tried,
parsed, executed, refused by the executor (`action failed`), and how many unhandled errors there were:
exceptions escaping an episode, or caught by the browser pool's catch-all (a bug, logged there).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time

from sandbox.client import WorldClient
from sandbox.server import WorldThread, free_port_block
from sandbox.tasks import load_tasks
from trainer.bench.fuzz import fuzz_outputs, parse_all
from trainer.env.pool import BrowserPool
from trainer.env.types import EpisodeLimits, PolicyOutput
from trainer.env.webarena import resolve_placeholders

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")

LIMITS = dict(
    max_repeats=1_000_000, max_parse_failures=1_000_000, action_timeout_s=15.0,
    episode_timeout_s=900.0, settle_ms=300, nav_grace_ms=20, screenshots=False,
)  # fmt: skip


class _CatchAll(logging.Handler):
    """Counts the browser pool's "episode failed" records: its catch-all for bugs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(
            record.getMessage() + (f": {record.exc_info[1]!r}" if record.exc_info else "")
        )


async def fuzz_live(
    inputs: int,
    seed: int = 0,
    steps_per_episode: int = 40,
    instances: int = 1,
    chromium: str | None = None,
) -> dict:
    """Run `inputs` fuzzed outputs through real episodes; returns the counts."""
    outputs = fuzz_outputs(seed)
    counts = {"tried": 0, "parsed": 0, "parse_errors": 0, "executed": 0, "action_failed": 0,
              "episodes": 0, "unhandled": 0}  # fmt: skip
    statuses: dict[str, int] = {}
    catch_all = _CatchAll()
    logging.getLogger("trainer.env.pool").addHandler(catch_all)
    escaped: list[str] = []

    async def policy(ctx) -> PolicyOutput:
        counts["tried"] += 1
        return PolicyOutput(next(outputs))

    tasks = [t for t in load_tasks("test") if len(t["sites"]) == 1]
    started = time.perf_counter()
    try:
        with WorldThread(instances, free_port_block()) as world, WorldClient(world.url) as client:
            urls = client.site_urls(0)
            storage, origins = client.storage_state(0), client.allowed_origins(0)
            async with BrowserPool(contexts=1, executable_path=chromium or CHROMIUM) as pool:
                while counts["tried"] < inputs:
                    task = resolve_placeholders(tasks[counts["episodes"] % len(tasks)], urls)
                    await asyncio.to_thread(client.reset_ms, 0)  # a private world: no lease
                    left = inputs - counts["tried"]
                    limits = EpisodeLimits(max_steps=max(1, min(steps_per_episode, left)), **LIMITS)
                    try:
                        result = await pool.run_episode(
                            task, policy, limits=limits, allowed_origins=origins,
                            storage_state=storage, evaluate=False,
                        )  # fmt: skip
                    except Exception as exc:  # noqa: BLE001 - counted, this is what we look for
                        escaped.append(f"{type(exc).__name__}: {exc}")
                        continue
                    finally:
                        counts["episodes"] += 1
                    statuses[result.status] = statuses.get(result.status, 0) + 1
                    for step in result.steps:
                        if step.action is None:
                            counts["parse_errors"] += 1
                        else:
                            counts["parsed"] += 1
                            if step.action.get("kind") != "exit":
                                counts["executed"] += 1
                            if step.error and step.error.startswith("action failed"):
                                counts["action_failed"] += 1
    finally:
        logging.getLogger("trainer.env.pool").removeHandler(catch_all)
    counts["unhandled"] = len(catch_all.messages) + len(escaped)
    return {
        **counts,
        "episode_statuses": statuses,
        "unhandled_errors": (catch_all.messages + escaped)[:20],
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=10_000, help="outputs through live episodes")
    parser.add_argument("--parse-only", type=int, default=100_000,
                        help="further outputs through the parser alone")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--chromium", default=CHROMIUM,
                        help="the browser binary (default: $CHROMIUM_PATH or /usr/bin/chromium)")  # fmt: skip
    args = parser.parse_args(argv)
    parsed = parse_all(fuzz_outputs(args.seed + 1), args.parse_only)
    live = asyncio.run(fuzz_live(args.inputs, args.seed, chromium=args.chromium))
    out = {"parser_only": parsed, "live": live}
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))
    return 0 if live["unhandled"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
