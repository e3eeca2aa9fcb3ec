"""Decoding through a set of allowed responses: a trie of their token ids and the HF logits processor
that walks it, one token at a time (`rollout.decoding="valid_actions"`, issue 19).

Greedy decoding through the trie picks, at every step, the likeliest token that still leads to some
allowed response; unlike ranking whole responses by summed log-probability, it does not prefer short
arguments. The processor masks only what is sampled: the raw logits that generation records, and so
the log-probs that training scores, stay the model's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from transformers import LogitsProcessor


class TokenTrie:
    """Token-id sequences sharing their prefixes; `allowed(prefix)` gives the ids that may follow."""

    def __init__(self, sequences: Iterable[Sequence[int]] = ()) -> None:
        self.root: dict[int, dict] = {}
        self.size = 0
        for ids in sequences:
            self.add(ids)

    def add(self, ids: Sequence[int]) -> None:
        node = self.root
        for i in ids:
            node = node.setdefault(int(i), {})
        self.size += 1

    def allowed(self, prefix: Sequence[int]) -> list[int] | None:
        """Ids that extend `prefix` towards a sequence; [] at a sequence's end; None off the trie."""
        node = self.root
        for i in prefix:
            node = node.get(int(i))
            if node is None:
                return None
        return list(node)


CACHE_LIMIT = 200_000
"""Token ids of at most this many choice strings are kept between steps (then the cache restarts)."""


def choice_trie(
    tokenizer: Any,
    choices: Sequence[str],
    end_id: int,
    max_tokens: int,
    cache: dict[str, list[int]] | None = None,
) -> TokenTrie:
    """A trie of each choice's token ids (as SFT tokenises an action: alone, no BOS) plus `end_id`.

    Choices longer than `max_tokens` (with the end token) are left out: generation would cut them.
    `cache` keeps ids between calls: most of a step's choices (the instruction's spans, the page's
    elements) come back at the next step of the episode, and tokenising is the costly part."""
    cache = {} if cache is None else cache
    if len(cache) > CACHE_LIMIT:
        cache.clear()
    new = [c for c in dict.fromkeys(choices) if c not in cache]
    if new:
        cache.update(zip(new, tokenizer(new, add_special_tokens=False)["input_ids"], strict=True))
    encoded = [cache[c] for c in choices]
    trie = TokenTrie(
        [*ids, end_id] for ids in encoded if ids and len(ids) + 1 <= max_tokens
    )  # fmt: skip
    if trie.size == 0:
        raise ValueError(f"none of {len(choices)} choices fits in {max_tokens} tokens")
    return trie


class TrieLogitsProcessor(LogitsProcessor):
    """Masks, in each row that has a trie, every token that leaves it; rows with None are free.

    `prompt_width` is the (left-padded) prompt length: the tokens after it are the response so far.
    A row past its end token (generation pads finished rows) is left alone."""

    def __init__(self, tries: Sequence[TokenTrie | None], prompt_width: int) -> None:
        self.tries = list(tries)
        self.prompt_width = prompt_width

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        mask = torch.zeros_like(scores)  # [B, V]; out of place, so recorded raw logits stay raw
        for b, trie in enumerate(self.tries):
            if trie is None:
                continue
            allowed = trie.allowed(input_ids[b, self.prompt_width :].tolist())
            if not allowed:
                continue
            mask[b] = float("-inf")
            mask[b, allowed] = 0.0
        return scores + mask
