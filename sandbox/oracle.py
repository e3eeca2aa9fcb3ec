"""Oracle plans and the policy that follows them through live observations in WebRL's grammar.

A plan is a list of steps (Click, Type, Search, Select, PressEnter, GoBack, Exit, Dynamic) whose
targets `T(...)` match elements of the observation; plans are JSON-serialisable (`to_dict`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

VIEWPORT_HEIGHT = 720
MAX_SCROLLS = 12
MAX_WAITS = 6
WAIT_NOTE = "# Note: waiting for the page to update\n"
_WAITING = re.compile(f"(?:{re.escape(WAIT_NOTE)})?" + r'do\(action="Hover", element="[^"]*"\)')


def is_waiting_step(response: str) -> bool:
    """Whether an oracle response only waits for the page to update (a Hover: the oracle never
    hovers otherwise). Such steps teach a policy nothing and are dropped from SFT records."""
    return _WAITING.fullmatch(response.strip()) is not None


@dataclass(frozen=True)
class T:
    """A target element: every given field must match (text: exact, else substring, case-folded)."""

    testid: str | None = None
    text: str | None = None
    tag: str | None = None
    placeholder: str | None = None
    title: str | None = None

    def describe(self) -> str:
        for value in (self.text, self.placeholder, self.title, self.testid):
            if value:
                return value
        return self.tag or "element"


@dataclass(frozen=True)
class Click:
    target: T


@dataclass(frozen=True)
class Type:
    target: T
    text: str


@dataclass(frozen=True)
class Search:
    target: T
    text: str


@dataclass(frozen=True)
class Select:
    target: T
    option_text: str


@dataclass(frozen=True)
class PressEnter:
    pass


@dataclass(frozen=True)
class GoBack:
    pass


@dataclass(frozen=True)
class Exit:
    """Stop with `message`; with `wait_for`, first wait until that element is on the page
    (e.g. the flash that confirms a form was saved)."""

    message: str
    wait_for: T | None = None


@dataclass(frozen=True)
class Seek:
    """Click `target`, following the `more` link (e.g. "Next" page) until it shows up."""

    target: T
    more: T


@dataclass(frozen=True)
class Dynamic:
    """A step chosen on the live page: DYNAMICS[fn](observation, **args) -> step.

    `fn` names a function registered with `@dynamic("name")`, so the plan stays JSON.
    """

    fn: str
    args: dict = field(default_factory=dict)


Step = Click | Type | Search | Select | PressEnter | GoBack | Exit | Dynamic | Seek
# The usual end of a state-changing plan: stop once the confirmation flash is shown.
SAVED = Exit("", wait_for=T(testid="flash"))

STEP_CLASSES = {
    cls.__name__: cls
    for cls in (Click, Type, Search, Select, PressEnter, GoBack, Exit, Dynamic, Seek)
}
DYNAMICS: dict[str, Callable[..., Any]] = {}


def dynamic(name: str) -> Callable:
    """Register a Dynamic step function under `name`."""

    def register(fn: Callable) -> Callable:
        DYNAMICS[name] = fn
        return fn

    return register


def to_dict(step: Step) -> dict:
    """A JSON-ready dict of a step: {"op": "Click", "target": {...}, ...}."""
    data = {"op": type(step).__name__}
    for key, value in asdict(step).items():
        if key in ("target", "more", "wait_for"):
            if value is None:
                continue
            value = {k: v for k, v in value.items() if v is not None}
        data[key] = value
    return data


def from_dict(data: dict) -> Step:
    """The inverse of `to_dict`; unknown ops and fields are errors."""
    if not isinstance(data, dict) or data.get("op") not in STEP_CLASSES:
        raise ValueError(f"not an oracle step: {data!r}")
    cls = STEP_CLASSES[data["op"]]
    kwargs = {k: v for k, v in data.items() if k != "op"}
    for key in ("target", "more", "wait_for"):
        if key in kwargs:
            kwargs[key] = T(**kwargs[key])
    return cls(**kwargs)


def plan_to_json(plan: list) -> list[dict]:
    return [to_dict(step) if not isinstance(step, dict) else step for step in plan]


def plan_from_json(plan: list) -> list[Step]:
    return [from_dict(step) if isinstance(step, dict) else step for step in plan]


def _fold(text: object) -> str:
    return " ".join(str(text or "").split()).casefold()


def _matches(element: dict, target: T) -> int:
    """0 = no match, 2 = exact match, 1 = text substring match."""
    attrs = element.get("attrs") or {}
    if target.testid is not None and attrs.get("data-testid") != target.testid:
        return 0
    if target.tag is not None and (element.get("tag") or "").lower() != target.tag.lower():
        return 0
    if target.placeholder is not None and attrs.get("placeholder") != target.placeholder:
        return 0
    if target.title is not None and attrs.get("title") != target.title:
        return 0
    if target.text is None:
        return 2
    wanted = _fold(target.text)
    texts = [element.get("text"), attrs.get("data-text"), attrs.get("value"), attrs.get("title")]
    texts = [_fold(t) for t in texts if t]
    if wanted in texts:
        return 2
    if any(wanted in t for t in texts):
        return 1
    return 0


def find(observation: Any, target: T) -> tuple[str, dict] | None:
    """The best element of the observation matching `target` (exact text beats substring)."""
    best = None
    for element_id, element in observation.elements.items():
        score = _matches(element, target)
        if score and (best is None or score > best[0]):
            best = (score, str(element_id), element)
            if score == 2:
                break
    return (best[1], best[2]) if best else None


def on_page(observation: Any, target: T) -> bool:
    """Whether `target` is visible: a labelled element, or (by test id) any kept element such as
    a flash message, which is text, not a control, and so has no id."""
    if find(observation, target) is not None:
        return True
    testid = getattr(target, "testid", None)
    return bool(testid) and f'data-testid="{testid}"' in (observation.html or "")


_BOX = re.compile(r' data-(?:bbox|status|value)="[^"]*"')


def _page_key(html: str) -> str:
    """The page's content without boxes and live input state, to tell whether it changed."""
    return _BOX.sub("", html)


