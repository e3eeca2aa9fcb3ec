"""The double-headed critic V(s) of spec §3: an LM body, two MLP heads, value = min of the heads' P(success).

Saved as the body in HF format plus `critic_heads.pt`; initialised from any causal-LM directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModel

from trainer.config import RunConfig
from trainer.learn.data import batches, collate_prompts, tokenize_prompt
from trainer.learn.engine import Engine, OnStep, ShouldStop, fit, latest_checkpoint, shuffled
from trainer.learn.losses import critic_loss
from trainer.learn.models import ModelLoadError, load_tokenizer, model_dir
from trainer.learn.tokenizer import pad_id

HEADS_FILE = "critic_heads.pt"


def _head(d: int, std: float) -> nn.Sequential:
    """Linear(d,d)-ReLU-Linear(d,d)-ReLU-Linear(d,2); the first two N(0, std²) with zero bias (§3.1)."""
    head = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d), nn.ReLU(), nn.Linear(d, 2))
    for layer in (head[0], head[2]):
        nn.init.normal_(layer.weight, mean=0.0, std=std)
        nn.init.zeros_(layer.bias)
    return head


class Critic(nn.Module):
    """Reads only the state prompt; features are the final hidden state at the last non-pad position."""

    def __init__(
        self,
        body: nn.Module,
        tokenizer: Any,
        *,
        head_init_std: float = 0.2,
        max_seq_len: int = 16384,
    ):
        super().__init__()
        self.body = body
        self.tokenizer = tokenizer
        self.max_seq_len = max_seq_len
        d = body.config.hidden_size
        self.head1 = _head(d, head_init_std)
        self.head2 = _head(d, head_init_std)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits of both heads, each [B, 2] (class 1 = the trajectory succeeds)."""
        hidden = self.body(
            input_ids=input_ids, attention_mask=attention_mask
        ).last_hidden_state  # [B, T, d]
        last = attention_mask.sum(-1) - 1  # [B], right padding
        feats = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]  # [B, d]
        feats = feats.to(self.head1[0].weight.dtype)
        return self.head1(feats), self.head2(feats)  # [B, 2], [B, 2]

    def encode(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        ids = [tokenize_prompt(self.tokenizer, p, self.max_seq_len) for p in prompts]
        device = next(self.parameters()).device
        return {k: v.to(device) for k, v in collate_prompts(ids, pad_id(self.tokenizer)).items()}

    @torch.no_grad()
    def values(self, prompts: Sequence[str], batch_size: int = 8) -> list[tuple[float, float]]:
        """Both heads' P(success) per prompt; the curriculum filter checks either, advantages use the min."""
        was_training = self.training
        self.eval()
        out: list[tuple[float, float]] = []
        for chunk in batches(list(prompts), batch_size):
            l1, l2 = self(**self.encode(chunk))
            p1, p2 = l1.float().softmax(-1)[:, 1], l2.float().softmax(-1)[:, 1]  # [B], [B]
            out.extend(zip(p1.tolist(), p2.tolist(), strict=True))
        self.train(was_training)
        return out

    def min_values(self, prompts: Sequence[str], batch_size: int = 8) -> list[float]:
        return [min(p) for p in self.values(prompts, batch_size)]

    def save(self, out_dir: str | Path) -> None:
        out = Path(out_dir)
        self.body.save_pretrained(str(out))
        self.tokenizer.save_pretrained(str(out))
        torch.save(
            {"head1": self.head1.state_dict(), "head2": self.head2.state_dict()}, out / HEADS_FILE
        )

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        head_init_std: float = 0.2,
        max_seq_len: int = 16384,
        seed: int = 0,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> Critic:
        """From a critic directory (body + heads) or any causal-LM directory (body only, fresh heads),
        on `device` in `dtype` (trainer/learn/placement.py picks them for a frozen critic)."""
        p = model_dir(path)
        if not p.is_dir():
            raise ModelLoadError(f"critic directory {str(p)!r} does not exist")
        try:
            body = AutoModel.from_pretrained(str(p), dtype=dtype, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load a model body from {str(p)!r}: {exc}") from exc
        torch.manual_seed(seed)
        critic = cls(body, load_tokenizer(p), head_init_std=head_init_std, max_seq_len=max_seq_len)
        if (p / HEADS_FILE).exists():
            heads = torch.load(p / HEADS_FILE, map_location="cpu", weights_only=True)
            critic.head1.load_state_dict(heads["head1"])
            critic.head2.load_state_dict(heads["head2"])
        return critic.to(device=device, dtype=dtype)


def success_label(rec: dict[str, Any]) -> int:
    """Critic target y = [mc_return > 0] (§3.2); falls back to the trajectory outcome."""
    if "mc_return" in rec:
        return int(rec["mc_return"] > 0)
    return int(rec.get("trajectory_reward", rec.get("reward", 0)) >= 0.5)


def train_critic(
    config: RunConfig,
    records: Sequence[dict[str, Any]],
    init: str | Path,
    out_dir: str | Path,
    *,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """One pass (critic.epochs) over step records: the four-term CE of §3.2 on s and s'."""
    checkpoint = latest_checkpoint(out_dir) if resume else None
    critic = Critic.load(
        checkpoint or init,
        head_init_std=config.critic.head_init_std,
        max_seq_len=config.engine.max_seq_len,
        seed=config.seed,
    )
    items = []
    for epoch in range(config.critic.epochs):
        items.extend(shuffled(list(records), config.seed + epoch))
    micro = batches(items, config.engine.micro_batch)
    engine = Engine(
        config,
        critic,
        lr=config.critic.lr,
        total_steps=-(-len(micro) // config.engine.grad_accum),
        save_model=lambda m, d: getattr(m, "module", m).save(d),
        out_dir=out_dir,
    )
    if checkpoint is not None:
        engine.load_state(checkpoint)

    tokens = [0]  # tokens of the last micro-batch (s and s'), for tokens_per_s

    def loss_fn(batch: Sequence[dict[str, Any]]) -> tuple[torch.Tensor, dict[str, float]]:
        targets = torch.tensor([success_label(r) for r in batch], device=engine.device)  # [B]
        now = critic.encode([r["observation"] for r in batch])
        later = critic.encode([r.get("next_observation") or r["observation"] for r in batch])
        tokens[0] = int(now["attention_mask"].sum() + later["attention_mask"].sum())
        l1, l2 = engine.model(**now)
        nl1, nl2 = engine.model(**later)
        return critic_loss(l1, l2, nl1, nl2, targets)

    return fit(
        engine, micro, loss_fn, on_step=on_step, should_stop=should_stop,
        count_tokens=lambda batch: tokens[0],
    )  # fmt: skip
