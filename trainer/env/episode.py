"""One episode's loop: observe, prompt the policy, parse and execute its action, settle, evaluate.

`BrowserPool` (`trainer.env.pool`) owns the browser and contexts and hands each episode a fresh one.
Infrastructure faults (a hung page, a crashed page or browser, a policy that raises) end the episode
with status `timeout` or `error` and `score=None`, never as a silent reward 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from playwright.async_api import Error as PlaywrightError

from trainer.env import evaluators, miniwob
from trainer.env.actions import ActionFailed, Kind, ParseError, execute_action, parse_action
from trainer.env.observation import html_view, observe_counting_popups
from trainer.env.types import (
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
from trainer.env.valid_actions import valid_actions
from trainer.prompts import build_agent_prompt

log = logging.getLogger(__name__)

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


def without_noop_repeat(choices: list[str], steps: list[StepRecord], seen: str) -> list[str]:
    """`choices` less the previous step's action (with or without its `# Element:` line) when the
    page it was taken on is the page now seen: an action that changed nothing is not repeated."""
    if not steps or steps[-1].action is None or steps[-1].observation != seen:
        return choices
    call = steps[-1].response.strip().splitlines()[-1].strip()
    kept = [c for c in choices if c.splitlines()[-1].strip() != call]
    return kept or choices


class EpisodeAbort(Exception):
    """Ends an episode for an infrastructure reason."""

    def __init__(self, status: str, reason: str, *, browser_fault: bool = False):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.browser_fault = browser_fault


def start_urls(task: dict) -> list[str]:
    raw = task.get("start_url") or ""
    return [u.strip() for u in raw.split(" |AND| ") if u.strip()] or ["about:blank"]


class Episode:
    """One running episode: its state (kept outside the watchdog so partial steps survive) and its loop.

    `browser_alive` tells whether the pool's browser still answers, to tell a fault from a failure.
    """

    def __init__(self, task: dict, browser_alive: Callable[[], bool]):
        self.browser_alive = browser_alive
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

    def fault(self, exc: BaseException) -> str:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if self.crashed:
            return f"{self.crashed}: {first}"
        if not self.browser_alive():
            return f"browser disconnected: {first}"
        return f"browser error: {first}"

    def dead(self) -> bool:
        return bool(self.crashed) or not self.browser_alive()

    async def run(
        self,
        context: Any,
        policy: Policy,
        limits: EpisodeLimits,
        on_step: Callable[[StepRecord], Awaitable[None] | None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        def opened(p: Any) -> None:
            self.new_pages.append(p)
            self.page_opened.set()

        context.on("page", opened)
        timeout_s = limits.action_timeout_s
        for url in start_urls(self.task):
            page = await context.new_page()
            self._watch(page)
            self.new_pages.clear()
            if url != "about:blank":
                await self._guard(page.goto(url, wait_until="load"), timeout_s, f"goto {url}")
        if self.task.get("world") == "miniwob":
            self.intent = await self._guard(
                miniwob.start_episode(self.page, self.task), timeout_s, "miniwob start"
            )
        self.obs = await self._observe(limits)
        view = html_view(limits.view)
        responses: list[str] = []
        failures = 0
        while True:
            if should_stop is not None and should_stop():
                self.stop_reason = "cancelled"
                return
            if len(self.steps) >= limits.max_steps:
                self.stop_reason = f"reached {limits.max_steps} steps"
                self.final_answer = f"Early stop: {self.stop_reason}"
                return
            t0 = time.perf_counter()
            obs = self.obs
            seen = view(obs.html)
            prompt = build_agent_prompt(self.intent, responses, seen, variant=limits.prompt)
            ctx = StepContext(self.task, self.intent, len(self.steps), prompt, obs, list(responses))
            if limits.decoding == "valid_actions":
                question = limits.answer_questions and self.intent.rstrip().endswith("?")
                ctx.valid_actions = valid_actions(
                    self.intent, seen, arguments=limits.arguments, empty_exit=not question
                )
                if limits.block_noop_repeats:
                    ctx.valid_actions = without_noop_repeat(ctx.valid_actions, self.steps, seen)
            try:
                out = await policy(ctx)
                text = out.text if isinstance(out.text, str) else str(out.text)
            except Exception as exc:
                raise EpisodeAbort(
                    STATUS_ERROR, f"policy raised {type(exc).__name__}: {exc}"
                ) from exc
            action = parse_action(text)
            record = StepRecord(
                index=len(self.steps),
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
                self.final_answer = action.argument
                self.stop_reason = "exit"
                done = True
            else:
                failures = 0
                record.error = await self._act(action, obs, limits)
                self.obs = await self._observe(limits)
            record.elapsed_ms = round((time.perf_counter() - t0) * 1000, 2)
            self.steps.append(record)
            if on_step is not None:
                maybe = on_step(record)
                if inspect.isawaitable(maybe):
                    await maybe
            if done:
                return
            if self.task.get("world") == "miniwob" and await self._guard(
                miniwob.is_done(self.page), timeout_s, "miniwob reward"
            ):
                self.stop_reason = "miniwob episode ended"
                return
            tail = responses[-limits.max_repeats :]
            if len(tail) == limits.max_repeats and len(set(tail)) == 1:
                self.stop_reason = f"{limits.max_repeats} identical actions in a row"
                self.final_answer = f"Early stop: {self.stop_reason}"
                return
            if failures >= limits.max_parse_failures:
                self.stop_reason = f"{failures} unparsable responses in a row"
                self.final_answer = f"Early stop: {self.stop_reason}"
                return

    def _watch(self, page: Any) -> None:
        self.page = page

        def crashed(_: Any) -> None:
            self.crashed = "page crashed"

        def request(req: Any) -> None:
            if page is self.page and req.is_navigation_request() and req.frame == page.main_frame:
                self.nav_started = True
                self.nav_event.set()
                self.loaded.clear()

        def loaded(_: Any) -> None:
            if page is self.page:
                self.loaded.set()

        page.on("crash", crashed)
        page.on("request", request)
        page.on("domcontentloaded", loaded)

    async def _guard(self, coro: Awaitable[Any], timeout_s: float, what: str) -> Any:
        """Await a browser call; a hang is a timeout, a dead page or browser an error."""
        try:
            return await asyncio.wait_for(coro, timeout_s)
        except TimeoutError:
            raise EpisodeAbort(STATUS_TIMEOUT, f"{what}: no answer within {timeout_s} s") from None
        except PlaywrightError as exc:
            raise EpisodeAbort(
                STATUS_ERROR, f"{what}: {self.fault(exc)}", browser_fault=self.dead()
            ) from None

    async def _observe(self, limits: EpisodeLimits) -> Observation:
        """Observe the current tab; if the last action opened a tab, move there and observe it."""
        obs, popups = await self._observe_once(limits)
        if popups and not self.new_pages:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.page_opened.wait(), limits.settle_ms / 1000)
        if self.new_pages:
            await self._settle(limits, scrolled=False)
            obs, _ = await self._observe_once(limits)
        return obs

    async def _observe_once(self, limits: EpisodeLimits) -> tuple[Observation, int]:
        """Observe; a page caught between two documents is waited for and observed again."""
        for attempt in range(3):
            try:
                return await self._observe_raw(limits)
            except EpisodeAbort as exc:
                if attempt == 2 or exc.status != STATUS_ERROR or self.dead():
                    raise
                if not any(m in exc.reason for m in _MID_NAVIGATION):
                    raise
            with contextlib.suppress(PlaywrightError, TimeoutError):
                await self.page.wait_for_load_state(
                    "domcontentloaded", timeout=max(limits.settle_ms, 1)
                )
        raise AssertionError("unreachable")

    async def _observe_raw(self, limits: EpisodeLimits) -> tuple[Observation, int]:
        if limits.screenshots and self.cdp_page is not self.page:
            self.cdp = await self._guard(
                self.page.context.new_cdp_session(self.page), limits.action_timeout_s, "cdp"
            )
            self.cdp_page = self.page
        return await self._guard(
            observe_counting_popups(self.page, screenshot=limits.screenshots, cdp=self.cdp),
            limits.action_timeout_s,
            "observation",
        )

    async def _act(self, action: Any, obs: Observation, limits: EpisodeLimits) -> str | None:
        """Execute and settle; returns the step's error text, or raises EpisodeAbort for faults."""
        self.nav_started = False
        self.nav_event.clear()
        self.page_opened.clear()
        timeout_s = limits.action_timeout_s
        error = None
        try:
            await asyncio.wait_for(
                execute_action(self.page, action, obs.elements, timeout_ms=timeout_s * 1000),
                timeout_s,
            )
        except ActionFailed as exc:
            error = f"action failed: {exc}"
        except TimeoutError:
            msg = f"{action.kind.value}: no answer within {timeout_s} s"
            raise EpisodeAbort(STATUS_TIMEOUT, msg) from None
        except PlaywrightError as exc:
            if self.dead():
                raise EpisodeAbort(
                    STATUS_ERROR, f"{action.kind.value}: {self.fault(exc)}", browser_fault=True
                ) from None
            error = f"action failed: {str(exc).strip().splitlines()[0]}"
        await self._settle(
            limits,
            scrolled=action.kind in (Kind.SCROLL_DOWN, Kind.SCROLL_UP),
            may_navigate=action.kind in _MAY_NAVIGATE,
        )
        return error

    async def _settle(
        self, limits: EpisodeLimits, *, scrolled: bool, may_navigate: bool = False
    ) -> None:
        """Let the page react: one frame, then the new document's DOMContentLoaded if navigating."""
        await asyncio.sleep(0.005)
        if may_navigate and not self.nav_started and not self.new_pages and limits.nav_grace_ms:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.nav_event.wait(), limits.nav_grace_ms / 1000)
        if self.new_pages:
            page = self.new_pages[-1]
            self.new_pages.clear()
            self._watch(page)
            with contextlib.suppress(PlaywrightError, TimeoutError):
                await page.wait_for_load_state("domcontentloaded", timeout=max(limits.settle_ms, 1))
            return
        if self.nav_started and not self.loaded.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.loaded.wait(), limits.settle_ms / 1000)
        if scrolled:
            # A wheel event scrolls on the next frame; input events already waited for theirs.
            with contextlib.suppress(PlaywrightError, TimeoutError):
                await asyncio.wait_for(
                    self.page.evaluate("() => new Promise(r => requestAnimationFrame(() => r(0)))"),
                    max(limits.settle_ms / 1000, 0.05),
                )

    async def finish(
        self,
        context: Any,
        status: str,
        error: str,
        limits: EpisodeLimits,
        judge: Any,
        evaluate: bool,
        browser_fault: bool = False,
    ) -> EpisodeResult:
        """The episode's result; `browser_fault`: it ended because its browser or page broke."""
        final_url = ""
        if self.page is not None:
            with contextlib.suppress(Exception):
                final_url = self.page.url
        detail: dict = {"stop_reason": self.stop_reason}
        if self.blocked:
            detail["blocked_requests"] = list(self.blocked)
        score = None
        if status == STATUS_OK and evaluate and not self.dead():
            try:
                score, more = await asyncio.wait_for(
                    evaluators.evaluate_task(
                        self.task, context, self.final_answer or "", final_url, judge=judge
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
            status, error = STATUS_ERROR, self.fault(RuntimeError("before evaluation"))
            browser_fault = True
        return EpisodeResult(
            status=status,
            steps=self.steps,
            final_answer=self.final_answer,
            final_url=final_url,
            last_html=html_view(limits.view)(self.obs.html) if self.obs is not None else "",
            score=score if status == STATUS_OK else None,
            eval_detail=detail,
            error=error,
            evaluator_version=evaluators.EVALUATOR_VERSION,
            intent=self.intent,
            browser_fault=browser_fault and status == STATUS_ERROR,
        )
