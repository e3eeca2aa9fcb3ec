"""WebRL's prompt strings: the agent's completion prompt (spec §7.3) and the ORM's chat prompt (§4.1).

Every other module builds prompts through these functions; there is no second copy of the grammar.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

EOT = "<|eot_id|>"
BEGIN_OF_TEXT = "<|begin_of_text|>"
USER_HEADER = "<|start_header_id|>user<|end_header_id|>\n"
ASSISTANT_HEADER = "<|start_header_id|>assistant<|end_header_id|>\n"
HTML_PLACEHOLDER = "** Simplified html **"

# §7.3: the whole prompt may hold 16,384 - 512 characters of history plus current HTML.
MAX_PROMPT_CHARS = 16384 - 512  # 15,872

# Where a prompt longer than the model's token budget was cut (trainer/data.py `fit_prompt`).
PAGE_CUT = "\n[... page cut ...]\n"
HISTORY_CUT = "[... earlier actions cut ...]\n"
ORM_SCREENSHOT = "\nThe Current Screenshot:\n"
ORM_CHECKS = "\n\nChecks:\n"
ORM_INTENT_LAST = "\n\nThe User Intent:\n"
ORM_TAIL = f"{EOT}<|start_header_id|>assistant<|end_header_id|>\n\n"
AGENT_TAIL = f"\n\n{EOT}{ASSISTANT_HEADER}"

# §4.1. Our own wording of the ORM's system instruction (the released text is paraphrased in the
# spec, not reproduced); users of the released ORM can pass theirs as `system`.
PROMPTS = ("webrl", "instruction_last")
"""Prompt variants (`rollout.prompt`): `webrl` is §7.3 and §4.1 byte for byte; `instruction_last`
also repeats the task instruction at the end of the last user turn, right before the reply, where a
small model that cannot look back as far as the first line can still copy from it."""

ORM_SYSTEM = (
    "You are an expert judge of a web navigation agent. You are given the user's intent, the "
    "agent's action history and the final state of the web page. Decide whether the agent "
    "completed the user's intent. Answer with only YES or NO."
)


def _round_block(index: int, user_text: str) -> str:
    return f"Round {index}\n\n{EOT}{USER_HEADER}{user_text}\n\n{EOT}{ASSISTANT_HEADER}"


def build_history(intent: str, responses: Sequence[str]) -> str:
    """HIST_t of §7.3: one Round block per earlier step, with the raw responses A_0..A_{t-1}."""
    parts = []
    for i, response in enumerate(responses):
        user_text = intent if i == 0 else HTML_PLACEHOLDER
        parts.append(_round_block(i, user_text) + response + "\n\n")
    return "".join(parts)


def _check_variant(variant: str) -> None:
    if variant not in PROMPTS:
        raise ValueError(f"unknown prompt variant {variant!r}; choose one of {', '.join(PROMPTS)}")


def build_agent_prompt(
    intent: str, responses: Sequence[str], html: str, *, variant: str = "webrl"
) -> str:
    """P_t of §7.3 for step t = len(responses), given the current simplified HTML H_t.

    The guard cuts H_t so that len(HIST_t) + len(H_t) <= 15,872 characters. `instruction_last`
    appends "\n\nTask Instruction: I" to H_t (the guard cuts H_t, never that line).
    """
    _check_variant(variant)
    last = f"\n\nTask Instruction: {intent}" if variant == "instruction_last" else ""
    history = build_history(intent, responses)
    budget = MAX_PROMPT_CHARS - len(history) - len(last)
    if len(html) > budget:
        html = html[: max(budget, 0)]
    step = len(responses)
    return f"Task Instruction: {intent}\n\n" + history + _round_block(step, html + last)


def build_critic_prompt(intent: str, html: str, *, variant: str = "webrl") -> str:
    """The phase-start state prompt of §6.3 (Round 0 with the start page), used by the critic filter."""
    return build_agent_prompt(intent, [], html, variant=variant)


def format_orm_history(responses: Sequence[str]) -> str:
    """§4.1: each raw response on one line, newlines replaced by '; ', stripped."""
    return "".join(r.replace("\n", "; ").strip() + "\n" for r in responses)


def build_orm_user(
    intent: str,
    responses: Sequence[str],
    last_html: str,
    *,
    variant: str = "webrl",
    checks: bool = False,
) -> str:
    _check_variant(variant)
    extra = ORM_INTENT_LAST + intent.strip() if variant == "instruction_last" else ""
    if checks:  # last, so each fact sits a fixed number of tokens before the verdict
        extra += ORM_CHECKS + orm_checks(intent, responses, last_html)
    return (
        f"The User Intent:\n{intent.strip()}\n\nAction History:\n"
        + format_orm_history(responses)
        + f"\nThe Current Screenshot:\n{last_html.strip()}"
        + extra
    )


_TOKEN = re.compile(r"[#\w][\w.'/@#:-]*")
_QUOTED = re.compile(r'"([^"]{2,80})"')
MAX_LISTED_TERMS = 4
MAX_CALL_CHARS = 8192  # the same limit as trainer.env.actions


def _norm(text: str) -> str:
    return " ".join(text.lower().replace("$", "").replace(",", "").split())


_EXAMPLE = re.compile(r'\b(?:like|e\.g\.,?|such as|for example,?)\s*"[^"]*"', re.IGNORECASE)
# a lone capital other than I, as in "...: H", where H is ...
_PLACEHOLDER = re.compile(r"(?<![\w'])[A-HJ-Z](?![\w'])")


def _is_name(word: str, starts: bool) -> bool:
    """A word of the instruction that names something: a digit, '/', '@' or '.' inside, or a
    capital where no sentence starts. Hyphenated words name something only with a capitalised
    part ("Saint-Malo") or when all numbers (555-502-5274): "top-1", "2-star" and formats such as
    "YYYY-MM-DD" do not."""
    if len(word) < 2:
        return False
    if "-" in word and not any(ch in word for ch in "/@."):
        parts = word.split("-")
        return all(p.isdigit() for p in parts) or any(
            p[:1].isupper() and any(c.islower() for c in p) for p in parts
        )
    return (
        any(ch.isdigit() for ch in word)
        or any(ch in word for ch in "/@.")
        or (word[0].isupper() and not starts and word != "I")
    )


def instruction_terms(intent: str) -> list[str]:
    """The instruction's names, in order, without repeats: quoted phrases, and words with a digit,
    a '/', '@' or '.' inside, or a capital letter where no sentence starts (order #1187,
    ines.moreau/atlas-tiles, Quarry Classic Tea). Not names: an example of a format (`like
    "Name - $9.99"`), a quoted phrase with a placeholder in it (`"Hours: H"`, where H is ...),
    one-letter words, and hyphenated words neither all numbers nor with a capitalised part ("top-1",
    "YYYY-MM-DD")."""
    intent = _EXAMPLE.sub(" ", intent)
    terms = [q.strip() for q in _QUOTED.findall(intent) if not _PLACEHOLDER.search(q)]
    for m in _TOKEN.finditer(intent):
        word = m.group().rstrip(".:'-").lstrip("#")
        before = intent[: m.start()].rstrip()
        if _is_name(word, starts=not before or before[-1] in ".?!:"):
            terms.append(word)
    out: list[str] = []
    for term in terms:
        if term and term.lower() not in (t.lower() for t in out):
            out.append(term)
    return out


def final_answer(responses: Sequence[str]) -> str | None:
    """The message of a final `exit(message=...)`, None when the last response is no exit.

    The prompt formats stand alone, so this reads the call itself; it reads it the way
    `trainer.env.actions.parse_action` does (the text from the last `exit(`, a literal string or
    integer message), and a test holds the two to the same answers."""
    text = responses[-1] if responses else ""
    at = text.lower().rfind("exit(")
    call = text[at:].strip()
    if at < 0 or len(call) > MAX_CALL_CHARS:
        return None
    try:
        with warnings.catch_warnings():  # model text is not code: no SyntaxWarning on stderr
            warnings.simplefilter("ignore", SyntaxWarning)
            warnings.simplefilter("ignore", DeprecationWarning)  # invalid escapes, Python 3.11
            node = ast.parse(call, mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if not isinstance(node, ast.Call) or node.args:
        return None
    message = None
    for kw in node.keywords:
        try:
            value = ast.literal_eval(kw.value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
        if kw.arg is None or isinstance(value, bool) or not isinstance(value, str | int):
            return None
        if kw.arg.lower() == "message":
            message = str(value)
    return message


def orm_checks(intent: str, responses: Sequence[str], last_html: str) -> str:
    """Facts read off the ORM's own inputs, for a judge too small to compare the intent with the
    actions and the page itself (`orm.checks`; not in the paper): which of the instruction's names
    appear in neither the actions nor the final page, whether the final answer appears on that
    page, and how many actions repeat the one before. No ground truth goes in.

    The last three lines end in one word each, and the count of missing names comes last: the
    prompt ends with them, so a small model without induction heads finds each fact at a fixed
    distance before its answer, by position alone."""
    seen = _norm(" ".join(responses) + " " + last_html)
    missing = [t for t in instruction_terms(intent) if _norm(t) not in seen]
    listed = "; ".join(missing[:MAX_LISTED_TERMS]) + (
        "; ..." if len(missing) > MAX_LISTED_TERMS else ""
    )
    answer = final_answer(responses)
    page = _norm(last_html)
    if answer is None or not answer.strip():
        on_page = "none"
    else:
        parts = [_norm(a) for a in re.split(r"[;|]|, | and ", answer) if a.strip()]
        on_page = "yes" if parts and all(a in page for a in parts) else "no"
    repeats = sum(a.strip() == b.strip() for a, b in zip(responses, responses[1:], strict=False))
    return (
        f"Instruction names missing from the actions and the page: {listed or 'none'}\n"
        f"Repeated actions: {repeats}\nAnswer found on the page: {on_page}\n"
        f"Names missing: {len(missing)}"
    )


def build_orm_prompt(
    intent: str,
    responses: Sequence[str],
    last_html: str,
    *,
    system: str = ORM_SYSTEM,
    variant: str = "webrl",
    checks: bool = False,
) -> str:
    """The ORM's Llama-3 chat prompt of §4.1, ending with the assistant header.

    `last_html` is the observation the final action was chosen on. `checks` adds `orm_checks`
    after the page; `instruction_last` then repeats the intent, at the end of the user message.
    """
    user = build_orm_user(intent, responses, last_html, variant=variant, checks=checks)
    return (
        f"{BEGIN_OF_TEXT}<|start_header_id|>system<|end_header_id|>\n\n{system}{EOT}"
        f"<|start_header_id|>user<|end_header_id|>\n\n{user}{ORM_TAIL}"
    )


@dataclass(frozen=True)
class PromptParts:
    """An agent or ORM prompt in the order written: `head + history + middle + page + tail`.

    head: BOS, system text and intent (ORM) or the task instruction (agent); history: the earlier
    actions; middle: the headers before the page; page: the HTML; tail: the closing headers (an
    ORM prompt's checks and repeated intent first).
    """

    head: str
    history: str
    middle: str
    page: str
    tail: str


def split_prompt(prompt: str) -> PromptParts | None:
    """The parts of a prompt built by `build_orm_prompt` or `build_agent_prompt`; None for others."""
    if prompt.startswith(f"{BEGIN_OF_TEXT}<|start_header_id|>system") and prompt.endswith(ORM_TAIL):
        at = prompt.find("\n\nAction History:\n")
        if at < 0:
            return None
        a = at + len("\n\nAction History:\n")
        shot = prompt.find(ORM_SCREENSHOT, a - 1)  # an empty history shares its newline
        if shot < 0:
            return None
        b, c, d = max(shot, a), shot + len(ORM_SCREENSHOT), len(prompt) - len(ORM_TAIL)
        # the repeated intent and the checks close the user message: tail, never cut (a page
        # that holds a marker itself only keeps more of its end whole)
        for marker in (ORM_CHECKS, ORM_INTENT_LAST):
            at = prompt.rfind(marker, c, d)
            d = at if at >= 0 else d
    elif prompt.startswith("Task Instruction: ") and prompt.endswith(AGENT_TAIL):
        a = prompt.find("\n\nRound 0\n\n") + 2
        user = prompt.rfind(f"{EOT}{USER_HEADER}")
        b = prompt.rfind("Round ", 0, user)
        if a < 2 or user < 0 or b < a:
            return None
        c, d = user + len(f"{EOT}{USER_HEADER}"), len(prompt) - len(AGENT_TAIL)
    else:
        return None
    if c > d:
        return None
    return PromptParts(prompt[:a], prompt[a:b], prompt[b:c], prompt[c:d], prompt[d:])
