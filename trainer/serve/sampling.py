"""What every sampling backend shares: the decoding settings, a sample, the `Generator` interface.

Every backend returns the sampled token ids and their log-probs (raw model distribution, before
temperature/top-p), so training scores exactly the ids that were sampled. Each prompt may come with
a list of choices, the responses it must pick among (`rollout.decoding="valid_actions"`): HF decodes
through a token trie (`trainer.serve.constrained`), an OpenAI-compatible server gets vLLM's
`structured_outputs: {"choice": [...]}`; the log-probs stay those of the unconstrained model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from trainer.config import RunConfig
from trainer.env.types import PolicyOutput
from trainer.prompts import EOT


class GenerationError(RuntimeError):
    """A backend could not produce responses (server down, bad reply, missing vllm)."""


@dataclass
class Sample:
    text: str
    token_ids: list[int]
    logprobs: list[float]
    finish_reason: str  # "stop" (EOT or a stop string) or "length"

    def output(self) -> PolicyOutput:
        return PolicyOutput(text=self.text, token_ids=self.token_ids, logprobs=self.logprobs)


Choices = Sequence[Sequence[str] | None] | None
"""Per prompt, the responses it must be one of (None = free); None for the whole batch = all free."""


class Generator(Protocol):
    def generate(self, prompts: list[str], choices: Choices = None) -> list[PolicyOutput]: ...


@dataclass
class Decoding:
    temperature: float = 1.0
    top_p: float = 0.9
    max_tokens: int = 2048
    stop: tuple[str, ...] = (EOT,)

    @classmethod
    def rollout(cls, config: RunConfig) -> Decoding:
        r = config.rollout
        return cls(r.temperature, r.top_p, r.max_new_tokens)

    @classmethod
    def evaluation(cls, config: RunConfig) -> Decoding:
        return cls(config.eval.temperature, 1.0, config.eval.max_tokens)
