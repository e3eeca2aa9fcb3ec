"""Step speed of our environment vs raw Playwright (the floor) vs BrowserGym, on the same MiniWoB++
tasks with the same random-click policy. Run: `python manage.py bench_env --json`
(or `python -m trainer.bench.env_bench --json`). Prints one JSON object; never a made-up number.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from trainer.env import miniwob
from trainer.env.actions import centre
from trainer.env.observation import JPEG_QUALITY, observe
from trainer.env.pool import CHROMIUM_ARGS, VIEWPORT, BrowserPool
from trainer.env.types import EpisodeLimits, PolicyOutput

TASKS = ["click-checkboxes", "enter-text", "login-user", "click-button", "click-checkboxes-large"]
EPISODE_STEPS = 20  # an episode is cut after this many steps (or ends when the page says so)
BROWSERGYM_PACKAGES = ["browsergym-core==0.14.3", "browsergym-miniwob==0.14.3"]
BROWSERGYM_CHROMIUM_REVISION = (
    "chromium-1117"  # what playwright 1.44 (pinned by browsergym) looks for
)


def _summary(latencies_ms: list[float], steps: int, wall_s: float, resets_ms: list[float]) -> dict:
    lat = sorted(latencies_ms)
    return {
        "steps": steps,
        "wall_s": round(wall_s, 2),
        "steps_per_s": round(steps / wall_s, 2) if wall_s > 0 else None,
        "step_ms_p50": round(statistics.median(lat), 1) if lat else None,
        "step_ms_p90": round(lat[int(0.9 * (len(lat) - 1))], 1) if lat else None,
        "reset_ms_p50": round(statistics.median(resets_ms), 1) if resets_ms else None,
    }


def _random_click_policy(rng: random.Random):
    async def policy(ctx):
        ids = list(ctx.observation.elements)
        if not ids:
            return PolicyOutput('do(action="Scroll Down")')
        return PolicyOutput(f'do(action="Click", element="{rng.choice(ids)}")')

    return policy


async def bench_ours(base_url: str, tasks: list[str], contexts: int, steps: int) -> dict:
    """Episodes through BrowserPool.run_episode, `contexts` at a time, until `steps` steps."""
    limits = EpisodeLimits(max_steps=EPISODE_STEPS, max_repeats=10_000)
    latencies: list[float] = []
    resets: list[float] = []
    counter = {"steps": 0, "episodes": 0, "errors": 0}
    async with BrowserPool(contexts=contexts) as pool:

        async def worker(w: int) -> None:
            while counter["steps"] < steps:
                i = counter["episodes"]
                counter["episodes"] += 1
                task = miniwob.make_task(
                    tasks[i % len(tasks)], base_url, seed=i, max_time_ms=600_000
                )
                t0 = time.perf_counter()
                result = await pool.run_episode(
                    task, _random_click_policy(random.Random(i)), limits=limits
                )
                wall_ms = (time.perf_counter() - t0) * 1000
                counter["errors"] += result.status != "ok"
                step_ms = [s.elapsed_ms for s in result.steps]
                latencies.extend(step_ms)
                resets.append(wall_ms - sum(step_ms))
                counter["steps"] += len(step_ms)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(contexts)))
        wall = time.perf_counter() - t0
    out = _summary(latencies, counter["steps"], wall, resets)
    out.update(episodes=counter["episodes"], errors=counter["errors"])
    return out


async def bench_floor(base_url: str, tasks: list[str], contexts: int, steps: int) -> dict:
    """Raw Playwright on the same pages: mouse click + page.content() + JPEG screenshot per step."""
    from playwright.async_api import async_playwright

    latencies: list[float] = []
    resets: list[float] = []
    counter = {"steps": 0, "episodes": 0}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)

        async def worker(w: int) -> None:
            while counter["steps"] < steps:
                i = counter["episodes"]
                counter["episodes"] += 1
                rng = random.Random(i)
                name = tasks[i % len(tasks)]
                t0 = time.perf_counter()
                context = await browser.new_context(viewport=VIEWPORT)
                page = await context.new_page()
                await page.goto(f"{base_url}/miniwob/{name}.html", wait_until="load")
                task = miniwob.make_task(name, base_url, seed=i, max_time_ms=600_000)
                await miniwob.start_episode(page, task)
                # The same candidates as our policy: the labelled elements of the first page.
                labelled = (await observe(page, screenshot=False)).elements.values()
                points = [centre(e["bbox"]) for e in labelled]
                resets.append((time.perf_counter() - t0) * 1000)
                for _ in range(EPISODE_STEPS):
                    t1 = time.perf_counter()
                    x, y = rng.choice(points) if points else (80, 100)
                    await page.mouse.click(x, y)
                    await page.content()
                    await page.screenshot(type="jpeg", quality=JPEG_QUALITY)
                    done = await miniwob.is_done(page)
                    latencies.append((time.perf_counter() - t1) * 1000)
                    counter["steps"] += 1
                    if done or counter["steps"] >= steps:
                        break
                t2 = time.perf_counter()
                await context.close()
                resets[-1] += (time.perf_counter() - t2) * 1000

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(contexts)))
        wall = time.perf_counter() - t0
        await browser.close()
    out = _summary(latencies, counter["steps"], wall, resets)
    out["episodes"] = counter["episodes"]
    return out


_BROWSERGYM_SCRIPT = r"""
import json, random, statistics, sys, time
import gymnasium as gym
import browsergym.miniwob  # registers the tasks

