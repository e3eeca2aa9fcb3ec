import random

import torch
from torch.testing import assert_close

from tests.trainer.helpers import PAGES, TASKS, WORDS, make_steps, tiny_config
from trainer.learn.critic import Critic, success_label, train_critic
from trainer.learn.data import add_mc_returns
from trainer.prompts import build_agent_prompt


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


# The page tells how the trajectory ends: a toy set a critic can separate, and must.
OUTCOME_MARK = {
    1.0: '<span id="3"> Order placed </span>',
    0.0: '<span id="3"> Payment declined </span>',
}


def marked_steps(n_trajectories: int, seed: int) -> list[dict]:
    """Step records of `make_steps`' tasks whose pages carry OUTCOME_MARK; every other one fails."""
    rng = random.Random(seed)
    records = []
    for i in range(n_trajectories):
        site, template, actions = TASKS[i % len(TASKS)]
        word = rng.choice(WORDS)
        outcome = 1.0 if i % 2 == 0 else 0.0
        html = PAGES[site].replace("</html>", OUTCOME_MARK[outcome] + " </html>")
        intent, acts = template.format(w=word), [a.format(w=word) for a in actions]
        for t, act in enumerate(acts):
            records.append(
                {
                    "observation": build_agent_prompt(intent, acts[:t], html),
                    "next_observation": build_agent_prompt(intent, acts[: t + 1], html),
                    "task": intent,
                    "action": act,
                    "reward": outcome,
                    "done": t == len(acts) - 1,
                    "trajectory_reward": outcome,
                }
            )
    return add_mc_returns(records, 0.9)


def separates(critic: Critic, records: list[dict]) -> bool:
    """Every successful state's V (min of the heads) above every failed state's."""
    values = critic.min_values([r["observation"] for r in records])
    wins = [v for v, r in zip(values, records, strict=True) if r["trajectory_reward"] == 1.0]
    losses = [v for v, r in zip(values, records, strict=True) if r["trajectory_reward"] == 0.0]
    assert wins and losses
    return min(wins) > max(losses)


def test_critic_training_separates_successful_from_failed_states(sft_dir, tmp_path):
    train, held_out = marked_steps(12, seed=0), marked_steps(6, seed=1)
    assert not separates(Critic.load(sft_dir, max_seq_len=256), train)  # not by chance
    config = tiny_config(**{"critic.lr": 1e-3, "critic.epochs": 8})
    critic = Critic.load(
        train_critic(config, train, sft_dir, tmp_path)["model_dir"], max_seq_len=256
    )
    assert separates(critic, train)
    assert separates(critic, held_out)  # states it never saw, of the same kinds
    values = critic.min_values([r["observation"] for r in train])
    for v, r in zip(values, train, strict=True):
        assert (v > 0.5) == (r["trajectory_reward"] == 1.0), (v, r["trajectory_reward"])
