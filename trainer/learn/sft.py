"""Supervised fine-tuning (§1.2): token-mean NLL of prompt → action + EOT over step records.

The policy comes from a local checkpoint or, for the tiny presets, a Llama built from the config with a
tokenizer trained on the records; the ORM and the `sft` actor objective reuse `train_sft`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from trainer.config import RunConfig
from trainer.learn.data import action_ids_for, collate, length_grouped_batches, tokenize_example
from trainer.learn.engine import (
    Engine,
    OnStep,
    ShouldStop,
    count_tokens,
    fit,
    latest_checkpoint,
    model_saver,
    repeat_epochs,
)
from trainer.learn.losses import prompt_lm_loss, sft_loss, token_logprobs
from trainer.learn.models import build_tiny_llama, load_causal_lm, load_tokenizer
from trainer.learn.tokenizer import pad_id, train_tokenizer


def _texts_for_tokenizer(records: Sequence[dict[str, Any]]) -> list[str]:
    return [
        t
        for r in records
        for t in (r.get("observation", ""), r.get("action", ""), r.get("task", ""))
        if t
    ]


def policy_loader(config: RunConfig, init: str | Path | None, records: Sequence[dict[str, Any]]):
    """(model, tokenizer): a local checkpoint (`init`, `model.policy`, `model.init`), or a tiny Llama
    with a BPE trained on the records' texts."""

    if init:
        return load_causal_lm(init), load_tokenizer(config.model.tokenizer or init)
    if config.model.policy:
        return load_causal_lm(config.model.policy), load_tokenizer(
            config.model.tokenizer or config.model.policy
        )
    if config.model.init:  # a base built for the tiny preset (trainer/bench/induction_base.py)
        return load_causal_lm(config.model.init), load_tokenizer(
            config.model.tokenizer or config.model.init
        )
    if config.model.tokenizer:
        tokenizer = load_tokenizer(config.model.tokenizer)
    else:
        tokenizer = train_tokenizer(_texts_for_tokenizer(records), config.model.vocab_size)
    return build_tiny_llama(
        config.model, tokenizer, config.engine.max_seq_len, config.seed
    ), tokenizer


def train_sft(
    config: RunConfig,
    records: Sequence[dict[str, Any]],
    out_dir: str | Path,
    *,
    init: str | Path | None = None,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
    resume: bool = False,
    lr: float | None = None,
    epochs: int | None = None,
    schedule: str | None = None,
    warmup_ratio: float | None = None,
    prompt_weight: float | None = None,
) -> dict[str, Any]:
    """Token-mean NLL of prompt → action + EOT over step records (§1.2 SFT); the ORM reuses it.

    `prompt_weight` (default `sft.prompt_weight`; the ORM passes 0) adds that much of the prompt
    tokens' own language-modelling loss.
    """
    weight = config.sft.prompt_weight if prompt_weight is None else prompt_weight

    checkpoint = latest_checkpoint(out_dir) if resume else None
    model, tokenizer = policy_loader(config, checkpoint or init, records)
    examples = [
        tokenize_example(
            tokenizer, r["observation"], action_ids_for(tokenizer, r), config.engine.max_seq_len
        )
        for r in records
    ]
    pad = pad_id(tokenizer)
    micro = [
        collate(b, pad)
        for b in length_grouped_batches(
            repeat_epochs(examples, epochs or config.sft.epochs, config.seed),
            config.engine.micro_batch,
            config.engine.length_window,
            config.seed,
        )
    ]
    engine = Engine(
        config,
        model,
        lr=lr if lr is not None else config.sft.lr,
        total_steps=-(-len(micro) // config.engine.grad_accum),
        save_model=model_saver(tokenizer),
        out_dir=out_dir,
        schedule=schedule or config.sft.schedule,
        warmup_ratio=config.sft.warmup_ratio if warmup_ratio is None else warmup_ratio,
    )
    if checkpoint is not None:
        engine.load_state(checkpoint)

    def loss_fn(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        batch = {k: v.to(engine.device) for k, v in batch.items()}
        logits = engine.model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).logits
        loss, metrics = sft_loss(
            token_logprobs(logits, batch["input_ids"], batch["action_mask"]), batch["action_mask"]
        )
        if weight > 0:
            lm, lm_metrics = prompt_lm_loss(
                logits, batch["input_ids"], batch["attention_mask"], batch["action_mask"]
            )
            loss = loss + weight * lm
            metrics = {**metrics, **lm_metrics}
        return loss, metrics

    return fit(
        engine, micro, loss_fn, on_step=on_step, should_stop=should_stop, count_tokens=count_tokens
    )
