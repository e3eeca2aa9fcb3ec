"""WebRL's action grammar (webrl-spec.md §7.4): a safe parser to typed actions and their executor.

Model text is read with `ast` and `ast.literal_eval` on keyword values only; nothing is evaluated.
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

MAX_CALL_CHARS = 8192
"""The call itself (after the comment lines) may be at most this long; longer is a parse error."""

SCROLL_PX = 480  # 2/3 of the 720 px viewport height (§7.4)


class Kind(StrEnum):
    CLICK = "click"
    HOVER = "hover"
    TYPE = "type"
    SEARCH = "search"
    SELECT = "select dropdown option"
    SCROLL_DOWN = "scroll down"
    SCROLL_UP = "scroll up"
    PRESS_ENTER = "press enter"
    GO_BACKWARD = "go backward"
    GO_FORWARD = "go forward"
    EXIT = "exit"


NEEDS_ELEMENT = {Kind.CLICK, Kind.HOVER, Kind.TYPE, Kind.SEARCH, Kind.SELECT}
NEEDS_ARGUMENT = {Kind.TYPE, Kind.SEARCH, Kind.SELECT}


@dataclass(frozen=True)
class Action:
    kind: Kind
    element: str | None = None
    argument: str | None = None
    """Text to type, option to pick, or the exit message."""

    def to_dict(self) -> dict:
        return {"kind": self.kind.value, "element": self.element, "argument": self.argument}


@dataclass(frozen=True)
class ParseError:
    reason: str

    def __str__(self) -> str:
        return f"parse error: {self.reason}"


_KEYS = ("exit(", "do(", "go_backward(")


def _literal(node: ast.expr, name: str) -> str:
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ValueError(f"argument {name!r} is not a literal ({type(exc).__name__})") from None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"argument {name!r} must be a string, got {type(value).__name__}")
    return str(value)


def _call_text(text: str) -> str:
    """Drop what precedes the call: up to the last occurrence of the first key found (§7.4)."""
    lowered = text.lower()
    for key in _KEYS:
        at = lowered.rfind(key)
        if at >= 0:
            return text[at:]
    lines = text.splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("#")):
        lines.pop(0)
    return "\n".join(lines)


def parse_action(text: str) -> Action | ParseError:
    """Parse one model response to an `Action`, or say why it cannot be executed."""
    if not isinstance(text, str):
        return ParseError(f"response must be a string, got {type(text).__name__}")
    call = _call_text(text).strip()
    if not call:
        return ParseError("empty response: expected do(...) or exit(...)")
    if len(call) > MAX_CALL_CHARS:
        return ParseError(f"the call is {len(call)} characters long (limit {MAX_CALL_CHARS})")
    try:
        with warnings.catch_warnings():  # model text is not code: no SyntaxWarning on stderr
            warnings.simplefilter("ignore", SyntaxWarning)
            warnings.simplefilter("ignore", DeprecationWarning)  # invalid escapes, Python 3.11
            tree = ast.parse(call, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        msg = getattr(exc, "msg", None) or type(exc).__name__
        return ParseError(f"not a Python-style call ({msg}): {call[:80]!r}")
    node = tree.body
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        return ParseError(f"expected do(...) or exit(...), got {call[:80]!r}")
    name = node.func.id.lower()
    if name in ("go_backward", "go_forward"):
        return ParseError(f'{name}() is not executable; use do(action="Go Backward"/"Go Forward")')
    if name not in ("do", "exit"):
        return ParseError(f"unknown function {node.func.id!r}: expected do(...) or exit(...)")
    if node.args:
        return ParseError(f"{name}() takes keyword arguments only")
    kwargs: dict[str, str] = {}
    try:
        for kw in node.keywords:
            if kw.arg is None:
                return ParseError(f"{name}() does not accept **kwargs")
            kwargs[kw.arg.lower()] = _literal(kw.value, kw.arg)
    except ValueError as exc:
        return ParseError(str(exc))
    if name == "exit":
        if "message" not in kwargs:
            return ParseError('exit() needs message="..."')
        return Action(Kind.EXIT, argument=kwargs["message"])
    if "action" not in kwargs:
        return ParseError('do() needs action="..."')
    try:
        kind = Kind(" ".join(kwargs["action"].lower().split()))
    except ValueError:
        return ParseError(f"unknown action {kwargs['action']!r}")
    if kind == Kind.EXIT:
        return ParseError(f"unknown action {kwargs['action']!r}")
    element = kwargs.get("element")
    argument = kwargs.get("argument")
    if kind in NEEDS_ELEMENT and not element:
        return ParseError(f'{kwargs["action"]} needs element="N"')
    if kind in NEEDS_ARGUMENT and argument is None:
        return ParseError(f'{kwargs["action"]} needs argument="..."')
    if kind not in NEEDS_ELEMENT:
        element = None
    if kind not in NEEDS_ARGUMENT:
        argument = None
    return Action(kind, element=element.strip() if element else None, argument=argument)


class ActionFailed(Exception):
    """The action could not run on this page (the episode goes on; the step records why)."""


_SELECT_AT_JS = """([x, y]) => {
  let el = document.elementFromPoint(x, y);
  while (el && el.tagName !== "SELECT") el = el.parentElement;
  return el;
}"""
_OPTION_JS = """(select, wanted) => {
  for (const opt of select.options) {
    if (opt.text.toLowerCase().includes(wanted.toLowerCase())) return opt.value;
  }
  return null;
}"""


VIEWPORT_W, VIEWPORT_H = 1280, 720


def centre(bbox: list[float]) -> tuple[float, float]:
    """Centre of the part of `bbox` ([l, t, w, h]) inside the viewport (WebRL clicks the centre)."""
    left, top, width, height = bbox
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + width, VIEWPORT_W), min(top + height, VIEWPORT_H)
    if x1 <= x0 or y1 <= y0:  # wholly outside: the plain centre, as WebRL would
        return left + width / 2, top + height / 2
    return (x0 + x1) / 2, (y0 + y1) / 2


def _target(action: Action, elements: dict[str, dict]) -> tuple[float, float]:
    """The element's centre from the observation it was chosen on (§7.2 step 5)."""
    if action.element not in elements:
        raise ActionFailed(f"element {action.element!r} is not in the current observation")
    return centre(elements[action.element]["bbox"])


