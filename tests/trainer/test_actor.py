"""The actor update learns in the right direction, and its advantages are the ones worked out by hand.

The toy batch: four states, each with one action of a successful one-step trajectory and one of a
failed one (a different kind of action, so that the two never share the words they differ in).
"""

import pytest
import torch

from tests.trainer.helpers import PAGES, tiny_config
from trainer.learn.actor import actor_advantages, score_actions, train_actor
from trainer.learn.critic import Critic
from trainer.learn.data import add_mc_returns, batches, collate, step_examples
from trainer.learn.models import load_causal_lm, load_tokenizer
from trainer.learn.tokenizer import pad_id
from trainer.phase import step_records
from trainer.prompts import build_agent_prompt

# (page, instruction, the successful action, the failed action) at one state each
STATES = [
    ("shop", "Search for tea", 'do(action="Search", argument="tea", element="1")',
     'do(action="Scroll Down")'),
    ("forum", "Open the books forum", 'do(action="Click", element="0")',
     'do(action="Go Backward")'),
    ("map", "Route to paris", 'do(action="Type", argument="paris", element="1")',
     'exit(message="done")'),
    ("shop", "Search for lamps", 'do(action="Search", argument="lamps", element="1")',
     'do(action="Click", element="2")'),
]  # fmt: skip


def toy_batch(failures: bool = True) -> list[dict]:
    """One-step trajectories: the success's next state is its page after the action; a failure's
    next state is its own state (v' = v), so the released advantage of a failure is −0.6 whatever
    the critic says, and the paper's is −V(s) < 0 (a final step: A = r − V(s))."""
    records = []
    for site, intent, good, bad in STATES:
        state = build_agent_prompt(intent, [], PAGES[site])
        for action, outcome in ((good, 1.0), (bad, 0.0)):
            if outcome == 0.0 and not failures:
                continue
            after = build_agent_prompt(intent, [action], PAGES[site]) if outcome else state
            records.append(
                {
                    "observation": state,
                    "next_observation": after,
                    "task": intent,
                    "action": f"# Element: the target\n{action}",
                    "reward": outcome,
                    "done": True,
                    "trajectory_reward": outcome,
                }
            )
    return add_mc_returns(records, 0.9)


def log_pi(model_dir, records) -> list[float]:
    """Σ log π(action tokens | state) per record."""
    tokenizer = load_tokenizer(model_dir)
    examples = step_examples(tokenizer, records, 256)
    collated = [collate(b, pad_id(tokenizer)) for b in batches(examples, 4)]
    return [lp for lp, _ in score_actions(load_causal_lm(model_dir), collated, torch.device("cpu"))]


def one_update(objective, records, sft_dir, critic_dir, out):
    """One optimizer step over the whole batch at lr 1e-4 (weight decay off)."""
    config = tiny_config(
        **{
            "actor.objective": objective,
            "actor.lr": 1e-4,
            "engine.micro_batch": len(records),
            "engine.weight_decay": 0.0,
        }
    )
    advantages = actor_advantages(config, records, Critic.load(critic_dir, max_seq_len=256))
    result = train_actor(config, records, sft_dir, sft_dir, critic_dir, out)
    assert result["done"] and result["steps"] == 1
    return advantages, result["model_dir"]


@pytest.mark.parametrize("objective", ["webrl_released", "webrl_paper"])
def test_an_actor_update_raises_log_pi_of_every_action_with_a_positive_advantage(
    objective, tmp_path, sft_dir, critic_dir
):
    batch = toy_batch()
    advantages, after_dir = one_update(objective, batch, sft_dir, critic_dir, tmp_path / "a")
    before, after = log_pi(sft_dir, batch), log_pi(after_dir, batch)
    success = [r["reward"] == 1.0 for r in batch]
    assert all((a > 0) == s for a, s in zip(advantages, success, strict=True)), advantages
    for i, s in enumerate(success):
        if s:
            assert after[i] > before[i], (i, before[i], after[i])
    # At every state the successful action gains on the failed one.
    for i in range(0, len(batch), 2):
        assert after[i] - after[i + 1] > before[i] - before[i + 1], i


def test_the_paper_objective_lowers_log_pi_of_every_action_with_a_negative_advantage(
    tmp_path, sft_dir, critic_dir
):
    batch = toy_batch()
    advantages, after_dir = one_update("webrl_paper", batch, sft_dir, critic_dir, tmp_path / "a")
    before, after = log_pi(sft_dir, batch), log_pi(after_dir, batch)
    negative = [i for i, a in enumerate(advantages) if a < 0]
    assert len(negative) == len(STATES)
    for i in negative:
        assert after[i] < before[i], (i, before[i], after[i])


