"""The browser pool: one headless Chromium per process, N episode slots, each a fresh context.

Infrastructure faults (a hung page, a crashed page or browser, a policy that raises) end the
episode with status `timeout` or `error` and `score=None`, never as a silent reward 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright

from trainer import evaluators, miniwob
from trainer.actions import ActionFailed, Kind, ParseError, execute_action, parse_action
from trainer.env import (
    STATUS_CANCELLED,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_TIMEOUT,
    EpisodeLimits,
    EpisodeResult,
    Observation,
    Policy,
    StepContext,
    StepRecord,
)
from trainer.observation import html_view, observe, observe_counting_popups
from trainer.prompts import build_agent_prompt
from trainer.valid_actions import valid_actions

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


# Actions after which a navigation may start a little late.
_MAY_NAVIGATE = {
    Kind.CLICK,
    Kind.SEARCH,
    Kind.SELECT,
    Kind.PRESS_ENTER,
    Kind.GO_BACKWARD,
    Kind.GO_FORWARD,
}
# Observation errors of a page caught between two documents (retried, not faults).
_MID_NAVIGATION = ("of null", "Execution context was destroyed", "navigat")


class _Abort(Exception):
    """Ends an episode for an infrastructure reason."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def origin_of(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}".lower()


def off_origin_pattern(allowed: set[str]) -> re.Pattern:
    """A regex matching every URL whose origin is not allowed (and not data:, blob:, about:)."""
    origins = "|".join(re.escape(o) for o in sorted(allowed)) or "(?!)"
    schemes = "|".join(sorted(_PASS_SCHEMES))
    return re.compile(rf"^(?!(?:(?:{schemes}):|(?:{origins})(?:[/?#]|$)))", re.IGNORECASE)


def start_urls(task: dict) -> list[str]:
    raw = task.get("start_url") or ""
    return [u.strip() for u in raw.split(" |AND| ") if u.strip()] or ["about:blank"]


