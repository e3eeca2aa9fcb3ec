"""Step records of spec §10 (JSONL), Monte-Carlo returns (§1.5) and tokenisation into prompt/action masks.

A long agent or ORM prompt keeps its instruction (and system text), its action history and its
closing headers, and loses the middle of the page's HTML, with a marker (`fit_prompt`), so the
action always fits in max_seq_len (the paper cuts on the right at 16k tokens, never reached there).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainer.learn.tokenizer import encode_prompt, encode_text, eot_id
from trainer.prompts import EOT, HISTORY_CUT, PAGE_CUT, split_prompt

REQUIRED_FIELDS = ("observation", "action")
STEP_FIELDS = (
    "observation",
    "next_observation",
    "task",
    "action",
    "reward",
    "done",
    "trajectory_reward",
    "mc_return",
)


class DataError(ValueError):
    """A step file or record is malformed; the message names the line and the field."""


def read_steps(path: str | Path) -> list[dict[str, Any]]:
    """One JSON object per line (blank lines skipped); every record needs `observation` and `action`."""
    records = []
    try:
        fh = open(path, encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot read step file {str(path)!r}: {exc.strerror}") from None
    with fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            records.append(validate_step(rec, f"{path}:{lineno}"))
    if not records:
        raise DataError(f"{path}: no step records")
    return records


def validate_step(rec: Any, where: str = "record") -> dict[str, Any]:
    if not isinstance(rec, dict):
        raise DataError(f"{where}: expected a JSON object")
    for name in REQUIRED_FIELDS:
        if not isinstance(rec.get(name), str):
            raise DataError(f"{where}: field {name!r} must be a string")
    for name in ("reward", "trajectory_reward", "mc_return"):
        if name in rec and not isinstance(rec[name], int | float):
            raise DataError(f"{where}: field {name!r} must be a number")
    ids = rec.get("action_token_ids")
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, int) for i in ids)):
        raise DataError(f"{where}: field 'action_token_ids' must be a list of integers")
    return rec


def write_steps(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


def mc_returns(rewards: Sequence[float], gamma: float) -> list[float]:
    """mc_return_t = Σ_{j≥t} γ^{j−t} r_j (§1.5)."""
    out = [0.0] * len(rewards)
    acc = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        acc = rewards[t] + gamma * acc
        out[t] = acc
    return out


def split_trajectories(records: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Consecutive steps up to and including one with `done` true form a trajectory."""
    trajectories, current = [], []
    for rec in records:
        current.append(rec)
        if rec.get("done"):
            trajectories.append(current)
            current = []
    if current:
        trajectories.append(current)
    return trajectories


def add_mc_returns(records: Sequence[dict[str, Any]], gamma: float) -> list[dict[str, Any]]:
    """Copies of the records with `mc_return` recomputed per trajectory (reward = outcome on every step)."""
    out = []
    for traj in split_trajectories(records):
        returns = mc_returns([float(r.get("reward", 0.0)) for r in traj], gamma)
        out.extend({**r, "mc_return": g} for r, g in zip(traj, returns, strict=True))
    return out


@dataclass
class Example:
    """One tokenised (prompt, action) pair; `action_mask[i]` is 1 where input_ids[i] is an action token."""

    input_ids: list[int]
    action_mask: list[int]


def action_ids_for(tokenizer, rec: dict[str, Any]) -> list[int]:
    """The action's token ids ending with EOT: the sampled ids as given, else the text tokenised."""
    ids = rec.get("action_token_ids")
    action = rec["action"]
    if ids is None:
        ids = encode_text(tokenizer, action[: -len(EOT)] if action.endswith(EOT) else action)
    eot = eot_id(tokenizer)
    return list(ids) if ids and ids[-1] == eot else [*ids, eot]


