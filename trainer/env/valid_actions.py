"""The responses valid on an observed page: what `rollout.decoding="valid_actions"` lets a policy write.

Built from the instruction and the page's §7.2 HTML (either view) alone: element ids, option texts,
and word spans of the instruction and the page. Pure text in, strings out (no browser, no torch).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

MAX_SPAN_WORDS = 14
"""Longest argument, in words, cut from the instruction (the pilot of issue 19 held the gold
argument in 149 of 150 steps with 14)."""
MAX_PAGE_SPAN_WORDS = 8
"""Longest exit message, in words, cut from one text of the page (an address such as "53 Station
Road, Calder Bridge LV3 8AL" has 7)."""
MAX_LISTED = 4
"""Most consecutive short texts of the page joined into one exit message ("security, testing")."""
LISTED_WORDS = 3
"""Longest text, in words, that such a list takes."""
SMALL_NUMBERS = tuple(str(n) for n in range(11))
"""Exit messages always allowed besides the spans: counts the page may not spell out."""
DESCRIPTION_CHARS = 80
"""The `# Element:` line holds at most this much of the element's text (as the oracle writes it)."""
OUTER_PUNCTUATION = "\"'`“”‘’.,;:!?()[]{}<>"
QUOTES = "\"'`“”‘’"
SPLIT_AT = re.compile(r"[/#$]")
TYPABLE_INPUTS = frozenset({"", "text", "search", "email", "number", "password", "tel", "url",
                            "date", "datetime-local", "month", "time", "week"})  # fmt: skip
BARE_ACTIONS = ("Scroll Down", "Scroll Up", "Press Enter", "Go Backward", "Go Forward")

_CALL_KEYS = ("exit(", "do(", "go_backward(")
"""A text holding one of these would move where `parse_action` reads the call (§7.4): left out."""

_TAG = re.compile(r'<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?: [a-zA-Z_:][\w:.-]*="[^"]*")*)>')
_ATTR = re.compile(r' ([a-zA-Z_:][\w:.-]*)="([^"]*)"')


@dataclass
class Element:
    """One labelled element of the page: its id, tag, attributes and text (own and descendants')."""

    id: str
    tag: str
    attrs: dict[str, str]
    texts: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    """Texts of a <select>'s options, in page order."""

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.texts).split())


def page_elements(html: str) -> tuple[list[Element], list[str]]:
    """(labelled elements in page order, every text of the page) parsed from §7.2's HTML."""
    elements: list[Element] = []
    texts: list[str] = []
    stack: list[tuple[str, Element | None]] = []
    select: Element | None = None
    pos = 0
    for m in _TAG.finditer(html):
        text = html[pos : m.start()].strip()
        pos = m.end()
        if text:
            texts.append(text)
            for _, el in stack:
                if el is not None:
                    el.texts.append(text)
            if select is not None and stack and stack[-1][0] == "option":
                select.options.append(" ".join(text.split()))
        closing, tag = m.group(1), m.group(2).lower()
        if closing:
            for i in range(len(stack) - 1, -1, -1):
                if stack[i][0] == tag:
                    del stack[i:]
                    break
            if tag == "select":
                select = None
            continue
        attrs = dict(_ATTR.findall(m.group(3)))
        el = None
        if "id" in attrs:
            el = Element(attrs.pop("id"), tag, attrs)
            elements.append(el)
            if tag == "select":
                select = el
        stack.append((tag, el))
    return elements, texts


def describe(el: Element) -> str | None:
    """The oracle's `# Element:` text for `el`: its text, else placeholder, else title (80 chars);
    a <select> or a textless element is named by its test id where the view keeps one."""
    testid = el.attrs.get("data-testid")
    if el.tag == "select":
        return f"{testid} dropdown" if testid else None
    for value in (el.text, el.attrs.get("placeholder"), el.attrs.get("title")):
        if value and value.strip():
            return " ".join(value.split())[:DESCRIPTION_CHARS]
    return testid


def unquote(span: str) -> str:
    """A quoted span without its quotes, keeping the punctuation inside them: the title of
    `Downvote the post "Is it worth it?".` is `Is it worth it?` (`strip` would drop the `?`)."""
    core = span.rstrip(".,;:!?)")
    if len(core) > 2 and core[0] in QUOTES and core[-1] in QUOTES:
        return core[1:-1].strip()
    return span