def test_the_released_objective_moves_the_policy_only_through_positive_advantages(
    tmp_path, sft_dir, critic_dir
):
    """Its failures (A = −0.6) are masked out: the update on the whole batch leaves every action,
    failures included, where the update on the successes alone does. Nothing is pushed down."""
    whole = toy_batch()
    _, with_failures = one_update("webrl_released", whole, sft_dir, critic_dir, tmp_path / "a")
    _, without = one_update(
        "webrl_released", toy_batch(failures=False), sft_dir, critic_dir, tmp_path / "b"
    )
    before = log_pi(sft_dir, whole)
    a, b = log_pi(with_failures, whole), log_pi(without, whole)
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-3
    assert any(x - y > 0.05 for x, y in zip(a, before, strict=True))  # the update did move


class TableCritic:
    """V(s) read from a table: the advantages below are then arithmetic on known numbers."""

    def __init__(self, table: dict[str, float]):
        self.table = table

    def min_values(self, prompts):
        return [self.table[p] for p in prompts]


def hand_records():
    """A successful 3-step trajectory and a failed 3-step one, with V of every state."""
    success = step_records("Find tea", ["s0", "s1", "s2"], ["a0", "a1", "a2"], 1.0, 0.9)
    failure = step_records("Find ink", ["f0", "f1", "f2"], ["b0", "b1", "b2"], 0.0, 0.9)
    values = {}
    for records, vs in ((success, [0.2, 0.5, 0.7, 0.9]), (failure, [0.3, 0.6, 0.2, 0.1])):
        for t, rec in enumerate(records):
            values[rec["observation"]] = vs[t]
        values[records[-1]["next_observation"]] = vs[3]
    return success + failure, TableCritic(values)


def test_the_papers_advantages_match_a_hand_computation():
    records, critic = hand_records()
    config = tiny_config(**{"actor.objective": "webrl_paper", "actor.lam": 0.5})
    got = actor_advantages(config, records, critic)
    # A_t = λ(r_t + V(s_{t+1}) − V(s_t)) + (1 − λ)(r_T − V(s_t)); r_t = R on the last step only,
    # V after the last step = 0.
    expected = [
        0.5 * (0 + 0.5 - 0.2) + 0.5 * (1 - 0.2),  # 0.55
        0.5 * (0 + 0.7 - 0.5) + 0.5 * (1 - 0.5),  # 0.35
        0.5 * (1 + 0 - 0.7) + 0.5 * (1 - 0.7),  # 0.30
        0.5 * (0 + 0.6 - 0.3) + 0.5 * (0 - 0.3),  # 0.00
        0.5 * (0 + 0.2 - 0.6) + 0.5 * (0 - 0.6),  # −0.50
        0.5 * (0 + 0 - 0.2) + 0.5 * (0 - 0.2),  # −0.20
    ]
    assert got == pytest.approx(expected, abs=1e-6)
    assert got == pytest.approx([0.55, 0.35, 0.30, 0.0, -0.5, -0.2], abs=1e-6)

    config = config.with_overrides(["actor.lam=1.0"])  # the one-step estimate alone
    assert actor_advantages(config, records, critic) == pytest.approx(
        [0.3, 0.2, 0.3, 0.3, -0.4, -0.2], abs=1e-6
    )


def test_the_released_advantages_match_a_hand_computation():
    records, critic = hand_records()
    config = tiny_config(**{"actor.objective": "webrl_released"})
    # A_raw = V(s') − V(s) − 0.05 + reward + mc_return, clamped to ±1, then +1 if >= 0 else −0.6.
    # Success (reward 1, mc_return 2.71, 1.9, 1): A_raw >= 1 on every step.
    # Failure (reward 0, mc_return 0): 0.6 − 0.3 − 0.05 = 0.25; 0.2 − 0.6 − 0.05 = −0.45;
    # 0.1 − 0.2 − 0.05 = −0.15 (s' of the last step is its next prompt, not masked).
    assert [r["mc_return"] for r in records[:3]] == pytest.approx([2.71, 1.9, 1.0])
    assert actor_advantages(config, records, critic) == pytest.approx(
        [1.0, 1.0, 1.0, 1.0, -0.6, -0.6], abs=1e-6
    )
    config = config.with_overrides(["actor.advantage_offset=-0.35"])  # 0.3 − 0.35 < 0 now
    assert actor_advantages(config, records, critic)[3] == pytest.approx(-0.6)
    config = config.with_overrides(["actor.advantage_offset=0.2"])  # 0.1 − 0.2 + 0.2 >= 0
    assert actor_advantages(config, records, critic) == pytest.approx(
        [1.0, 1.0, 1.0, 1.0, -0.6, 1.0], abs=1e-6
    )


def test_a_lone_step_without_a_return_counts_its_reward_as_the_return():
    state, after = "Task Instruction: x\n\nstate", "Task Instruction: x\n\nafter"
    critic = TableCritic({state: 0.99, after: 0.0})
    config = tiny_config(**{"actor.objective": "webrl_released"})
    lone = {"observation": state, "next_observation": after, "action": "a", "reward": 1.0}
    # 0 − 0.99 − 0.05 + 1 + 1 = 0.96 >= 0; without the return it would be −0.04 < 0.
    assert actor_advantages(config, [lone], critic) == [1.0]
    assert actor_advantages(config, [{**lone, "reward": 0.0}], critic) == pytest.approx([-0.6])
