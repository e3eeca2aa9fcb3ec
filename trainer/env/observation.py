"""Observation of a live page: §7.2's simplified HTML, element boxes, URL, title and a JPEG.

The marking, clickable detection, numbering and serialisation run in ONE `page.evaluate` of
`trainer/env/js/observe.js`; Python only adds the screenshot and retries across navigations.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from playwright.async_api import Error as PlaywrightError

from trainer.env.types import VIEWS, Observation

JPEG_QUALITY = 50

# One tag of §7.2's grammar: `<TAG id="N" k="v">` or `</TAG>`. A value holding a double quote does
# not match; such a tag is left exactly as it is.
_TAG = re.compile(r'<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?: [a-zA-Z_:][\w:.-]*="[^"]*")*)>')
_ATTR = re.compile(r' ([a-zA-Z_:][\w:.-]*)="([^"]*)"')
_SPACES = re.compile(r" {2,}")
COMPACT_DROPPED_ATTRS = frozenset({"data-bbox", "data-testid"})
# Elements the agent needs as units even with no attribute (an option is a choice of its select).
_KEEP_BARE = frozenset({"option", "optgroup", "a", "button", "input", "select", "textarea", "img"})
_RETRYABLE = ("Execution context was destroyed", "navigation", "Cannot find context")


def compact_html(html: str) -> str:
    """§7.2's HTML for small models: the same elements, ids, text and values, about a quarter of the
    tokens. Drops `data-bbox` and `data-testid`, a `data-text` that repeats the element's own text,
    and the tags (not the contents) of wrappers left with no attribute.

    The browser keeps every box for execution; only the agent's text view changes. Input that does
    not follow the grammar passes through with only what could be parsed changed.
    """
    stack: list[tuple[str, bool]] = []

    def tag(m: re.Match) -> str:
        closing, name, attrs = m.group(1), m.group(2), m.group(3)
        if closing:
            if stack and stack[-1][0] == name:
                return m.group(0) if stack.pop()[1] else " "
            return m.group(0)
        after = m.string[m.end() :]
        own = after[1 : after.find("<")] if after.startswith(" ") and "<" in after else ""
        kept = []
        for k, v in _ATTR.findall(attrs):
            if k in COMPACT_DROPPED_ATTRS or (k == "data-text" and v == own.strip()):
                continue
            kept.append(f' {k}="{v}"')
        keep = bool(kept) or name.lower() in _KEEP_BARE
        stack.append((name, keep))
        return f"<{name}{''.join(kept)}>" if keep else " "

    return _SPACES.sub(" ", _TAG.sub(tag, html)).strip()


def html_view(name: str) -> Callable[[str], str]:
    """The agent's text view of a page by name: `webrl` (§7.2 as released) or `compact`."""
    if name == "webrl":
        return _identity
    if name == "compact":
        return compact_html
    raise ValueError(f"unknown observation view {name!r}; choose one of {', '.join(VIEWS)}")


def _identity(html: str) -> str:
    return html


@cache
def observe_script() -> str:
    return (Path(__file__).parent / "js" / "observe.js").read_text(encoding="utf-8")


async def screenshot_jpeg(page: Any, cdp: Any = None) -> bytes:
    """A JPEG of the viewport; through a CDP session when given (about 30% faster)."""
    if cdp is None:
        return await page.screenshot(type="jpeg", quality=JPEG_QUALITY)
    shot = await cdp.send("Page.captureScreenshot", {"format": "jpeg", "quality": JPEG_QUALITY})
    return base64.b64decode(shot["data"])


async def observe(
    page: Any, *, screenshot: bool = True, cdp: Any = None, retries: int = 3
) -> Observation:
    """Describe `page` as WebRL's agent sees it. Retries while a navigation swaps the document."""
    obs, _ = await observe_counting_popups(page, screenshot=screenshot, cdp=cdp, retries=retries)
    return obs


async def observe_counting_popups(
    page: Any, *, screenshot: bool = True, cdp: Any = None, retries: int = 3
) -> tuple[Observation, int]:
    """`observe`, plus how many new tabs the page tried to open since the last observation."""
    for attempt in range(retries + 1):
        try:
            data = await page.evaluate(observe_script(), {})
            break
        except PlaywrightError as exc:
            if attempt == retries or not any(s in str(exc) for s in _RETRYABLE):
                raise
            try:
                await page.wait_for_load_state("domcontentloaded", timeout=5000)
            except PlaywrightError:
                await asyncio.sleep(0.05)
    shot = await screenshot_jpeg(page, cdp) if screenshot else None
    obs = Observation(
        html=data["html"],
        url=data["url"],
        title=data["title"],
        elements=data["elements"],
        screenshot=shot,
    )
    return obs, int(data.get("popups") or 0)
