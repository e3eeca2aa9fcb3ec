"""The browser pool: one headless Chromium per process, N episode slots, each a fresh context.

It launches (and relaunches) the browser, gates each context to its allowed origins and runs
`trainer.env.episode.Episode` in a slot under the episode watchdog.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright

from trainer.env.episode import Episode, EpisodeAbort, start_urls
from trainer.env.observation import observe
from trainer.env.types import (
    STATUS_CANCELLED,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_TIMEOUT,
    EpisodeLimits,
    EpisodeResult,
    Observation,
    Policy,
    StepRecord,
)

log = logging.getLogger(__name__)

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
VIEWPORT = {"width": 1280, "height": 720}
MAX_BLOCKED_LOGGED = 50
_PASS_SCHEMES = {"data", "blob", "about", "chrome-error"}


def origin_of(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}".lower()


def off_origin_pattern(allowed: set[str]) -> re.Pattern:
    """A regex matching every URL whose origin is not allowed (and not data:, blob:, about:)."""
    origins = "|".join(re.escape(o) for o in sorted(allowed)) or "(?!)"
    schemes = "|".join(sorted(_PASS_SCHEMES))
    return re.compile(rf"^(?!(?:(?:{schemes}):|(?:{origins})(?:[/?#]|$)))", re.IGNORECASE)


class BrowserPool:
    """One Chromium, `contexts` concurrent episodes, each in a fresh 1280x720 context."""

    def __init__(
        self,
        contexts: int = 1,
        executable_path: str = "/usr/bin/chromium",
        headless: bool = True,
    ):
        if contexts < 1:
            raise ValueError(f"BrowserPool needs at least 1 context, got {contexts}")
        self.contexts = contexts
        self.executable_path = executable_path
        self.headless = headless
        self._pw: Any = None
        self._browser: Any = None
        self._slots = asyncio.Semaphore(contexts)
        self._launch_lock = asyncio.Lock()
        self.launches = 0
        """How many times a browser was launched (relaunches after crashes included)."""

    async def __aenter__(self) -> BrowserPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        if self._pw is None:
            self._pw = await async_playwright().start()
        await self._ensure_browser()

    async def close(self) -> None:
        if self._browser is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._browser.close(), 10)
            self._browser = None
        if self._pw is not None:
            with contextlib.suppress(Exception):
                await self._pw.stop()
            self._pw = None

    async def _ensure_browser(self) -> Any:
        async with self._launch_lock:
            if self._pw is None:
                raise RuntimeError("BrowserPool is not started: use `async with BrowserPool()`")
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            if self._browser is not None:
                log.warning("browser disconnected; relaunching")
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._browser.close(), 5)
            self._browser = await self._pw.chromium.launch(
                executable_path=self.executable_path, headless=self.headless, args=CHROMIUM_ARGS
            )
            self.launches += 1
            return self._browser

    async def process_ids(self) -> dict[str, list[int]]:
        """Chromium's process ids by type ("browser", "renderer", ...), from its SystemInfo domain."""
        browser = await self._ensure_browser()
        cdp = await browser.new_browser_cdp_session()
        try:
            info = await cdp.send("SystemInfo.getProcessInfo")
        finally:
            with contextlib.suppress(Exception):
                await cdp.detach()
        ids: dict[str, list[int]] = {}
        for proc in info["processInfo"]:
            ids.setdefault(proc["type"], []).append(int(proc["id"]))
        return ids

    async def browser_pid(self) -> int:
        """The browser process id."""
        pids = (await self.process_ids()).get("browser")
        if not pids:
            raise RuntimeError("Chromium reported no browser process")
        return pids[0]

    async def _new_context(
        self, ep: Episode | None, allowed_origins: list[str] | None, storage_state: dict | None
    ) -> Any:
        browser = await self._ensure_browser()
        context = await browser.new_context(
            viewport=VIEWPORT, device_scale_factor=1, storage_state=storage_state
        )
        if allowed_origins is None:
            return context
        allowed = {origin_of(o) for o in allowed_origins}

        async def gate(route: Any) -> None:
            url = route.request.url
            if urlsplit(url).scheme.lower() in _PASS_SCHEMES or origin_of(url) in allowed:
                await route.continue_()  # the pattern should not have sent it here; be safe
                return
            log.info("blocked off-origin request %s", url)
            if ep is not None and len(ep.blocked) < MAX_BLOCKED_LOGGED:
                ep.blocked.append(url)
            await route.abort("blockedbyclient")

        # Matched in Playwright's driver: allowed requests never make a round trip to Python.
        await context.route(off_origin_pattern(allowed), gate)
        return context

    async def observe(
        self,
        url: str,
        *,
        storage_state: dict | None = None,
        allowed_origins: list[str] | None = None,
        screenshot: bool = True,
    ) -> Observation:
        """Open `url` in a fresh context and return its observation."""
        if allowed_origins is None:
            allowed_origins = [origin_of(url)]
        async with self._slots:
            context = await self._new_context(None, allowed_origins, storage_state)
            try:
                page = await context.new_page()
                await page.goto(url, wait_until="load", timeout=30000)
                return await observe(page, screenshot=screenshot)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(context.close(), 5)

    async def run_episode(
        self,
        task: dict,
        policy: Policy,
        *,
        limits: EpisodeLimits | None = None,
        allowed_origins: list[str] | None = None,
        storage_state: dict | None = None,
        on_step: Callable[[StepRecord], Awaitable[None] | None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        judge: Any = None,
        evaluate: bool = True,
    ) -> EpisodeResult:
        """Run one episode of `task` (a resolved WebArena-format config) with `policy`.

        `allowed_origins=None` allows the origins of the task's start URLs only.
        """
        limits = limits or EpisodeLimits()
        if allowed_origins is None:
            allowed_origins = [origin_of(u) for u in start_urls(task) if "://" in u]
        ep = Episode(task, self._alive)
        async with self._slots:
            status, error, context, broke = STATUS_OK, "", None, False
            try:
                context = await self._new_context(ep, allowed_origins, storage_state)
                # This episode's own browser: after a crash another slot may already have
                # relaunched the pool's, which says nothing about this episode's pages.
                ep.browser_alive = lambda: (
                    context.browser is not None and (context.browser.is_connected())
                )
                await asyncio.wait_for(
                    ep.run(context, policy, limits, on_step, should_stop),
                    limits.episode_timeout_s,
                )
                if ep.stop_reason == "cancelled":
                    status = STATUS_CANCELLED
            except EpisodeAbort as exc:
                status, error, broke = exc.status, exc.reason, exc.browser_fault
            except TimeoutError:
                status = STATUS_TIMEOUT
                error = f"episode watchdog: longer than {limits.episode_timeout_s} s"
            except PlaywrightError as exc:
                status, error, broke = STATUS_ERROR, ep.fault(exc), ep.dead()
            except asyncio.CancelledError:
                if context is not None:
                    with contextlib.suppress(BaseException):
                        await asyncio.shield(asyncio.wait_for(context.close(), 5))
                raise
            except Exception as exc:  # a bug or a bad callback must not take the worker down
                log.exception("episode failed")
                status, error = STATUS_ERROR, f"{type(exc).__name__}: {exc}"
            result = await ep.finish(context, status, error, limits, judge, evaluate, broke)
            if context is not None:
                try:
                    await asyncio.wait_for(context.close(), 10)
                except Exception as exc:  # a hung renderer can keep its context from closing
                    log.warning("context did not close (%s); relaunching the browser", exc)
                    await self._drop_browser(context.browser)
            return result

    async def _drop_browser(self, browser: Any) -> None:
        """Close `browser` so the next episode relaunches; a newer browser is left alone."""
        if browser is None or browser is not self._browser:
            return
        self._browser = None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(browser.close(), 5)

    def _alive(self) -> bool:
        return self._browser is not None and self._browser.is_connected()
