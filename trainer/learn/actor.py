"""The actor update (§1.3.7): advantages from a frozen critic, KL-anchored to the previous phase's policy.

`actor_advantages` gives A per step (the released code's binarised form or the paper's eq. 9);
`train_actor` runs the objective that `actor.objective` names, from `trainer.learn.losses`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from trainer.config import RunConfig
from trainer.learn.data import action_ids_for, batches, collate, mc_returns, tokenize_example
from trainer.learn.engine import (
    Engine,
    OnStep,
    ShouldStop,
    TrainingError,
    fit,
    latest_checkpoint,
    model_saver,
    repeat_epochs,
    resolve_device,
    resolve_dtype,
)
from trainer.learn.losses import (
    ACTOR_OBJECTIVES,
    paper_advantages,
    released_advantages,
    sequence_logprobs,
    sft_loss,
    token_logprobs,
)
from trainer.learn.models import load_causal_lm, load_tokenizer
from trainer.learn.placement import load_frozen_critic
from trainer.learn.sft import train_sft
from trainer.learn.tokenizer import pad_id


@torch.no_grad()
def score_actions(
    model, batches_: Sequence[dict[str, torch.Tensor]], device: torch.device
) -> list[tuple[float, int]]:
    """(Σ action-token log-prob, action-token count) per example, batch by batch, no gradient."""

    was_training = model.training
    model.eval()
    out: list[tuple[float, int]] = []
    for batch in batches_:
        ids, attn, act = (
            batch[k].to(device) for k in ("input_ids", "attention_mask", "action_mask")
        )
        logits = model(input_ids=ids, attention_mask=attn).logits  # [B, T, V]
        lp, n = sequence_logprobs(token_logprobs(logits, ids, act), act)  # [B], [B]
        out.extend(zip(lp.tolist(), [int(x) for x in n.tolist()], strict=True))
    model.train(was_training)
    return out


def actor_advantages(config: RunConfig, records: Sequence[dict[str, Any]], critic) -> list[float]:
    """A per step from a frozen critic: the released code's binarised A (§2.2) or the paper's eq. 9 (§2.1)."""

    a = config.actor
    v = torch.tensor(critic.min_values([r["observation"] for r in records]))  # [N]
    v_next = torch.tensor(
        critic.min_values([r.get("next_observation") or r["observation"] for r in records])
    )
    reward = torch.tensor([float(r.get("reward", 0.0)) for r in records])  # [N]
    if a.objective == "webrl_paper":
        done = torch.tensor([bool(r.get("done", False)) for r in records])  # [N]
        final = torch.tensor(
            [float(r.get("trajectory_reward", r.get("reward", 0.0))) for r in records]
        )
        step_reward = torch.where(
            done, final, torch.zeros_like(final)
        )  # outcome only on the last step
        return paper_advantages(v, v_next, step_reward, final, done, a.lam).tolist()
    mc = [r.get("mc_return") for r in records]
    if any(
        m is None for m in mc
    ):  # a lone step without a return: the outcome discounted over one step
        mc = [
            m if m is not None else mc_returns([float(r.get("reward", 0.0))], a.gamma)[0]
            for m, r in zip(mc, records, strict=True)
        ]
    adv = released_advantages(
        v,
        v_next,
        reward,
        torch.tensor(mc, dtype=torch.float32),
        offset=a.advantage_offset,
        clip=a.advantage_clip,
        positive=a.positive_advantage,
        negative=a.negative_advantage,
    )
    return adv.tolist()


def train_actor(
    config: RunConfig,
    records: Sequence[dict[str, Any]],
    actor_dir: str | Path,
    ref_dir: str | Path | None,
    critic_dir: str | Path | None,
    out_dir: str | Path,
    *,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """One actor update (§1.3.7): advantages from the frozen critic, KL-anchored to π_ref, objective by name."""

    objective = config.actor.objective
    if objective == "sft":
        return train_sft(
            config, records, out_dir, init=actor_dir, on_step=on_step, should_stop=should_stop,
            resume=resume, lr=config.actor.lr, epochs=config.actor.epochs, schedule="constant", warmup_ratio=0.0,
        )  # fmt: skip
    if ref_dir is None or critic_dir is None:
        raise TrainingError(f"actor.objective {objective!r} needs a reference policy and a critic")
    tokenizer = load_tokenizer(actor_dir)
    pad = pad_id(tokenizer)
    L = config.engine.max_seq_len
    examples = [
        tokenize_example(tokenizer, r["observation"], action_ids_for(tokenizer, r), L)
        for r in records
    ]
    critic = load_frozen_critic(config, critic_dir)
    advantages = actor_advantages(config, records, critic)
    del critic
    device = resolve_device(config.engine.device)
    ref = load_causal_lm(
        ref_dir, dtype=resolve_dtype(config.engine.dtype, device), device=str(device)
    )
    ref_scores = score_actions(
        ref, [collate(b, pad) for b in batches(examples, config.engine.micro_batch)], device
    )
    del ref
    rows = list(zip(examples, advantages, [s[0] for s in ref_scores], strict=True))
    micro = batches(
        repeat_epochs(rows, config.actor.epochs, config.seed), config.engine.micro_batch
    )
    checkpoint = latest_checkpoint(out_dir) if resume else None
    engine = Engine(
        config,
        load_causal_lm(checkpoint or actor_dir),
        lr=config.actor.lr,
        total_steps=-(-len(micro) // config.engine.grad_accum),
        save_model=model_saver(tokenizer),
        out_dir=out_dir,
    )
    if checkpoint is not None:
        engine.load_state(checkpoint)
    a = config.actor
    loss_args: dict[str, Any] = (
        {"beta": a.beta}
        if objective == "webrl_paper"
        else {
            "beta_base": a.beta_base,
            "beta_high": a.beta_high,
            "ref_conf_positive": a.ref_conf_positive,
            "ref_conf_negative": a.ref_conf_negative,
            "huber_delta": a.huber_delta,
        }
    )

    def loss_fn(chunk: Sequence[tuple[Any, float, float]]) -> tuple[torch.Tensor, dict[str, float]]:
        batch = {k: v.to(engine.device) for k, v in collate([c[0] for c in chunk], pad).items()}
        logits = engine.model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).logits
        token_lp = token_logprobs(logits, batch["input_ids"], batch["action_mask"])  # [B, T-1]
        logprobs, n_tokens = sequence_logprobs(token_lp, batch["action_mask"])  # [B], [B]
        adv = torch.tensor([c[1] for c in chunk], device=engine.device)  # [B]
        ref_lp = torch.tensor([c[2] for c in chunk], device=engine.device)  # [B]
        loss, metrics = ACTOR_OBJECTIVES[objective](logprobs, ref_lp, adv, n_tokens, **loss_args)
        metrics["loss/nll"] = sft_loss(token_lp.detach(), batch["action_mask"])[0].item()
        return loss, metrics

    def count(chunk: Sequence[tuple[Any, float, float]]) -> int:
        return sum(len(c[0].input_ids) for c in chunk)

    return fit(engine, micro, loss_fn, on_step=on_step, should_stop=should_stop, count_tokens=count)
