"""WebRL's prompt strings: the agent's completion prompt (spec §7.3) and the ORM's chat prompt (§4.1).

Every other module builds prompts through these functions; there is no second copy of the grammar.
"""

from __future__ import annotations

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
    intent: str, responses: Sequence[str], last_html: str, *, variant: str = "webrl"
) -> str:
    _check_variant(variant)
    last = f"\n\nThe User Intent:\n{intent.strip()}" if variant == "instruction_last" else ""
    return (
        f"The User Intent:\n{intent.strip()}\n\nAction History:\n"
        + format_orm_history(responses)
        + f"\nThe Current Screenshot:\n{last_html.strip()}"
        + last
    )


def build_orm_prompt(
    intent: str,
    responses: Sequence[str],
    last_html: str,
    *,
    system: str = ORM_SYSTEM,
    variant: str = "webrl",
) -> str:
    """The ORM's Llama-3 chat prompt of §4.1, ending with the assistant header.

    `last_html` is the observation the final action was chosen on. `instruction_last` repeats the
    intent after the page, at the end of the user message.
    """
    user = build_orm_user(intent, responses, last_html, variant=variant)
    return (
        f"{BEGIN_OF_TEXT}<|start_header_id|>system<|end_header_id|>\n\n{system}{EOT}"
        f"<|start_header_id|>user<|end_header_id|>\n\n{user}{ORM_TAIL}"
    )


@dataclass(frozen=True)
class PromptParts:
    """An agent or ORM prompt in the order written: `head + history + middle + page + tail`.

    head: BOS, system text and intent (ORM) or the task instruction (agent); history: the earlier
    actions; middle: the headers before the page; page: the HTML; tail: the closing headers.
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
