"""In-process sampling with Hugging Face `generate`: batched, left-padded, on CPU or GPU."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import LogitsProcessorList

from trainer.config import RunConfig
from trainer.env.types import PolicyOutput
from trainer.learn.data import collate_prompts, tokenize_prompt
from trainer.learn.engine import resolve_device, resolve_dtype
from trainer.learn.models import load_causal_lm, load_tokenizer
from trainer.learn.tokenizer import eot_id, pad_id
from trainer.serve.constrained import TrieLogitsProcessor, choice_trie
from trainer.serve.sampling import Choices, Decoding, GenerationError, Sample


class HFGenerator:
    """Batched `model.generate` with left padding, on CPU or GPU."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        decoding: Decoding | None = None,
        *,
        batch_size: int = 8,
        max_seq_len: int = 16384,
        seed: int | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.decoding = decoding or Decoding()
        self.batch_size = batch_size
        self.max_seq_len = max_seq_len
        self.generator_seed = seed
        self.eot = eot_id(tokenizer)
        self.pad = pad_id(tokenizer)
        self.choice_ids: dict[str, list[int]] = {}  # token ids of valid actions seen before

    @classmethod
    def from_dir(
        cls, path: str | Path, config: RunConfig, decoding: Decoding | None = None
    ) -> HFGenerator:
        device = resolve_device(config.engine.device)
        model = load_causal_lm(
            path, dtype=resolve_dtype(config.engine.dtype, device), device=str(device)
        )
        return cls(
            model,
            load_tokenizer(path),
            decoding or Decoding.rollout(config),
            batch_size=config.rollout.batch_size,
            max_seq_len=config.engine.max_seq_len,
            seed=config.seed,
        )

    def generate(self, prompts: list[str], choices: Choices = None) -> list[PolicyOutput]:
        return [s.output() for s in self.sample(prompts, choices=choices)]

    def sample(
        self, prompts: Sequence[str], decoding: Decoding | None = None, choices: Choices = None
    ) -> list[Sample]:
        d = decoding or self.decoding
        if choices is not None and len(choices) != len(prompts):
            raise GenerationError(f"{len(choices)} choice lists for {len(prompts)} prompts")
        if self.generator_seed is not None:
            torch.manual_seed(self.generator_seed)
            self.generator_seed = None  # seed once; later calls continue the stream
        out: list[Sample] = []
        for i in range(0, len(prompts), self.batch_size):
            part = choices[i : i + self.batch_size] if choices is not None else None
            out.extend(self._sample_batch(prompts[i : i + self.batch_size], d, part))
        return out

    @torch.no_grad()
    def _sample_batch(
        self, prompts: Sequence[str], d: Decoding, choices: Choices = None
    ) -> list[Sample]:
        budget = max(1, self.max_seq_len - d.max_tokens)
        ids = [tokenize_prompt(self.tokenizer, p, budget) for p in prompts]
        width = max(len(x) for x in ids)
        device = next(self.model.parameters()).device
        batch = collate_prompts(
            [[self.pad] * (width - len(x)) + x for x in ids], self.pad
        )  # left padding
        attention = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids])  # [B, T]
        kwargs: dict[str, Any] = {"do_sample": d.temperature > 0}
        if d.temperature > 0:
            kwargs.update(temperature=d.temperature, top_p=d.top_p, top_k=0)
        if choices is not None and any(c is not None for c in choices):
            tries = [
                None
                if c is None
                else choice_trie(self.tokenizer, c, self.eot, d.max_tokens, self.choice_ids)
                for c in choices
            ]
            kwargs["logits_processor"] = LogitsProcessorList([TrieLogitsProcessor(tries, width)])
        gen = self.model.generate(
            input_ids=batch["input_ids"].to(device),
            attention_mask=attention.to(device),
            max_new_tokens=d.max_tokens,
            eos_token_id=self.eot,
            pad_token_id=self.pad,
            output_logits=True,
            return_dict_in_generate=True,
            **kwargs,
        )
        new = gen.sequences[:, width:]  # [B, N]
        logits = torch.stack(gen.logits, dim=1).float()  # [B, N, V] raw scores
        lp = logits.log_softmax(-1).gather(-1, new.unsqueeze(-1)).squeeze(-1)  # [B, N]
        return [self._finish(new[b].tolist(), lp[b].tolist(), d.stop) for b in range(len(prompts))]

    def _finish(self, ids: list[int], logprobs: list[float], stop: Sequence[str]) -> Sample:
        reason = "length"
        if self.eot in ids:
            cut = ids.index(self.eot)
            ids, logprobs, reason = ids[:cut], logprobs[:cut], "stop"
        text = self.tokenizer.decode(ids)
        hits = [text.index(s) for s in stop if s and s in text]
        if hits:
            text, reason = text[: min(hits)], "stop"
            k = len(ids)
            while k > 0 and not text.startswith(self.tokenizer.decode(ids[:k])):
                k -= 1  # keep the longest id prefix that decodes inside the cut text
            ids, logprobs = ids[:k], logprobs[:k]
        return Sample(text, ids, logprobs, reason)