def spans(text: str, max_words: int = MAX_SPAN_WORDS) -> set[str]:
    """Word-boundary spans of `text` of up to `max_words` words; each also with its outer quotes and
    punctuation stripped; and the parts of each word split at `/`, `#` and `$`."""
    words = text.split()
    out: set[str] = set()
    for i in range(len(words)):
        for j in range(i + 1, min(i + max_words, len(words)) + 1):
            span = " ".join(words[i:j])
            out.add(span)
            out.add(span.strip(OUTER_PUNCTUATION))
            out.add(unquote(span))
        for part in SPLIT_AT.split(words[i]):
            out.add(part.strip(OUTER_PUNCTUATION))
    out.discard("")
    return {s for s in out if _callable_safe(s)}


ARGUMENTS = ("spans", "phrases")
"""Type/Search arguments cut from the instruction (`rollout.arguments`): every word span, or
`phrase_spans`, which cut no name in two."""
_CLOSES = ',.;:!?)"”'


def _capitalised(word: str) -> bool:
    return word.strip(OUTER_PUNCTUATION)[:1].isupper()


def _units(words: list[str]) -> tuple[list[int], list[int | None]]:
    """(unit, quote) per word. A unit is a whole quoted phrase or, outside quotes, a run of
    capitalised words that is not a sentence's first word (The Rolling Pin, Maple Row Travel Dutch
    Oven) or one word; quote is the index of the word that opens the word's quoted phrase."""
    quote: list[int | None] = [None] * len(words)
    opened = None
    for i, word in enumerate(words):
        if opened is None and word[:1] in '"“':
            opened = i
        if opened is not None:
            quote[i] = opened
            core = word.rstrip(".,;:!?)")
            if core[-1:] in '"”' and (i > opened or len(core) > 1):
                opened = None
    if opened is not None:  # never closed: not a quote
        quote = [q if q is None or q < opened else None for q in quote]
    unit = list(range(len(words)))
    for i in range(1, len(words)):
        a, b = words[i - 1], words[i]
        sentence_start = i - 1 == 0 or words[i - 2][-1:] in ".?!:"
        if quote[i] is not None and quote[i] == quote[i - 1]:
            unit[i] = unit[i - 1]
        elif (quote[i] is None and quote[i - 1] is None and _capitalised(a) and _capitalised(b)
              and not sentence_start and a[-1:] not in _CLOSES):  # fmt: skip
            unit[i] = unit[i - 1]
    return unit, quote


def phrase_spans(text: str, max_words: int = MAX_SPAN_WORDS) -> set[str]:
    """Like `spans`, but no span starts or ends inside a unit of `_units` (a quoted phrase, a run of
    capitalised words): "Help with a dobsonian please" is there, "Help with a" is not. Inside a
    quoted phrase, its runs of two or more capitalised words count too; parts split at `/`, `#`
    and `$` only where a word splits. (A quoted phrase longer than `max_words` words is whole.)"""
    words = text.split()
    unit, quote = _units(words)
    out: set[str] = set()

    def add(i: int, j: int) -> None:
        span = " ".join(words[i:j])
        out.add(span)
        out.add(span.strip(OUTER_PUNCTUATION))
        out.add(unquote(span))

    starts = [i for i in range(len(words)) if i == 0 or unit[i] != unit[i - 1]]
    ends = {j for j in range(1, len(words) + 1) if j == len(words) or unit[j] != unit[j - 1]}
    for i in starts:
        longest = max(i + max_words, i + sum(u == unit[i] for u in unit))
        for j in range(i + 1, min(longest, len(words)) + 1):
            if j in ends:
                add(i, j)
    i = 0
    while i < len(words):  # runs of capitalised words inside a quoted phrase
        j = i
        while (
            j < len(words)
            and quote[j] is not None
            and _capitalised(words[j])
            and (j == i or (quote[j] == quote[i] and words[j - 1][-1:] not in _CLOSES))
        ):
            j += 1
        if j - i >= 2:
            add(i, j)
        i = max(j, i + 1)
    for word in words:
        parts = SPLIT_AT.split(word)
        if len(parts) > 1:
            out.update(part.strip(OUTER_PUNCTUATION) for part in parts)
    out.discard("")
    return {s for s in out if _callable_safe(s)}


