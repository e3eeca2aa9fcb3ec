"""WebRL's objectives as pure functions returning (loss, metrics); the training loop owns backward/step.

Shapes: B = batch, T = sequence length, V = vocabulary. Citations are to webrl-spec.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

Metrics = dict[str, float]


def token_logprobs(
    logits: torch.Tensor, input_ids: torch.Tensor, action_mask: torch.Tensor
) -> torch.Tensor:
    """log π(token) for every action token, 0 elsewhere; logits[:, t] predicts input_ids[:, t+1]. [B, T-1]"""
    targets = input_ids[:, 1:]  # [B, T-1]
    mask = action_mask[:, 1:].bool()  # [B, T-1]
    out = torch.zeros(targets.shape, dtype=torch.float32, device=logits.device)  # [B, T-1]
    if mask.any():
        picked = logits[:, :-1][mask].float()  # [N, V], only the action positions
        lp = picked.log_softmax(-1).gather(-1, targets[mask].unsqueeze(-1)).squeeze(-1)  # [N]
        out = out.masked_scatter(mask, lp)
    return out


def sequence_logprobs(
    token_lp: torch.Tensor, action_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(Σ action-token log-probs, action-token count) per sequence, each [B] (§2.2 step 1)."""
    mask = action_mask[:, 1:].to(token_lp.dtype)  # [B, T-1]
    return (token_lp * mask).sum(-1), mask.sum(-1)  # [B], [B]


def sft_loss(token_lp: torch.Tensor, action_mask: torch.Tensor) -> tuple[torch.Tensor, Metrics]:
    """Token-mean negative log-likelihood over action tokens (§1.6 SFT); an empty mask gives 0."""
    mask = action_mask[:, 1:].to(token_lp.dtype)  # [B, T-1]
    n = mask.sum()
    loss = -(token_lp * mask).sum() / n.clamp(min=1.0)
    return loss, {"loss/sft": loss.item(), "tokens": n.item()}


def prompt_lm_loss(
    logits: torch.Tensor,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    action_mask: torch.Tensor,
) -> tuple[torch.Tensor, Metrics]:
    """Token-mean next-token NLL over the prompt's tokens (not §1.6: `sft.prompt_weight`).

    A target counts when it is a real token (attention 1) outside the action; 0 when there is none.
    """
    mask = attention_mask[:, 1:].bool() & ~action_mask[:, 1:].bool()  # [B, T-1]
    if not mask.any():
        zero = logits.sum() * 0.0
        return zero, {"loss/prompt": 0.0, "prompt_tokens": 0.0}
    picked = logits[:, :-1][mask].float()  # [N, V]
    loss = F.cross_entropy(picked, input_ids[:, 1:][mask])
    return loss, {"loss/prompt": loss.item(), "prompt_tokens": float(mask.sum().item())}


def paper_advantages(
    values: torch.Tensor,
    next_values: torch.Tensor,
    step_rewards: torch.Tensor,
    final_rewards: torch.Tensor,
    dones: torch.Tensor,
    lam: float,
) -> torch.Tensor:
    """Eq. 9 (§2.1): A = λ(r_t + V(s_{t+1}) − V(s_t)) + (1−λ)(r_T − V(s_t)); all [B].

    r_t is the outcome on the final step and 0 before it; V(s_{T+1}) = 0 after the final step.
    """
    next_v = next_values * (1.0 - dones.float())  # [B]
    one_step = step_rewards + next_v - values  # [B]
    final_step = final_rewards - values  # [B]
    return lam * one_step + (1.0 - lam) * final_step  # [B]


def webrl_paper(
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    n_tokens: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, Metrics]:
    """§2.1: mean over samples of (β·log(π_θ/π_ref) − A)², sequence-level log-probs, all inputs [B].

    Samples without action tokens are left out; if none remain the loss is 0.
    """
    valid = (n_tokens > 0).float()  # [B]
    log_ratio = logprobs - ref_logprobs.detach()  # [B]
    sq = (beta * log_ratio - advantages.detach()) ** 2  # [B]
    loss = (sq * valid).sum() / valid.sum().clamp(min=1.0)
    return loss, {
        "loss/actor": loss.item(),
        "actor/log_ratio": _masked_mean(log_ratio.detach(), valid),
        "actor/advantage": _masked_mean(advantages.detach(), valid),
    }


