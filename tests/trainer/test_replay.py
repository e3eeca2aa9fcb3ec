import math
import random

import torch

from tests.trainer.helpers import make_steps, tiny_config
from trainer.learn.models import load_causal_lm, load_tokenizer
from trainer.learn.replay import (
    action_confidences,
    build_phase_data,
    in_band,
    merge,
    select_replay,
    successful_steps,
)
from trainer.learn.tokenizer import encode_prompt, encode_text


def test_the_band_excludes_half_and_includes_point_ninety_five():
    assert not in_band(0.5)
    assert in_band(0.5000001)
    assert in_band(0.95)
    assert not in_band(0.9500001)


def test_selection_keeps_only_in_band_steps():
    cands = [{"observation": str(i), "action": "a"} for i in range(5)]
    kept = select_replay(
        cands,
        [0.5, 0.95, 0.7, 0.96, 0.2],
        10,
        low=0.5,
        high=0.95,
        cap_ratio=2.0,
        rng=random.Random(0),
    )
    assert sorted(k["observation"] for k in kept) == ["1", "2"]
    assert sorted(k["rank_score"] for k in kept) == [0.7, 0.95]


def test_selection_is_capped_at_twice_the_current_steps():
    cands = [{"observation": str(i), "action": "a"} for i in range(10)]
    kept = select_replay(
        cands, [0.8] * 10, 3, low=0.5, high=0.95, cap_ratio=2.0, rng=random.Random(0)
    )
    assert len(kept) == 6


def test_only_the_first_successful_trajectory_per_task_is_a_candidate():
    def traj(task, outcome, n=2):
        return [
            {
                "observation": f"{task}{t}",
                "action": "a",
                "task": task,
                "trajectory_reward": outcome,
                "done": t == n - 1,
            }
            for t in range(n)
        ]

    past = traj("A", 1.0) + traj("A", 1.0, 3) + traj("B", 0.0) + traj("C", 1.0)
    steps = successful_steps(past)
    assert [s["observation"] for s in steps] == ["A0", "A1", "C0", "C1"]


def test_merge_keeps_every_current_step_and_shuffles_with_the_seed():
    current = [{"observation": f"c{i}", "action": "a"} for i in range(5)]
    replay = [{"observation": f"r{i}", "action": "a"} for i in range(3)]
    one = merge(current, replay, random.Random(1))
    assert sorted(s["observation"] for s in one) == sorted(
        s["observation"] for s in current + replay
    )
    assert one == merge(current, replay, random.Random(1))


def test_confidence_is_the_geometric_mean_action_probability_without_eot(sft_dir):
    model, tok = load_causal_lm(sft_dir), load_tokenizer(sft_dir)
    step = make_steps(1)[0]
    (conf,) = action_confidences(model, tok, [step], max_seq_len=256)
    prompt, action = encode_prompt(tok, step["observation"]), encode_text(tok, step["action"])
    ids = torch.tensor([prompt + action])
    with torch.no_grad():
        lp = model(input_ids=ids).logits[0].log_softmax(-1)
    total = sum(lp[len(prompt) - 1 + i, a].item() for i, a in enumerate(action))
    assert math.isclose(conf, math.exp(total / len(action)), rel_tol=1e-4)


def test_phase_data_merges_current_steps_with_in_band_past_successes(sft_dir):
    config = tiny_config(**{"replay.conf_low": 0.0, "replay.conf_high": 1.0})
    current = make_steps(2, seed=5)
    past = make_steps(6, seed=1)
    merged, stats = build_phase_data(config, current, past, sft_dir)
    assert stats["replay/kept"] == min(stats["replay/in_band"], 2 * len(current))
    assert stats["replay/in_band"] == stats["replay/candidates"] > 0
    assert len(merged) == len(current) + stats["replay/kept"]
    assert all(s in merged for s in current)