cfg = json.loads(sys.argv[1])
latencies, resets, steps, episodes = [], [], 0, 0
t_start = time.perf_counter()
while steps < cfg["steps"]:
    name = cfg["tasks"][episodes % len(cfg["tasks"])]
    rng = random.Random(episodes)
    t0 = time.perf_counter()
    env = gym.make(f"browsergym/miniwob.{name}", headless=True, **cfg["env_kwargs"])
    obs, info = env.reset(seed=episodes)
    resets.append((time.perf_counter() - t0) * 1000)
    episodes += 1
    for _ in range(cfg["episode_steps"]):
        props = obs.get("extra_element_properties", {})
        bids = [b for b, p in props.items() if p.get("clickable") and (p.get("visibility") or 0) > 0.5]
        action = f'click("{rng.choice(bids)}")' if bids else "noop()"
        t1 = time.perf_counter()
        obs, reward, terminated, truncated, info = env.step(action)
        latencies.append((time.perf_counter() - t1) * 1000)
        steps += 1
        if terminated or truncated or steps >= cfg["steps"]:
            break
    t2 = time.perf_counter()
    env.close()
    resets[-1] += (time.perf_counter() - t2) * 1000
wall = time.perf_counter() - t_start
lat = sorted(latencies)
print(json.dumps({
    "steps": steps, "episodes": episodes, "wall_s": round(wall, 2),
    "steps_per_s": round(steps / wall, 2),
    "step_ms_p50": round(statistics.median(lat), 1),
    "step_ms_p90": round(lat[int(0.9 * (len(lat) - 1))], 1),
    "reset_ms_p50": round(statistics.median(resets), 1),
}))
"""


def ensure_browsergym(venv: Path) -> tuple[Path | None, str]:
    """A virtualenv with BrowserGym (it pins an older Playwright); returns (python, error)."""
    python = venv / "bin" / "python"
    if not python.exists():
        made = subprocess.run(
            [sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True
        )
        if made.returncode != 0:
            return None, f"cannot create {venv}: {made.stderr.strip()[-300:]}"
    check = subprocess.run([str(python), "-c", "import browsergym.miniwob"], capture_output=True)
    if check.returncode != 0:
        pip = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *BROWSERGYM_PACKAGES],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if pip.returncode != 0:
            return (
                None,
                f"pip install {' '.join(BROWSERGYM_PACKAGES)} failed: {pip.stderr.strip()[-400:]}",
            )
    browsers = venv.parent / "pw-browsers"
    chrome = browsers / BROWSERGYM_CHROMIUM_REVISION / "chrome-linux" / "chrome"
    if not chrome.exists():
        chrome.parent.mkdir(parents=True, exist_ok=True)
        chrome.symlink_to("/usr/bin/chromium")
    return python, ""


def bench_browsergym(
    venv: Path, base_url: str, tasks: list[str], steps: int, env_kwargs: dict
) -> dict:
    python, error = ensure_browsergym(venv)
    if python is None:
        return {"error": error}
    cfg = {"tasks": tasks, "steps": steps, "episode_steps": EPISODE_STEPS, "env_kwargs": env_kwargs}
    env = {
        **os.environ,
        "MINIWOB_URL": f"{base_url}/miniwob/",
        "PLAYWRIGHT_BROWSERS_PATH": str(venv.parent / "pw-browsers"),
    }
    try:
        run = subprocess.run(
            [str(python), "-c", _BROWSERGYM_SCRIPT, json.dumps(cfg)],
            capture_output=True,
            text=True,
            env=env,
            timeout=1200,
        )
    except subprocess.TimeoutExpired:
        return {"error": "BrowserGym run took longer than 20 minutes"}
    if run.returncode != 0:
        return {"error": f"BrowserGym run failed: {run.stderr.strip()[-600:]}"}
    try:
        return json.loads(run.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return {"error": f"BrowserGym printed no result: {run.stdout[-300:]}"}


def _ratio(a: Any, b: Any) -> float | None:
    if isinstance(a, int | float) and isinstance(b, int | float) and b > 0:
        return round(a / b, 2)
    return None


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="bench_env", description=__doc__)
    parser.add_argument("--json", action="store_true", help="one line of JSON")
    parser.add_argument("--steps", type=int, default=120, help="steps per measurement")
    parser.add_argument("--browsergym-steps", type=int, default=40)
    parser.add_argument("--contexts", default="1,2,4")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--skip-browsergym", action="store_true")
    parser.add_argument("--browsergym-venv", type=Path, default=Path("var/bench/browsergym-venv"))
    args = parser.parse_args(argv)
    tasks = [t for t in args.tasks.split(",") if t]
    contexts = [int(c) for c in args.contexts.split(",")]
    result: dict[str, Any] = {
        "tasks": tasks,
        "policy": "uniform random click on a labelled element; episodes cut at 20 steps",
        "load_avg_1m_before": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    with miniwob.MiniWobServer() as server:
        ours = {}
        for c in contexts:
            ours[f"contexts_{c}"] = asyncio.run(bench_ours(server.base_url, tasks, c, args.steps))
        result["ours"] = ours
        result["playwright_floor"] = {
            "contexts_1": asyncio.run(bench_floor(server.base_url, tasks, 1, args.steps))
        }
        if args.skip_browsergym:
            result["browsergym"] = {"error": "skipped (--skip-browsergym)"}
        else:
            venv = args.browsergym_venv.resolve()
            result["browsergym"] = {
                "default": bench_browsergym(
                    venv, server.base_url, tasks, args.browsergym_steps, {}
                ),
            }
    ours1 = result["ours"].get("contexts_1", {}).get("steps_per_s")
    bg = result["browsergym"].get("default", result["browsergym"])
    result["ratio_vs_browsergym"] = _ratio(ours1, bg.get("steps_per_s"))
    result["ratio_vs_floor"] = _ratio(
        ours1, result["playwright_floor"]["contexts_1"]["steps_per_s"]
    )
    floor1 = result["playwright_floor"]["contexts_1"]
    result["step_latency_ratio_vs_floor"] = _ratio(
        floor1.get("step_ms_p50"), result["ours"].get("contexts_1", {}).get("step_ms_p50")
    )
    result["ratio_definition"] = (
        "ratio_vs_*: ours steps/s / theirs (1 context, resets included, same random-click policy);"
        " step_latency_ratio_vs_floor: floor p50 step ms / ours"
    )
    result["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
