"""Frozen models (the critic, the replay scorer) run where the policy trains, in the engine's dtype
(trainer/learn/placement.py). The CUDA cases are marked gpu; the decision itself is checked everywhere."""

import pytest
import torch

from tests.trainer.helpers import make_steps, tiny_config
from trainer.config import preset
from trainer.learn.actor import train_actor
from trainer.learn.critic import Critic
from trainer.learn.engine import TrainingError
from trainer.learn.placement import frozen_placement, load_frozen_critic, place

CUDA = {"engine.device": "cuda", "engine.dtype": "bfloat16"}


def tensors_of(critic: Critic) -> list[torch.Tensor]:
    return [*critic.parameters(), *critic.buffers()]


def test_a_gpu_config_puts_frozen_models_on_cuda_in_bf16_and_a_cpu_config_on_the_cpu_in_fp32():
    paper = preset("paper-llama8b")  # engine.device and engine.dtype "auto"
    assert frozen_placement(paper, cuda_available=True) == (torch.device("cuda"), torch.bfloat16)
    assert frozen_placement(paper, cuda_available=False) == (torch.device("cpu"), torch.float32)
    demo = preset("demo-cpu")
    assert frozen_placement(demo, cuda_available=True) == (torch.device("cpu"), torch.float32)
    pinned = paper.with_overrides(["engine.device=cuda", "engine.dtype=float32"])
    assert frozen_placement(pinned, cuda_available=True) == (torch.device("cuda"), torch.float32)
    with pytest.raises(TrainingError, match="no CUDA device"):
        frozen_placement(pinned, cuda_available=False)


def test_placing_a_critic_moves_its_body_and_both_heads(sft_dir):
    critic = Critic.load(sft_dir, max_seq_len=256)
    place(critic, "meta", torch.bfloat16)
    floats = [t for t in tensors_of(critic) if t.is_floating_point()]
    assert all(t.device.type == "meta" for t in tensors_of(critic))
    assert floats and all(t.dtype == torch.bfloat16 for t in floats)
    assert not critic.training
    loaded = Critic.load(sft_dir, max_seq_len=256, device="meta", dtype=torch.bfloat16)
    assert {t.device.type for t in tensors_of(loaded)} == {"meta"}
    assert {p.dtype for p in loaded.head1.parameters()} == {torch.bfloat16}


def test_on_a_cpu_config_the_frozen_critic_scores_as_the_plain_load_does(critic_dir):
    prompts = [s["observation"] for s in make_steps(2)]
    frozen = load_frozen_critic(tiny_config(), critic_dir)
    assert {t.device.type for t in tensors_of(frozen)} == {"cpu"}
    plain = Critic.load(critic_dir, max_seq_len=256)
    assert frozen.values(prompts) == plain.values(prompts)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_run_loads_the_critic_onto_the_gpu_in_bf16(critic_dir):
    critic = load_frozen_critic(tiny_config(**CUDA), critic_dir)
    assert {t.device.type for t in tensors_of(critic)} == {"cuda"}
    floats = {t.dtype for t in tensors_of(critic) if t.is_floating_point()}
    assert floats == {torch.bfloat16}
    values = critic.values([s["observation"] for s in make_steps(2)])
    assert all(0.0 <= p <= 1.0 for pair in values for p in pair)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_actor_update_on_cuda_computes_advantages_with_the_critic_on_the_gpu(
    tmp_path, steps, sft_dir, critic_dir, monkeypatch
):
    seen = []
    original = Critic.min_values

    def recording(self, prompts, batch_size=8):
        seen.append({(t.device.type, t.dtype) for t in self.parameters()})
        return original(self, prompts, batch_size)

    monkeypatch.setattr(Critic, "min_values", recording)
    out = train_actor(tiny_config(**CUDA), steps, sft_dir, sft_dir, critic_dir, tmp_path / "a")
    assert out["done"] and seen
    assert all(kinds == {("cuda", torch.bfloat16)} for kinds in seen), seen
