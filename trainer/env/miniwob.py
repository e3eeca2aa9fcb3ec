"""MiniWoB++ behind the same episode interface: serve the `miniwob` package's pages on 127.0.0.1,
start seeded episodes, take the utterance as the intent and the page's own reward as the score.
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

EVAL_TYPE = "miniwob_reward"
DEFAULT_MAX_TIME_MS = 10000  # the package's own episode limit


def html_dir() -> Path:
    import miniwob

    return Path(miniwob.__file__).parent / "html"


def task_names() -> list[str]:
    """The 130 task pages shipped by the package, sorted."""
    return sorted(p.stem for p in (html_dir() / "miniwob").glob("*.html"))


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class MiniWobServer:
    """A threaded static server for the package's html/ folder on an ephemeral 127.0.0.1 port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        handler = functools.partial(_QuietHandler, directory=str(html_dir()))
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> MiniWobServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> MiniWobServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_task(name: str, base_url: str, *, seed: int = 0, max_time_ms: int | None = None) -> dict:
    """A task config that `BrowserPool.run_episode` runs as a MiniWoB++ episode."""
    if name not in task_names():
        raise ValueError(f"unknown MiniWoB++ task {name!r}")
    return {
        "task_id": f"miniwob:{name}:{seed}",
        "world": "miniwob",
        "sites": [],
        "intent": "",
        "start_url": f"{base_url.rstrip('/')}/miniwob/{name}.html",
        "miniwob": {"task": name, "seed": seed, "max_time_ms": max_time_ms or DEFAULT_MAX_TIME_MS},
        "eval": {"eval_types": [EVAL_TYPE]},
    }


_START_JS = """async ([seed, maxTime]) => {
  Math.seedrandom(seed);
  core.EPISODE_MAX_TIME = maxTime;
  core.startEpisodeReal();
  for (let i = 0; i < 100 && !WOB_TASK_READY; i++) await new Promise(r => setTimeout(r, 20));
  if (!WOB_TASK_READY) throw new Error("MiniWoB++ task did not become ready");
  return core.getUtterance();
}"""


async def start_episode(page: Any, task: dict) -> str:
    """Seed and start the episode on the loaded page; returns the utterance (the intent)."""
    spec = task.get("miniwob") or {}
    seed = spec.get("seed", 0)
    max_time = int(spec.get("max_time_ms") or DEFAULT_MAX_TIME_MS)
    return await page.evaluate(_START_JS, [seed, max_time])


async def is_done(page: Any) -> bool:
    return bool(await page.evaluate("() => WOB_DONE_GLOBAL === true"))


async def read_reward(page: Any) -> tuple[float, dict]:
    """Score = max(0, raw reward) once the page says the episode ended, else 0."""
    state = await page.evaluate(
        "() => ({done: WOB_DONE_GLOBAL, raw: WOB_RAW_REWARD_GLOBAL,"
        " reward: WOB_REWARD_GLOBAL, reason: WOB_REWARD_REASON})"
    )
    detail = {
        "done": bool(state["done"]),
        "raw_reward": state["raw"],
        "reward": state["reward"],
        "reason": state["reason"],
    }
    if not state["done"]:
        return 0.0, {**detail, "reason": "the episode had not ended"}
    return max(0.0, float(state["raw"] or 0.0)), detail