async def _select_option(page: Any, x: float, y: float, wanted: str, timeout_ms: float) -> None:
    """§7.4: the <select> at the element's centre; the first option whose text contains `wanted`."""
    handle = await page.evaluate_handle(_SELECT_AT_JS, [x, y])
    try:
        select = handle.as_element()
        if select is None:
            raise ActionFailed("no <select> at the element's centre")
        value = await select.evaluate(_OPTION_JS, wanted)
        if value is None:
            raise ActionFailed(f"no option containing {wanted!r}")
        await select.select_option(value=value, timeout=timeout_ms)
    finally:
        await handle.dispose()


async def execute_action(
    page: Any, action: Action, elements: dict[str, dict], *, timeout_ms: float = 10000
) -> None:
    """Run `action` on the live Playwright page (§7.4's executor). Raises ActionFailed."""
    kind = action.kind
    if kind == Kind.EXIT:
        return
    if kind in (Kind.CLICK, Kind.HOVER, Kind.TYPE, Kind.SEARCH, Kind.SELECT):
        x, y = _target(action, elements)
        if kind == Kind.HOVER:
            await page.mouse.move(x, y)
            return
        await page.mouse.click(x, y)
        if kind == Kind.SELECT:
            await _select_option(page, x, y, action.argument or "", timeout_ms)
            return
        if kind in (Kind.TYPE, Kind.SEARCH):
            await page.keyboard.press("Control+A")
            await page.keyboard.press("Backspace")
            await page.keyboard.type(action.argument or "")
            if kind == Kind.SEARCH:
                # WebRL sleeps 2 s before Enter for remote autocomplete; our sites are local.
                await page.keyboard.press("Enter")
        return
    if kind in (Kind.SCROLL_DOWN, Kind.SCROLL_UP):
        await page.mouse.wheel(0, SCROLL_PX if kind == Kind.SCROLL_DOWN else -SCROLL_PX)
        return
    if kind == Kind.PRESS_ENTER:
        await page.keyboard.press("Enter")
        return
    if kind == Kind.GO_BACKWARD:
        await page.go_back(timeout=timeout_ms, wait_until="commit")
        return
    if kind == Kind.GO_FORWARD:
        await page.go_forward(timeout=timeout_ms, wait_until="commit")
        return
    raise ActionFailed(f"no executor for {kind}")  # unreachable while Kind and this match