def fit_prompt(tokenizer, prompt: str, budget: int) -> list[int]:
    """Prompt ids (BOS first) in at most `budget` tokens; the one rule for training and scoring.

    An agent or ORM prompt (`split_prompt`) keeps its head (system text, instruction, intent), its
    middle and tail headers whole. The page keeps at least half of what is left: the history first
    loses its oldest actions (marked `HISTORY_CUT`), then the page loses its middle (marked
    `PAGE_CUT`). Any other prompt, or one whose head alone is too long, loses tokens from its left.
    """
    ids = encode_prompt(tokenizer, prompt)
    if len(ids) <= budget:
        return ids
    parts = split_prompt(prompt)
    if parts is not None:
        head = encode_prompt(tokenizer, parts.head)
        middle = encode_text(tokenizer, parts.middle)
        tail = encode_text(tokenizer, parts.tail)
        page = encode_text(tokenizer, parts.page)
        page_marker = encode_text(tokenizer, PAGE_CUT)
        avail = budget - len(head) - len(middle) - len(tail)  # for history and page
        if avail > 2 * len(page_marker):
            history = _cut_left(
                encode_text(tokenizer, parts.history),
                avail - min(len(page), avail // 2),
                encode_text(tokenizer, HISTORY_CUT),
            )
            page = _cut_middle(page, avail - len(history), page_marker)
            return head + history + middle + page + tail
    return _fit_plain(tokenizer, prompt, ids, budget)


def _cut_left(ids: list[int], budget: int, marker: list[int]) -> list[int]:
    """`ids` whole if they fit in `budget`, else the marker and their newest tokens."""
    if len(ids) <= budget:
        return ids
    keep = budget - len(marker)
    return marker + ids[len(ids) - keep :] if keep > 0 else []


def _cut_middle(ids: list[int], budget: int, marker: list[int]) -> list[int]:
    """`ids` whole if they fit in `budget`, else their first and last halves around the marker."""
    if len(ids) <= budget:
        return ids
    keep = budget - len(marker)
    if keep <= 0:
        return []
    front = (keep + 1) // 2
    return ids[:front] + marker + ids[len(ids) - (keep - front) :]


def _fit_plain(tokenizer, prompt: str, ids: list[int], budget: int) -> list[int]:
    """BOS + the first paragraph while it takes at most a quarter of the budget + the tail."""
    head: list[int] = []
    end = prompt.find("\n\n")
    if end > 0:
        head = encode_prompt(tokenizer, prompt[: end + 2])[1:]
        if len(head) > budget // 4:
            head = []
    tail = budget - 1 - len(head)
    return ids[:1] + head + (ids[len(ids) - tail :] if tail > 0 else [])


def tokenize_example(
    tokenizer, prompt: str, action_ids: Sequence[int], max_seq_len: int
) -> Example:
    """BOS + prompt + action, the action masked in; a long prompt is cut by `fit_prompt`, never the action."""
    action_ids = list(action_ids)
    if len(action_ids) >= max_seq_len:
        raise DataError(
            f"action of {len(action_ids)} tokens does not fit in max_seq_len={max_seq_len}"
        )
    prompt_ids = fit_prompt(tokenizer, prompt, max_seq_len - len(action_ids))
    return Example(prompt_ids + action_ids, [0] * len(prompt_ids) + [1] * len(action_ids))


def tokenize_prompt(tokenizer, prompt: str, max_seq_len: int) -> list[int]:
    """A state prompt alone (critic, ORM, generation), cut by `fit_prompt` to max_seq_len."""
    return fit_prompt(tokenizer, prompt, max_seq_len)


def collate(examples: Sequence[Example], pad: int) -> dict[str, torch.Tensor]:
    """Right-padded batch: input_ids, attention_mask, action_mask, each [B, T]."""
    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad, dtype=torch.long)  # [B, T]
    attention = torch.zeros((len(examples), width), dtype=torch.long)  # [B, T]
    action = torch.zeros((len(examples), width), dtype=torch.long)  # [B, T]
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        input_ids[i, :n] = torch.tensor(e.input_ids)
        attention[i, :n] = 1
        action[i, :n] = torch.tensor(e.action_mask)
    return {"input_ids": input_ids, "attention_mask": attention, "action_mask": action}


def collate_prompts(prompts: Sequence[Sequence[int]], pad: int) -> dict[str, torch.Tensor]:
    """Right-padded prompt batch: input_ids, attention_mask [B, T]."""
    batch = collate([Example(list(p), [0] * len(p)) for p in prompts], pad)
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def step_examples(tokenizer, records: Sequence[dict[str, Any]], max_seq_len: int) -> list[Example]:
    return [
        tokenize_example(tokenizer, r["observation"], action_ids_for(tokenizer, r), max_seq_len)
        for r in records
    ]


def batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def length_grouped_batches(
    examples: Sequence[Example], size: int, window: int, seed: int
) -> list[Sequence[Example]]:
    """Micro-batches of `size` that pad less: each window of `window` examples (in the given,
    already shuffled order) sorted by length, cut into batches, those batches shuffled; `window`
    <= 1 gives plain `batches`. Every example is kept exactly once."""
    if window <= 1:
        return batches(examples, size)
    rng = random.Random(seed)
    out: list[Sequence[Example]] = []
    for start in range(0, len(examples), window):
        chunk = sorted(examples[start : start + window], key=lambda e: len(e.input_ids))
        group = batches(chunk, size)
        rng.shuffle(group)
        out.extend(group)
    return out