def quote(text: str) -> str:
    """A double-quoted Python string literal (the grammar's argument form)."""
    return json.dumps(str(text), ensure_ascii=False)


def _describe(element: dict, target: T) -> str:
    attrs = element.get("attrs") or {}
    if (element.get("tag") or "").lower() == "select":
        return f"{target.describe()} dropdown"
    for value in (element.get("text"), attrs.get("placeholder"), attrs.get("title")):
        if value and str(value).strip():
            return " ".join(str(value).split())[:80]
    return target.describe()


def _element_action(step: Step, element_id: str, element: dict) -> str:
    desc = f"# Element: {_describe(element, step.target)}\n"
    eid = quote(element_id)
    if isinstance(step, Click):
        return f'{desc}do(action="Click", element={eid})'
    if isinstance(step, Type):
        return f'{desc}do(action="Type", argument={quote(step.text)}, element={eid})'
    if isinstance(step, Search):
        return f'{desc}do(action="Search", argument={quote(step.text)}, element={eid})'
    return f'{desc}do(action="Select Dropdown Option", argument={quote(step.option_text)}, element={eid})'


class OraclePlayer:
    """Follows a plan one observation at a time; `next_response(obs)` gives the raw response."""

    def __init__(self, plan: list):
        self.plan = plan_from_json(plan)
        self.index = 0
        self.scrolls = 0
        self.waits = 0
        self.pending_html: str | None = None  # page before a navigating action

    def next_response(self, observation: Any) -> str:
        if self.pending_html is not None:
            if _page_key(observation.html) == self.pending_html and self.waits < MAX_WAITS:
                return self._wait(observation)
            self.pending_html = None
        if self.index >= len(self.plan):
            return 'exit(message="oracle: plan ended without an answer")'
        step = self.plan[self.index]
        if isinstance(step, Dynamic):
            fn = DYNAMICS.get(step.fn)
            if fn is None:
                return f"exit(message={quote('oracle: unknown dynamic step ' + step.fn)})"
            step = fn(observation, **step.args)
            if step is None:  # not decidable on this part of the page yet
                return self._scroll(observation, None)
        if isinstance(step, Exit):
            if step.wait_for is not None and not on_page(observation, step.wait_for):
                if self.waits < MAX_WAITS:
                    return self._wait(observation)
            self.index += 1
            return f"exit(message={quote(step.message)})"
        if isinstance(step, Seek):
            return self._seek(observation, step)
        if isinstance(step, PressEnter):
            self.index += 1
            return 'do(action="Press Enter")'
        if isinstance(step, GoBack):
            self.index += 1
            return 'do(action="Go Backward")'
        found = find(observation, step.target)
        if found is None:
            return self._scroll(observation, step.target)
        element_id, element = found
        bbox = element.get("bbox") or [0, 0, 0, 0]
        top, height = bbox[1], bbox[3]
        if top + height / 2 > VIEWPORT_HEIGHT:
            return self._scroll(observation, step.target, down=True)
        if top + height / 2 < 0:
            return self._scroll(observation, step.target, down=False)
        self.index += 1
        self.scrolls = 0
        if isinstance(step, Click | Search):
            self.pending_html, self.waits = _page_key(observation.html), 0
        return _element_action(step, element_id, element)

    def _seek(self, observation: Any, step: Seek) -> str:
        found = find(observation, step.target)
        if found is not None and self._visible(found[1]):
            self.index += 1
            self.scrolls = 0
            self.pending_html, self.waits = _page_key(observation.html), 0
            return _element_action(Click(step.target), found[0], found[1])
        more = find(observation, step.more)
        if found is None and more is not None and self._visible(more[1]):
            self.scrolls = 0
            self.pending_html, self.waits = _page_key(observation.html), 0
            return _element_action(Click(step.more), more[0], more[1])
        return self._scroll(observation, step.target)

    @staticmethod
    def _visible(element: dict) -> bool:
        bbox = element.get("bbox") or [0, 0, 0, 0]
        return 0 <= bbox[1] + bbox[3] / 2 <= VIEWPORT_HEIGHT

    def _wait(self, observation: Any) -> str:
        """The page has not changed yet after a click: hover (a no-op) and look again.

        The comment alternates so that waiting is not mistaken for a repeated action. The oracle
        hovers only to wait (`is_waiting_step`)."""
        self.waits += 1
        first = next(iter(observation.elements), None)
        if first is None:
            return 'do(action="Scroll Up")'
        note = WAIT_NOTE if self.waits % 2 else ""
        return f'{note}do(action="Hover", element={quote(first)})'

    def _scroll(self, observation: Any, target: T | None, down: bool = True) -> str:
        self.scrolls += 1
        if self.scrolls > MAX_SCROLLS:
            what = target.describe() if target else "a choice"
            return f"exit(message={quote('oracle: could not find ' + what)})"
        return 'do(action="Scroll Down")' if down else 'do(action="Scroll Up")'


def oracle_policy(task: dict) -> Callable:
    """A Policy (StepContext -> PolicyOutput) that follows `task["oracle"]`."""
    from trainer.env.types import PolicyOutput

    player = OraclePlayer(task.get("oracle") or [])

    async def policy(context: Any) -> PolicyOutput:
        return PolicyOutput(text=player.next_response(context.observation))

    return policy