class _Episode:
    """Mutable state of one running episode, kept outside the watchdog so partial steps survive."""

    def __init__(self, task: dict):
        self.task = task
        self.intent = str(task.get("intent") or "")
        self.steps: list[StepRecord] = []
        self.blocked: list[str] = []
        self.crashed = ""
        self.page: Any = None
        self.new_pages: list[Any] = []
        self.obs: Observation | None = None
        self.final_answer: str | None = None
        self.stop_reason = ""
        self.nav_started = False
        self.nav_event = asyncio.Event()
        self.loaded = asyncio.Event()
        self.cdp: Any = None
        self.page_opened = asyncio.Event()
        self.cdp_page: Any = None


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
        self, ep: _Episode | None, allowed_origins: list[str] | None, storage_state: dict | None
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
        ep = _Episode(task)
        async with self._slots:
            status, error, context = STATUS_OK, "", None
            try:
                context = await self._new_context(ep, allowed_origins, storage_state)
                await asyncio.wait_for(
                    self._loop(ep, context, policy, limits, on_step, should_stop),
                    limits.episode_timeout_s,
                )
                if ep.stop_reason == "cancelled":
                    status = STATUS_CANCELLED
            except _Abort as exc:
                status, error = exc.status, exc.reason
            except TimeoutError:
                status = STATUS_TIMEOUT
                error = f"episode watchdog: longer than {limits.episode_timeout_s} s"
            except PlaywrightError as exc:
                status, error = STATUS_ERROR, self._fault(ep, exc)
            except asyncio.CancelledError:
                if context is not None:
                    with contextlib.suppress(BaseException):
                        await asyncio.shield(asyncio.wait_for(context.close(), 5))
                raise
            except Exception as exc:  # a bug or a bad callback must not take the worker down
                log.exception("episode failed")
                status, error = STATUS_ERROR, f"{type(exc).__name__}: {exc}"
            result = await self._finish(ep, context, status, error, limits, judge, evaluate)
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

    def _fault(self, ep: _Episode, exc: BaseException) -> str:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if ep.crashed:
            return f"{ep.crashed}: {first}"
        if self._browser is None or not self._browser.is_connected():
            return f"browser disconnected: {first}"
        return f"browser error: {first}"

    def _dead(self, ep: _Episode) -> bool:
        return bool(ep.crashed) or self._browser is None or not self._browser.is_connected()

    async def _loop(
        self,
        ep: _Episode,
        context: Any,
        policy: Policy,
        limits: EpisodeLimits,
        on_step: Callable[[StepRecord], Awaitable[None] | None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        def opened(p: Any) -> None:
            ep.new_pages.append(p)
            ep.page_opened.set()

        context.on("page", opened)
        timeout_s = limits.action_timeout_s
        for url in start_urls(ep.task):
            page = await context.new_page()
            self._watch(ep, page)
            ep.new_pages.clear()
            if url != "about:blank":
                await self._guard(ep, page.goto(url, wait_until="load"), timeout_s, f"goto {url}")
        if ep.task.get("world") == "miniwob":
            ep.intent = await self._guard(
                ep, miniwob.start_episode(ep.page, ep.task), timeout_s, "miniwob start"
            )
        ep.obs = await self._observe(ep, limits)
        view = html_view(limits.view)
        responses: list[str] = []
        failures = 0
        while True:
            if should_stop is not None and should_stop():
                ep.stop_reason = "cancelled"
                return
            if len(ep.steps) >= limits.max_steps:
                ep.stop_reason = f"reached {limits.max_steps} steps"
                ep.final_answer = f"Early stop: {ep.stop_reason}"
                return
            t0 = time.perf_counter()
            obs = ep.obs
            seen = view(obs.html)
            prompt = build_agent_prompt(ep.intent, responses, seen, variant=limits.prompt)
            ctx = StepContext(ep.task, ep.intent, len(ep.steps), prompt, obs, list(responses))
            if limits.decoding == "valid_actions":
                ctx.valid_actions = valid_actions(ep.intent, seen)
            try:
                out = await policy(ctx)
                text = out.text if isinstance(out.text, str) else str(out.text)
            except Exception as exc:
                raise _Abort(STATUS_ERROR, f"policy raised {type(exc).__name__}: {exc}") from exc
            action = parse_action(text)
            record = StepRecord(
                index=len(ep.steps),
                observation=seen,
                prompt=prompt,
                response=text,
                token_ids=out.token_ids,
                logprobs=out.logprobs,
                action=None if isinstance(action, ParseError) else action.to_dict(),
                url=obs.url,
                screenshot=obs.screenshot,
                error=None,
                elapsed_ms=0.0,
            )
            responses.append(text)
            done = False
            if isinstance(action, ParseError):
                record.error = str(action)
                failures += 1
            elif action.kind == Kind.EXIT:
                failures = 0
                ep.final_answer = action.argument
                ep.stop_reason = "exit"
                done = True
            else:
                failures = 0
                record.error = await self._act(ep, action, obs, limits)
                ep.obs = await self._observe(ep, limits)
            record.elapsed_ms = round((time.perf_counter() - t0) * 1000, 2)
            ep.steps.append(record)
            if on_step is not None:
                maybe = on_step(record)
                if inspect.isawaitable(maybe):
                    await maybe
            if done:
                return
            if ep.task.get("world") == "miniwob" and await self._guard(
                ep, miniwob.is_done(ep.page), timeout_s, "miniwob reward"
            ):
                ep.stop_reason = "miniwob episode ended"
                return
            tail = responses[-limits.max_repeats :]
            if len(tail) == limits.max_repeats and len(set(tail)) == 1:
                ep.stop_reason = f"{limits.max_repeats} identical actions in a row"
                ep.final_answer = f"Early stop: {ep.stop_reason}"
                return
            if failures >= limits.max_parse_failures:
                ep.stop_reason = f"{failures} unparsable responses in a row"
                ep.final_answer = f"Early stop: {ep.stop_reason}"
                return

    def _watch(self, ep: _Episode, page: Any) -> None:
        ep.page = page

        def crashed(_: Any) -> None:
            ep.crashed = "page crashed"

        def request(req: Any) -> None:
            if page is ep.page and req.is_navigation_request() and req.frame == page.main_frame:
                ep.nav_started = True
                ep.nav_event.set()
                ep.loaded.clear()

        def loaded(_: Any) -> None:
            if page is ep.page:
                ep.loaded.set()

        page.on("crash", crashed)
        page.on("request", request)
        page.on("domcontentloaded", loaded)

    async def _guard(self, ep: _Episode, coro: Awaitable[Any], timeout_s: float, what: str) -> Any:
        """Await a browser call; a hang is a timeout, a dead page or browser an error."""
        try:
            return await asyncio.wait_for(coro, timeout_s)
        except TimeoutError:
            raise _Abort(STATUS_TIMEOUT, f"{what}: no answer within {timeout_s} s") from None
        except PlaywrightError as exc:
            raise _Abort(STATUS_ERROR, f"{what}: {self._fault(ep, exc)}") from None

    async def _observe(self, ep: _Episode, limits: EpisodeLimits) -> Observation:
        """Observe the current tab; if the last action opened a tab, move there and observe it."""
        obs, popups = await self._observe_once(ep, limits)
        if popups and not ep.new_pages:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ep.page_opened.wait(), limits.settle_ms / 1000)
        if ep.new_pages:
            await self._settle(ep, limits, scrolled=False)
            obs, _ = await self._observe_once(ep, limits)
        return obs

    async def _observe_once(self, ep: _Episode, limits: EpisodeLimits) -> tuple[Observation, int]:
        """Observe; a page caught between two documents is waited for and observed again."""
        for attempt in range(3):
            try:
                return await self._observe_raw(ep, limits)
            except _Abort as exc:
                if attempt == 2 or exc.status != STATUS_ERROR or self._dead(ep):
                    raise
                if not any(m in exc.reason for m in _MID_NAVIGATION):
                    raise
            with contextlib.suppress(PlaywrightError, TimeoutError):
                await ep.page.wait_for_load_state(
                    "domcontentloaded", timeout=max(limits.settle_ms, 1)
                )
        raise AssertionError("unreachable")

    async def _observe_raw(self, ep: _Episode, limits: EpisodeLimits) -> tuple[Observation, int]:
        if limits.screenshots and ep.cdp_page is not ep.page:
            ep.cdp = await self._guard(
                ep, ep.page.context.new_cdp_session(ep.page), limits.action_timeout_s, "cdp"
            )
            ep.cdp_page = ep.page
        return await self._guard(
            ep,
            observe_counting_popups(ep.page, screenshot=limits.screenshots, cdp=ep.cdp),
            limits.action_timeout_s,
            "observation",
        )

    async def _act(
        self, ep: _Episode, action: Any, obs: Observation, limits: EpisodeLimits
    ) -> str | None:
        """Execute and settle; returns the step's error text, or raises _Abort for faults."""
        ep.nav_started = False
        ep.nav_event.clear()
        ep.page_opened.clear()
        timeout_s = limits.action_timeout_s
        error = None
        try:
            await asyncio.wait_for(
                execute_action(ep.page, action, obs.elements, timeout_ms=timeout_s * 1000),
                timeout_s,
            )
        except ActionFailed as exc:
            error = f"action failed: {exc}"
        except TimeoutError:
            msg = f"{action.kind.value}: no answer within {timeout_s} s"
            raise _Abort(STATUS_TIMEOUT, msg) from None
        except PlaywrightError as exc:
            if self._dead(ep):
                raise _Abort(STATUS_ERROR, f"{action.kind.value}: {self._fault(ep, exc)}") from None
            error = f"action failed: {str(exc).strip().splitlines()[0]}"
        await self._settle(
            ep,
            limits,
            scrolled=action.kind in (Kind.SCROLL_DOWN, Kind.SCROLL_UP),
            may_navigate=action.kind in _MAY_NAVIGATE,
        )
        return error

    async def _settle(
        self, ep: _Episode, limits: EpisodeLimits, *, scrolled: bool, may_navigate: bool = False
    ) -> None:
        """Let the page react: one frame, then the new document's DOMContentLoaded if navigating."""
        await asyncio.sleep(0.005)
        if may_navigate and not ep.nav_started and not ep.new_pages and limits.nav_grace_ms:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ep.nav_event.wait(), limits.nav_grace_ms / 1000)
        if ep.new_pages:
            page = ep.new_pages[-1]
            ep.new_pages.clear()
            self._watch(ep, page)
            with contextlib.suppress(PlaywrightError, TimeoutError):
                await page.wait_for_load_state("domcontentloaded", timeout=max(limits.settle_ms, 1))
            return
        if ep.nav_started and not ep.loaded.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ep.loaded.wait(), limits.settle_ms / 1000)
        if scrolled:
            # A wheel event scrolls on the next frame; input events already waited for theirs.
            with contextlib.suppress(PlaywrightError, TimeoutError):
                await asyncio.wait_for(
                    ep.page.evaluate("() => new Promise(r => requestAnimationFrame(() => r(0)))"),
                    max(limits.settle_ms / 1000, 0.05),
                )

    async def _finish(
        self,
        ep: _Episode,
        context: Any,
        status: str,
        error: str,
        limits: EpisodeLimits,
        judge: Any,
        evaluate: bool,
    ) -> EpisodeResult:
        final_url = ""
        if ep.page is not None:
            with contextlib.suppress(Exception):
                final_url = ep.page.url
        detail: dict = {"stop_reason": ep.stop_reason}
        if ep.blocked:
            detail["blocked_requests"] = list(ep.blocked)
        score = None
        if status == STATUS_OK and evaluate and not self._dead(ep):
            try:
                score, more = await asyncio.wait_for(
                    evaluators.evaluate_task(
                        ep.task, context, ep.final_answer or "", final_url, judge=judge
                    ),
                    max(limits.action_timeout_s * 3, 60),
                )
                detail.update(more)
            except TimeoutError:
                detail["evaluator_error"] = "evaluation took too long"
            except Exception as exc:  # an evaluator bug must not take the worker down
                log.exception("evaluator failed")
                detail["evaluator_error"] = f"{type(exc).__name__}: {exc}"
        elif status == STATUS_OK and evaluate:
            status, error = STATUS_ERROR, self._fault(ep, RuntimeError("before evaluation"))
        return EpisodeResult(
            status=status,
            steps=ep.steps,
            final_answer=ep.final_answer,
            final_url=final_url,
            last_html=html_view(limits.view)(ep.obs.html) if ep.obs is not None else "",
            score=score if status == STATUS_OK else None,
            eval_detail=detail,
            error=error,
            evaluator_version=evaluators.EVALUATOR_VERSION,
            intent=ep.intent,
        )
