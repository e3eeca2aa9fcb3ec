"""Session-wide tiny models (trained once, a few seconds) shared by the trainer tests."""

from __future__ import annotations

import pytest
import torch

from tests.trainer.helpers import make_steps, tiny_config
from trainer.learn.critic import train_critic
from trainer.learn.sft import train_sft

# One thread: tiny models gain nothing from two, and two OpenMP threads on a busy 2-core machine
# stall each other (measured: 5 s vs 0.2 s per step while other suites run).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def steps():
    return make_steps(8)


@pytest.fixture(scope="session")
def sft_dir(tmp_path_factory, steps):
    out = tmp_path_factory.mktemp("sft")
    result = train_sft(tiny_config(), steps, out)
    return result["model_dir"]


@pytest.fixture(scope="session")
def critic_dir(tmp_path_factory, steps, sft_dir):
    out = tmp_path_factory.mktemp("critic")
    return train_critic(tiny_config(), steps, sft_dir, out)["model_dir"]
