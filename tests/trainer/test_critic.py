import torch
from torch.testing import assert_close

from tests.trainer.helpers import make_steps, tiny_config
from trainer.learn.critic import Critic, success_label, train_critic


def test_heads_have_the_specified_shape_and_init(sft_dir):
    critic = Critic.load(sft_dir, head_init_std=0.2, max_seq_len=256)
    for head in (critic.head1, critic.head2):
        assert [type(m).__name__ for m in head] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
        assert head[4].out_features == 2
        for layer in (head[0], head[2]):
            assert torch.count_nonzero(layer.bias) == 0
            assert 0.15 < layer.weight.std().item() < 0.25
    assert not torch.equal(critic.head1[0].weight, critic.head2[0].weight)


def test_features_come_from_the_last_non_pad_position(sft_dir):
    critic = Critic.load(sft_dir, max_seq_len=256).eval()
    prompts = [s["observation"] for s in make_steps(3)][:3] + ["tiny"]
    batched = critic.values(prompts)
    alone = [critic.values([p])[0] for p in prompts]
    assert_close(torch.tensor(batched), torch.tensor(alone), atol=1e-5, rtol=1e-4)
    assert all(0.0 < p < 1.0 for pair in batched for p in pair)
    assert critic.min_values(prompts) == [min(pair) for pair in batched]


def test_a_saved_critic_loads_with_identical_outputs(critic_dir, tmp_path):
    critic = Critic.load(critic_dir, max_seq_len=256)
    critic.save(tmp_path)
    again = Critic.load(tmp_path, max_seq_len=256)
    prompts = [s["observation"] for s in make_steps(2)]
    assert critic.values(prompts) == again.values(prompts)


def test_training_moves_the_critic_toward_the_outcome_labels(sft_dir, critic_dir, steps):
    fresh = Critic.load(sft_dir, max_seq_len=256)
    trained = Critic.load(critic_dir, max_seq_len=256)
    prompts = [s["observation"] for s in steps]
    labels = torch.tensor([success_label(s) for s in steps], dtype=torch.float32)

    def bce(critic):
        v = torch.tensor(critic.values(prompts)).clamp(1e-6, 1 - 1e-6)  # [N, 2]
        return -(labels[:, None] * v.log() + (1 - labels[:, None]) * (1 - v).log()).mean().item()

    assert bce(trained) < bce(fresh)


def test_the_target_is_whether_the_return_is_positive():
    assert success_label({"mc_return": 1.9}) == 1
    assert success_label({"mc_return": 0.0}) == 0
    assert success_label({"trajectory_reward": 1.0}) == 1


def test_critic_training_reports_its_token_throughput(sft_dir, steps, tmp_path):
    reported = []
    train_critic(tiny_config(), steps, sft_dir, tmp_path / "critic", on_step=reported.append)
    assert reported and all(m["tokens_per_s"] > 0 for m in reported)
