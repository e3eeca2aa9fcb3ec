"""The replay buffer of spec §5: earlier successes whose actor confidence lies in (0.5, 0.95], capped, merged.

conf = exp(mean action-token log-prob) = 1 / perplexity, under the actor about to be trained.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from trainer.config import RunConfig
from trainer.learn.actor import score_actions
from trainer.learn.data import (
    action_ids_for,
    batches,
    collate,
    split_trajectories,
    tokenize_example,
)
from trainer.learn.models import load_causal_lm, load_tokenizer
from trainer.learn.tokenizer import eot_id, pad_id

Step = dict[str, Any]


def in_band(conf: float, low: float = 0.5, high: float = 0.95) -> bool:
    """§5 step 4: low < conf <= high (0.5 excluded, 0.95 included)."""
    return low < conf <= high


def successful_steps(past: Sequence[Step]) -> list[Step]:
    """Steps of successful trajectories (trajectory_reward >= 0.5), the first trajectory per task string."""
    seen: set[str] = set()
    out: list[Step] = []
    for traj in split_trajectories(past):
        outcome = traj[-1].get("trajectory_reward", traj[-1].get("reward", 0.0))
        task = traj[0].get("task", "")
        if outcome < 0.5 or task in seen:
            continue
        seen.add(task)
        out.extend(traj)
    return out


def select_replay(
    candidates: Sequence[Step],
    confidences: Sequence[float],
    n_current: int,
    *,
    low: float,
    high: float,
    cap_ratio: float,
    rng: random.Random,
) -> list[Step]:
    """Keep in-band steps, shuffle, cap at cap_ratio × n_current (§5 steps 4–5)."""
    kept = [
        dict(s, rank_score=c)
        for s, c in zip(candidates, confidences, strict=True)
        if in_band(c, low, high)
    ]
    rng.shuffle(kept)
    return kept[: int(cap_ratio * n_current)]


def merge(current: Sequence[Step], replay: Sequence[Step], rng: random.Random) -> list[Step]:
    """All current-phase steps (successes and failures) plus the replay, shuffled (§5 step 6)."""
    merged = [*current, *replay]
    rng.shuffle(merged)
    return merged


@torch.no_grad()
def action_confidences(
    model, tokenizer, steps: Sequence[Step], *, max_seq_len: int, batch_size: int = 4
) -> list[float]:
    """exp(mean log-prob) of each step's action tokens, without the appended EOT (§5 step 3)."""
    eot = eot_id(tokenizer)
    examples = []
    for s in steps:
        ids = action_ids_for(tokenizer, s)
        ids = ids[:-1] if len(ids) > 1 and ids[-1] == eot else ids
        examples.append(tokenize_example(tokenizer, s["observation"], ids, max_seq_len))
    device = next(model.parameters()).device
    scored = score_actions(
        model, [collate(b, pad_id(tokenizer)) for b in batches(examples, batch_size)], device
    )
    return [float(torch.exp(torch.tensor(lp / max(n, 1)))) for lp, n in scored]


def build_phase_data(
    config: RunConfig, current: Sequence[Step], past: Sequence[Step], actor_dir: str | Path
) -> tuple[list[Step], dict[str, float]]:
    """The merged training data of one phase and counts describing the replay selection."""
    candidates = successful_steps(past)
    confidences: list[float] = []
    if candidates:
        from trainer.learn.placement import frozen_placement

        device, dtype = frozen_placement(config)  # where the policy trains, in its dtype
        model = load_causal_lm(actor_dir, dtype=dtype, device=str(device))
        confidences = action_confidences(
            model,
            load_tokenizer(actor_dir),
            candidates,
            max_seq_len=config.engine.max_seq_len,
            batch_size=config.engine.micro_batch,
        )
    rng = random.Random(config.seed)
    r = config.replay
    replay = select_replay(
        candidates,
        confidences,
        len(current),
        low=r.conf_low,
        high=r.conf_high,
        cap_ratio=r.cap_ratio,
        rng=rng,
    )
    stats = {
        "replay/candidates": float(len(candidates)),
        "replay/in_band": float(sum(in_band(c, r.conf_low, r.conf_high) for c in confidences)),
        "replay/kept": float(len(replay)),
        "replay/current": float(len(current)),
    }
    return merge(current, replay, rng), stats
