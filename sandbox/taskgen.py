"""Task templates (WebArena-style intent templates) and the specs they build.

A template instantiates over the seed world; each instantiation builds a start URL, a WebArena
"eval" block (§8.2) and an oracle plan. Helpers below build the eval blocks the world allows.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

PLACEHOLDERS = {
    "shopping": "__SHOPPING__",
    "shopping_admin": "__SHOPPING_ADMIN__",
    "reddit": "__REDDIT__",
    "gitlab": "__GITLAB__",
    "map": "__MAP__",
}
KINDS = ("info", "nav", "state")


@dataclass(frozen=True)
class TaskSpec:
    start_url: str  # with __SHOPPING__ / ... placeholders
    eval: dict  # WebArena "eval" block, URLs with placeholders
    plan: list  # oracle steps (sandbox.oracle)


@dataclass(frozen=True)
class Template:
    id: int  # intent_template_id, unique in the world
    sites: tuple[str, ...]
    intent_template: str  # "What is the price of {{product}}?"
    kind: str  # "info" (string_match) | "nav" (url_match) | "state" (program_html)
    instantiate: Callable[[dict, random.Random], list[dict]]
    build: Callable[[dict, dict], TaskSpec]

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"template {self.id}: kind must be one of {KINDS}, not {self.kind!r}")
        for site in self.sites:
            if site not in PLACEHOLDERS:
                raise ValueError(f"template {self.id}: unknown site {site!r}")


def fill(intent_template: str, instantiation: dict) -> str:
    """The intent: every {{var}} replaced by its (public) instantiation value."""
    text = intent_template
    for key, value in instantiation.items():
        if not key.startswith("_"):
            text = text.replace("{{" + key + "}}", str(value))
    if "{{" in text:
        raise ValueError(f"unfilled variable in {text!r}")
    return text


def url(site: str, path: str = "") -> str:
    """A placeholder URL: url("shopping", "/cart") -> "__SHOPPING__/cart"."""
    return PLACEHOLDERS[site] + path


def exact_match(answer: str) -> dict:
    return {
        "eval_types": ["string_match"],
        "reference_answers": {"exact_match": answer},
        "reference_url": None,
        "program_html": [],
    }


def must_include(items: list[str]) -> dict:
    return {
        "eval_types": ["string_match"],
        "reference_answers": {"must_include": list(items)},
        "reference_url": None,
        "program_html": [],
    }


def required_values(conditions: list[str]) -> dict:
    """Numeric checks such as ["== 42"] or [">= 3", "< 10"]."""
    return {
        "eval_types": ["string_match"],
        "reference_answers": {"required_values": list(conditions)},
        "reference_url": None,
        "program_html": [],
    }


def url_match(reference_url: str, note: str = "EXACT") -> dict:
    if note not in ("EXACT", "GOLD in PRED"):
        raise ValueError("url_note must be EXACT or GOLD in PRED")
    return {
        "eval_types": ["url_match"],
        "reference_answers": None,
        "reference_url": reference_url,
        "url_note": note,
        "program_html": [],
    }


def program_html(checks: list[dict], with_url: str | None = None, note: str = "EXACT") -> dict:
    """State checks; each check is {url, locator, required_contents} (see `check`)."""
    block = {
        "eval_types": ["program_html"],
        "reference_answers": None,
        "reference_url": None,
        "program_html": list(checks),
    }
    if with_url is not None:
        block["eval_types"] = ["url_match", "program_html"]
        block["reference_url"] = with_url
        block["url_note"] = note
    return block


def check(page_url: str, locator: str, **required: object) -> dict:
    """One program_html target: `required` is exact_match=..., must_include=[...], etc."""
    if not required:
        raise ValueError("a check needs required_contents")
    return {"url": page_url, "locator": locator, "required_contents": dict(required)}


def testid_text(testid: str) -> str:
    """A JS locator: the visible text of the element with that data-testid ('' if absent)."""
    return f"document.querySelector('[data-testid=\"{testid}\"]')?.outerText ?? ''"


def testid_value(testid: str) -> str:
    """A JS locator: the value of the input/select with that data-testid ('' if absent)."""
    return f"document.querySelector('[data-testid=\"{testid}\"]')?.value ?? ''"


def sample(items: list, rng: random.Random, k: int) -> list:
    """Up to k items in a seeded random order (all of them when fewer)."""
    items = list(items)
    rng.shuffle(items)
    return items[:k]
