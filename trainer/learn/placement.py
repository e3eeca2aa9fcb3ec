"""Where frozen models run: the critic (actor advantages, the curriculum's filter) and the replay
scorer go where the policy trains, in the engine's dtype, never left on the CPU in fp32 by default.
"""

from __future__ import annotations

from pathlib import Path

import torch

from trainer.config import RunConfig
from trainer.learn.engine import resolve_device, resolve_dtype


def frozen_placement(
    config: RunConfig, cuda_available: bool | None = None
) -> tuple[torch.device, torch.dtype]:
    """(device, dtype) for a model that is only read: the engine's, as the policy gets them."""
    device = resolve_device(config.engine.device, cuda_available)
    return device, resolve_dtype(config.engine.dtype, device)


def place(module: torch.nn.Module, device: torch.device | str, dtype: torch.dtype):
    """Every parameter and buffer of `module` (a critic's body and both heads) on `device`, floating
    point ones in `dtype`; in eval mode."""
    return module.to(device=device, dtype=dtype).eval()


def load_frozen_critic(config: RunConfig, path: str | Path):
    """A trained critic, loaded straight into the engine's dtype on the engine's device."""
    from trainer.learn.critic import Critic

    device, dtype = frozen_placement(config)
    critic = Critic.load(path, max_seq_len=config.engine.max_seq_len, device=device, dtype=dtype)
    return place(critic, device, dtype)