def listed(texts: list[str]) -> set[str]:
    """Runs of 2 to MAX_LISTED consecutive short texts of the page, joined by ", ": the answer to
    "which labels" or "who is assigned" lists what the page shows one element at a time."""
    kept = [t for t in texts if any(c.isalnum() for c in t)]  # "×" buttons between labels
    short = [" ".join(t.split()) if len(t.split()) <= LISTED_WORDS else None for t in kept]
    out: set[str] = set()
    for i in range(len(short)):
        for j in range(i + 2, min(i + MAX_LISTED, len(short)) + 1):
            if None in short[i:j]:
                break
            out.add(", ".join(short[i:j]))  # type: ignore[arg-type]
    return {s for s in out if _callable_safe(s)}


def _callable_safe(text: str) -> bool:
    lowered = text.lower()
    return not any(key in lowered for key in _CALL_KEYS)


def quote(text: str) -> str:
    """A double-quoted string literal, as the oracle writes arguments."""
    return json.dumps(text, ensure_ascii=False)


def _typable(el: Element) -> bool:
    if el.tag == "textarea":
        return True
    return el.tag == "input" and el.attrs.get("type", "").lower() in TYPABLE_INPUTS


MIN_OPTION_PART = 3
"""Shortest instruction phrase offered as a part of an option's text."""


def select_arguments(options: list[str], phrases: set[str]) -> list[str]:
    """A select's option texts, then the instruction's phrases found inside one of them (the
    executor picks the first option that contains the text: "Flat Rate" picks "Flat Rate ($5)")."""
    lowered = [o.lower() for o in options]
    parts = sorted(
        p for p in phrases
        if len(p) >= MIN_OPTION_PART and p not in options and any(p.lower() in o for o in lowered)
    )  # fmt: skip
    return list(dict.fromkeys(options)) + parts


def element_actions(el: Element, arguments: set[str]) -> list[str]:
    """Every call on `el`, each bare and after the `# Element:` line the oracle writes."""
    eid = quote(el.id)
    calls = [f'do(action="Click", element={eid})', f'do(action="Hover", element={eid})']
    if _typable(el):
        for arg in sorted(arguments):
            calls.append(f'do(action="Type", argument={quote(arg)}, element={eid})')
            calls.append(f'do(action="Search", argument={quote(arg)}, element={eid})')
    if el.tag == "select":
        for option in filter(_callable_safe, select_arguments(el.options, arguments)):
            calls.append(
                f'do(action="Select Dropdown Option", argument={quote(option)}, element={eid})'
            )
    desc = describe(el)
    if desc is None or not _callable_safe(desc):
        return calls
    return calls + [f"# Element: {desc}\n{call}" for call in calls]


def valid_actions(
    intent: str,
    html: str,
    *,
    page_arguments: bool = False,
    arguments: str = "spans",
    empty_exit: bool = True,
) -> list[str]:
    """The responses valid on the page `html` for the task `intent`, sorted and unique.

    Click and Hover on every labelled element; Type and Search on text inputs with spans of the
    instruction (`phrase_spans` with `arguments="phrases"`; and of the page's texts with
    `page_arguments`); Select with the element's options;
    Scroll, Press Enter, Go Backward and Go Forward; exit(message=...) with spans of the instruction
    or of the page, a small number or "" (unless `empty_exit` is off). Every one parses with
    `trainer.actions.parse_action`.
    """
    elements, texts = page_elements(html)
    page = set().union(*(spans(t, MAX_PAGE_SPAN_WORDS) for t in texts)) if texts else set()
    answers = page | listed(texts)
    if arguments not in ARGUMENTS:
        raise ValueError(f"arguments must be one of {', '.join(ARGUMENTS)}, got {arguments!r}")
    instruction = spans(intent)
    cut = phrase_spans(intent) if arguments == "phrases" else instruction
    typed = cut | (page if page_arguments else set())
    out: set[str] = {f'do(action="{name}")' for name in BARE_ACTIONS}
    for el in elements:
        out.update(element_actions(el, typed))
    for message in {"", *SMALL_NUMBERS, *instruction, *answers} - (set() if empty_exit else {""}):
        out.add(f"exit(message={quote(message)})")
    return sorted(out)
