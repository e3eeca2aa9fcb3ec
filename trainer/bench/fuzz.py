"""Hostile model outputs for the action parser and executor: random text and mutations of valid
actions (`python manage.py fuzz_actions` drives them through real episodes on a live page).

Every output must end as an executed action, an `ActionFailed` step error or a `ParseError`: an
exception escaping the parser, or the episode loop's catch-all, is a bug.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from trainer.env.actions import ParseError, parse_action

VALID = (
    'do(action="Click", element="{e}")',
    'do(action="Hover", element="{e}")',
    'do(action="Type", argument="{a}", element="{e}")',
    'do(action="Search", argument="{a}", element="{e}")',
    'do(action="Select Dropdown Option", argument="{a}", element="{e}")',
    'do(action="Scroll Down")',
    'do(action="Scroll Up")',
    'do(action="Press Enter")',
    'do(action="Go Backward")',
    'do(action="Go Forward")',
    'exit(message="{a}")',
)
NASTY = (
    "", " ", "\x00", "\x00" * 50, "\ufffd", "\u202e", "\U0001f600" * 20, "'", '"', '"""', "\\",
    "\\x00", "%s%s%n", "{}", "{0}", "${7*7}", "<script>alert(1)</script>", "../../etc/passwd",
    "NaN", "Infinity", "-1", "1e309", "0x41", "__import__('os').system('true')", "lambda: 1",
    "\r\n", "\t" * 30, "ｄｏ", "do", "exit", "None", "True", "[]", "{'a': 1}",
)  # fmt: skip
ELEMENTS = ("0", "1", "2", "3", "5", "8", "13", "-1", "999999", "1.5", "", " 3 ", "a", "\x00", "७")
PREFIXES = ("", "# Element: the button\n", "Thought: click it.\n", "```python\n", "Answer: ")


def _text(rng: random.Random, max_len: int) -> str:
    n = rng.choice((0, 1, 2, 5, 20, 100, max_len))
    pool = rng.choice(
        (
            "abcdefghijklmnopqrstuvwxyz ",
            'do(action="Click", element=)(\'"\\,= \n',
            "".join(chr(c) for c in range(0, 128)),
            "\x00\ufffd\u202e\U0001f600\u0301ä中",
        )
    )
    return "".join(rng.choice(pool) for _ in range(n))


def _mutate(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        pos = rng.randint(0, len(chars))
        if op == 0 and chars:  # delete
            del chars[min(pos, len(chars) - 1)]
        elif op == 1:  # insert junk
            chars[pos:pos] = list(rng.choice(NASTY))
        elif op == 2 and chars:  # replace with a structural character
            chars[min(pos, len(chars) - 1)] = rng.choice("()\"',=\\ \n\x00")
        elif op == 3:  # duplicate a slice
            a, b = sorted((rng.randint(0, len(chars)), rng.randint(0, len(chars))))
            chars[pos:pos] = chars[a:b]
        elif op == 4:  # truncate
            chars = chars[:pos]
        else:  # swap the quotes
            chars = ["'" if c == '"' else '"' if c == "'" else c for c in chars]
    return "".join(chars)


def fuzz_outputs(seed: int = 0, max_len: int = 20_000) -> Iterator[str]:
    """An endless stream of model outputs: valid actions with hostile elements and arguments,
    their mutations, random text, and outputs far over any length limit."""
    rng = random.Random(seed)
    while True:
        kind = rng.random()
        template = rng.choice(VALID)
        argument = rng.choice((*NASTY, _text(rng, 200), "x" * rng.choice((1, 1000, 50_000))))
        valid = template.replace("{e}", rng.choice(ELEMENTS)).replace(
            "{a}", argument.replace("\\", "\\\\").replace('"', '\\"')
        )
        if kind < 0.35:
            out = rng.choice(PREFIXES) + valid
        elif kind < 0.75:
            out = _mutate(rng, rng.choice(PREFIXES) + valid)
        elif kind < 0.9:
            out = _text(rng, max_len)
        elif kind < 0.95:
            depth = rng.choice((10, 100, 1000, 100_000))
            out = "do(" * depth + ")" * rng.choice((0, depth))
        else:
            out = valid + " " + valid + rng.choice(NASTY) * rng.randint(0, 3)
        yield out


def parse_all(outputs: Iterator[str], n: int) -> dict[str, int]:
    """Parse `n` outputs: counts of actions and parse errors; an exception is not caught."""
    counts = {"tried": 0, "actions": 0, "parse_errors": 0}
    for _, text in zip(range(n), outputs, strict=False):
        result = parse_action(text)
        counts["tried"] += 1
        counts["parse_errors" if isinstance(result, ParseError) else "actions"] += 1
    return counts