def released_advantages(
    values: torch.Tensor,
    next_values: torch.Tensor,
    rewards: torch.Tensor,
    mc_returns: torch.Tensor,
    *,
    offset: float,
    clip: float,
    positive: float,
    negative: float,
) -> torch.Tensor:
    """§2.2 step 2: A_raw = v' − v + offset + reward + mc_return, clamped, binarised to {+1, −0.6}. [B]"""
    raw = (next_values - values + offset + rewards + mc_returns).clamp(-clip, clip)  # [B]
    return torch.where(raw >= 0, positive, negative).to(values.dtype)  # [B]


def webrl_released(
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    n_tokens: torch.Tensor,
    *,
    beta_base: float = 1.0,
    beta_high: float = 5.0,
    ref_conf_positive: float = 0.8,
    ref_conf_negative: float = 0.9,
    huber_delta: float = 1.0,
) -> tuple[torch.Tensor, Metrics]:
    """The released code's actor loss, §2.2 steps 3–8; inputs [B] (sequence log-probs, token counts)."""
    A = advantages.detach()  # [B]
    ref = ref_logprobs.detach()  # [B]
    n = n_tokens.clamp(min=1.0)  # [B]
    ref_prob = torch.exp(ref / n)  # [B] step 3: geometric-mean token probability
    confident = ((A >= 0) & (ref_prob >= ref_conf_positive)) | (
        (A < 0) & (ref_prob < ref_conf_negative)
    )
    beta0 = torch.where(confident, beta_high, beta_base).to(logprobs.dtype)  # [B] step 4
    mask = ((A > 0) & (n_tokens > 0)).to(logprobs.dtype)  # [B] step 5
    N = (n_tokens * mask).sum().clamp(min=1.0)  # step 6: action tokens of the kept samples
    r = (logprobs - ref) / N  # [B] step 6
    r_d = r.detach()
    cap = torch.where(r_d != 0, (A / r_d).abs(), torch.full_like(r_d, float("inf")))  # [B]
    beta = torch.minimum(beta0, cap)  # [B] step 7, a constant for the gradient
    huber = F.smooth_l1_loss(beta * r, A, reduction="none", beta=huber_delta)  # [B] step 8
    loss = (mask * huber / beta).mean()
    return loss, {
        "loss/actor": loss.item(),
        "actor/kept_fraction": mask.mean().item(),
        "actor/beta": _masked_mean(beta, mask),
        "actor/ratio": _masked_mean(r_d, mask),
        "actor/ref_prob": ref_prob.mean().item(),
    }


def critic_loss(
    logits1: torch.Tensor,
    logits2: torch.Tensor,
    next_logits1: torch.Tensor,
    next_logits2: torch.Tensor,
    targets: torch.Tensor,
) -> tuple[torch.Tensor, Metrics]:
    """§3.2: CE(h1(s),y) + CE(h2(s),y) + CE(h1(s'),y) + CE(h2(s'),y); logits [B, 2] (raw, one softmax), y [B]."""
    terms = [
        F.cross_entropy(lg.float(), targets)
        for lg in (logits1, logits2, next_logits1, next_logits2)
    ]
    loss = terms[0] + terms[1] + terms[2] + terms[3]
    value = torch.minimum(logits1.softmax(-1)[:, 1], logits2.softmax(-1)[:, 1]).detach()  # [B]
    accuracy = ((value >= 0.5).long() == targets).float().mean()
    return loss, {
        "loss/critic": loss.item(),
        "critic/accuracy": accuracy.item(),
        "critic/value": value.mean().item(),
    }


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> float:
    total = mask.sum()
    return 0.0 if total.item() == 0 else ((x * mask).sum() / total).item()


ACTOR_OBJECTIVES = {"webrl_paper": webrl_paper, "webrl_released": webrl_released}
