"""A base model for the tiny preset built on a GPU: the demo-size Llama, copy-pretrained on long
sequences in large batches until the induction probe copies random spans from 450 tokens back.

python -m trainer induction-base --config demo-cpu --data steps.jsonl --out var/induction-base --minutes 5

The corpus is `trainer/learn/pretrain.py`'s (spans of the prompts, about half repeating an earlier one);
the tokenizer is trained on the same prompts, as phase 0 trains it. It writes `final/` (the model in
bf16 and its tokenizer, about 15 MB) and `final/induction_base.json`; `model.init` names that folder.
An experiment until the GPU check has measured it (docs/results.md).
"""

from __future__ import annotations

import json
import multiprocessing
import random
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from trainer.bench.probes import INDUCTION_DISTANCES, induction_counts
from trainer.config import RunConfig
from trainer.learn.pretrain import PretrainError, copy_sequence, lm_loss

TARGET = 80
"""Shuffled-span copies (of 100: 20 trials × 5 predicted tokens) that count as copying."""
DISTANCE = 450
"""Gap of the target, in tokens: about where a compact prompt's instruction sits before the action."""
INFO_FILE = "induction_base.json"
MAX_BYTES = 30 * 2**20
"""The checkpoint must stay within 30 MB (it travels to users' machines)."""

_STREAMS: list[list[int]] = []


def _init_worker(streams: list[list[int]]) -> None:
    global _STREAMS
    _STREAMS = streams


def _copy_batch(seed: int, rows: int, length: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [copy_sequence(_STREAMS, rng, length) for _ in range(rows)]


def copy_batches(
    streams: list[list[int]], seed: int, rows: int, length: int, workers: int = 0
) -> Iterator[list[list[int]]]:
    """Endless batches of copying sequences; `workers` processes build them ahead when > 0."""
    if workers <= 0:
        _init_worker(streams)
        index = 0
        while True:
            yield _copy_batch(seed * 1_000_003 + index, rows, length)
            index += 1
    ctx = multiprocessing.get_context("fork")  # workers inherit the streams without pickling
    with ctx.Pool(workers, initializer=_init_worker, initargs=(streams,)) as pool:
        pending: deque = deque()
        index = 0
        while True:
            while len(pending) < 2 * workers:
                pending.append(pool.apply_async(_copy_batch, (seed * 1_000_003 + index, rows, length)))  # fmt: skip
                index += 1
            yield pending.popleft().get()


def shuffled_copies(model, tokenizer, texts: Sequence[str], distance: int, trials: int) -> int:
    """Right predictions inside a random span repeated `distance` tokens later (of trials × 5)."""
    (row,) = induction_counts(model, tokenizer, texts, distances=(distance,), trials=trials,
                              modes=("shuffled",))  # fmt: skip
    return row["copied"]


def train_induction_base(
    config: RunConfig,
    records: Sequence[dict[str, Any]],
    out_dir: str | Path,
    *,
    minutes: float = 5.0,
    batch: int = 128,
    seq_len: int = 1024,
    lr: float | None = None,
    warmup_steps: int = 100,
    probe_every_s: float = 20.0,
    target: int = TARGET,
    distance: int = DISTANCE,
    trials: int = 20,
    workers: int = 0,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train until `target` shuffled copies at `distance` or `minutes` run out; save `out_dir/final`."""
    from trainer.learn.engine import resolve_device
    from trainer.learn.models import save_model
    from trainer.learn.sft import policy_loader
    from trainer.learn.tokenizer import encode_text

    started = time.perf_counter()
    deadline = started + 60 * minutes
    model, tokenizer = policy_loader(config, None, records)
    texts = [r["observation"] for r in records if r.get("observation")]
    streams = [encode_text(tokenizer, t) for t in texts]
    if not any(streams):
        raise PretrainError("the records hold no prompt text to pretrain on")
    length = min(seq_len, config.engine.max_seq_len)
    source = copy_batches(streams, config.seed, batch, length, workers)  # forks before CUDA starts
    device = resolve_device(config.engine.device)
    model.to(device).train()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    base_lr = lr or config.model.pretrain_lr
    optimizer = torch.optim.AdamW(model.parameters(), lr=base_lr, weight_decay=0.0)
    step = tokens = 0
    history: list[dict[str, Any]] = []
    last_probe = time.perf_counter()
    reached = False
    while time.perf_counter() < deadline:
        ids = torch.tensor(next(source), device=device)  # [B, T]
        for group in optimizer.param_groups:
            group["lr"] = base_lr * min(1.0, (step + 1) / warmup_steps)
        with autocast:
            loss = lm_loss(model(input_ids=ids).logits, ids)  # [B, T, V] logits
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.engine.max_grad_norm)
        optimizer.step()
        step += 1
        tokens += ids.numel()
        if time.perf_counter() - last_probe >= probe_every_s:
            copied = shuffled_copies(model, tokenizer, texts, distance, trials)
            last_probe = time.perf_counter()
            history.append({"step": step, "tokens": tokens, "loss": round(loss.item(), 4),
                            "seconds": round(last_probe - started, 1), "copied": copied})  # fmt: skip
            if on_step is not None:
                on_step(dict(history[-1]))
            if copied >= target:
                reached = True
                break
    train_s = time.perf_counter() - started
    source.close()
    final = Path(out_dir) / "final"
    final.mkdir(parents=True, exist_ok=True)
    distances = sorted({*(d for d in INDUCTION_DISTANCES if d < distance), distance})
    rows = induction_counts(model, tokenizer, texts, distances=distances, trials=trials)
    save_model(model.to("cpu", torch.bfloat16), tokenizer, final)
    size = sum(f.stat().st_size for f in final.iterdir() if f.is_file())
    info = {
        "reached": reached, "target": target, "distance": distance, "trials": trials,
        "steps": step, "tokens": tokens, "batch": batch, "seq_len": length, "lr": base_lr,
        "train_minutes": round(train_s / 60, 2), "device": str(device),
        "last_loss": round(loss.item(), 4) if step else None, "history": history,
        "probe": rows, "size_bytes": size, "within_30mb": size <= MAX_BYTES,
    }  # fmt: skip
    (final / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True))
    return {"done": True, "model_dir": str(final), **info}
