"""Copy pretraining: the tiny model's stand-in for the pretraining an LLM brings (demo-cpu only).

WebRL starts from a pretrained LLM (Llama-3.1-8B), which copies a name out of the instruction into a
Search or Type argument without being taught to. A Llama of a few million parameters initialised at
random does not: on 200 demonstrations it learns the action grammar and the page ids, and then types
the names it saw most often in training. Before SFT, `pretrain_tiny` therefore trains the fresh tiny
model with the next-token loss on a synthetic corpus made for copying: each sequence strings together
short spans cut from the demonstrations' own prompts, and about half of the spans repeat one that came
earlier in the same sequence. Predicting a repeated span is possible only by finding its earlier copy,
which is the in-context copying ("induction") an LLM has. The corpus holds no actions and no task
outcomes, so it teaches nothing about the tasks themselves.

Not in the paper: the paper's models are pretrained already. A run that names a checkpoint in
`model.policy` never does this.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from trainer.config import RunConfig

TOKENS_PER_STEP = 2048
"""Tokens per pretraining step (sequences of `SEQ_LEN`, or of `engine.max_seq_len` when shorter)."""
SEQ_LEN = 128
"""Tokens per pretraining sequence. 512 (repeats as far back as a compact prompt's instruction sits
from its action) was slower and measured no better (docs/results.md, fourth attempt)."""
SPAN = (2, 10)
"""Lengths (inclusive) of the spans a sequence is built from."""
REPEAT_P = 0.5
"""Chance that a span repeats an earlier span of the same sequence."""
DONE_FILE = "pretrain.json"


class PretrainError(ValueError):
    """The texts give nothing to build the copying corpus from."""


def copy_sequence(
    streams: Sequence[Sequence[int]],
    rng: random.Random,
    length: int = SEQ_LEN,
    span: tuple[int, int] = SPAN,
    repeat_p: float = REPEAT_P,
) -> list[int]:
    """One corpus sequence of `length` ids: spans of `streams`, each repeating an earlier one with
    probability `repeat_p`."""
    usable = [s for s in streams if s]
    if not usable:
        raise PretrainError("no token stream to cut spans from")
    out: list[int] = []
    spans: list[Sequence[int]] = []
    while len(out) < length:
        if spans and rng.random() < repeat_p:
            piece = rng.choice(spans)
        else:
            stream = rng.choice(usable)
            k = rng.randint(*span)
            start = rng.randrange(max(1, len(stream) - k + 1))
            piece = stream[start : start + k]
            spans.append(piece)
        out.extend(piece)
    return out[:length]


def lm_loss(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Token-mean next-token cross-entropy over every position; logits [B, T, V], ids [B, T]."""
    pred = logits[:, :-1].float()  # [B, T-1, V]
    return torch.nn.functional.cross_entropy(
        pred.reshape(-1, pred.shape[-1]), input_ids[:, 1:].reshape(-1)
    )


def needs_pretraining(config: RunConfig) -> bool:
    """True when SFT would start from a fresh tiny model that the config copy-pretrains first."""
    return config.model.pretrain_steps > 0 and not config.model.policy and not config.model.init


def pretrained_dir(out_dir: str | Path) -> Path | None:
    """The finished pretrained model under `out_dir`, or None if pretraining has not finished there."""
    final = Path(out_dir) / "final"
    return final if (final / DONE_FILE).is_file() else None


def pretrain_tiny(
    config: RunConfig,
    records: Sequence[dict[str, Any]],
    out_dir: str | Path,
    *,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Build the tiny model and its tokenizer from `records` (as SFT would), copy-pretrain it for
    `config.model.pretrain_steps` steps and save it to `out_dir/final`.

    A finished directory is reused as it is. Stopped early, it saves nothing and says so.
    """
    from trainer.learn.engine import resolve_device
    from trainer.learn.models import save_model
    from trainer.learn.sft import policy_loader
    from trainer.learn.tokenizer import encode_text

    done = pretrained_dir(out_dir)
    if done is not None:
        info = json.loads((done / DONE_FILE).read_text())
        return {"done": True, "stopped": False, "model_dir": str(done), "reused": True, **info}
    steps = config.model.pretrain_steps
    model, tokenizer = policy_loader(config, None, records)
    streams = [encode_text(tokenizer, r["observation"]) for r in records if r.get("observation")]
    if not any(streams):
        raise PretrainError("the records hold no prompt text to pretrain on")
    device = resolve_device(config.engine.device)
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.model.pretrain_lr, weight_decay=0.0)
    rng = random.Random(config.seed)
    length = min(SEQ_LEN, config.engine.max_seq_len)
    per_step = max(1, TOKENS_PER_STEP // length)
    loss_value = None
    started = time.perf_counter()
    for step in range(1, steps + 1):
        if should_stop is not None and should_stop():
            return {"done": False, "stopped": True, "steps": step - 1, "model_dir": None}
        batch = torch.tensor(
            [copy_sequence(streams, rng, length) for _ in range(per_step)], device=device
        )
        t0 = time.perf_counter()
        loss = lm_loss(model(input_ids=batch).logits, batch)  # [B, T, V] logits
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.engine.max_grad_norm)
        optimizer.step()
        loss_value = loss.item()
        if on_step is not None:
            on_step(
                {
                    "step": step,
                    "total_steps": steps,
                    "loss": loss_value,
                    "grad_norm": float(norm),
                    "tokens_per_s": batch.numel() / max(time.perf_counter() - t0, 1e-9),
                }
            )
    final = Path(out_dir) / "final"
    final.mkdir(parents=True, exist_ok=True)
    save_model(model.to("cpu"), tokenizer, final)
    info = {
        "steps": steps,
        "seq_len": length,
        "sequences_per_step": per_step,
        "loss": loss_value,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (final / DONE_FILE).write_text(json.dumps(info, indent=2, sort_keys=True))
    return {"done": True, "stopped": False, "model_dir": str(final), "reused": False, **info}
