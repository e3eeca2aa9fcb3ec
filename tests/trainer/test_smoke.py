"""A tiny policy does a few SFT steps then one actor update per objective: every parameter moves, losses stay finite."""

import math

import pytest
import torch

from tests.trainer.helpers import make_steps, tiny_config
from trainer.learn.actor import train_actor
from trainer.learn.models import load_causal_lm
from trainer.learn.sft import train_sft


def _changed(before_dir, after_dir):
    before, after = load_causal_lm(before_dir), load_causal_lm(after_dir)
    return {
        name: not torch.equal(p, q)
        for (name, p), q in zip(before.named_parameters(), after.parameters(), strict=True)
        if p.requires_grad
    }


# Weight decay off: a parameter can then only move through its gradient.
NO_DECAY = {"engine.weight_decay": 0.0}


def test_sft_steps_lower_the_loss_and_move_every_parameter(tmp_path, steps, sft_dir):
    config = tiny_config(**{"sft.epochs": 3, **NO_DECAY})
    metrics = []
    result = train_sft(config, steps, tmp_path / "sft", init=sft_dir, on_step=metrics.append)
    assert result["done"] and all(math.isfinite(m["loss"]) for m in metrics)
    assert metrics[-1]["loss"] < metrics[0]["loss"]
    changed = _changed(sft_dir, result["model_dir"])
    assert changed and all(changed.values()), [n for n, c in changed.items() if not c]


def test_a_prompt_weight_adds_the_prompt_loss_and_lowers_it(tmp_path, steps, sft_dir):
    metrics = []
    config = tiny_config(**{"sft.epochs": 3, "sft.prompt_weight": 0.5})
    result = train_sft(config, steps, tmp_path / "sft", init=sft_dir, on_step=metrics.append)
    assert result["done"] and all(m["prompt_tokens"] > m["tokens"] for m in metrics)
    assert metrics[-1]["loss/prompt"] < metrics[0]["loss/prompt"]
    for m in metrics:  # the step's loss is the action loss plus half the prompt loss
        assert m["loss"] == pytest.approx(m["loss/sft"] + 0.5 * m["loss/prompt"], rel=1e-4)
    plain = []
    train_sft(tiny_config(), steps, tmp_path / "plain", init=sft_dir, on_step=plain.append)
    assert all("loss/prompt" not in m for m in plain)


@pytest.mark.parametrize("objective", ["webrl_released", "webrl_paper", "sft"])
def test_one_actor_update_moves_every_trainable_parameter(
    tmp_path, steps, sft_dir, critic_dir, objective
):
    config = tiny_config(**{"actor.objective": objective, "actor.lr": 1e-3, **NO_DECAY})
    metrics = []
    result = train_actor(
        config, steps, sft_dir, sft_dir, critic_dir, tmp_path / "actor", on_step=metrics.append
    )
    assert result["done"] and metrics
    assert all(math.isfinite(v) for m in metrics for v in m.values() if isinstance(v, float))
    changed = _changed(sft_dir, result["model_dir"])
    assert changed and all(changed.values()), [n for n, c in changed.items() if not c]


def test_the_released_objective_learns_nothing_from_failures_alone(tmp_path, sft_dir, critic_dir):
    failures = make_steps(6, success_every=1)
    assert all(s["reward"] == 0 for s in failures)
    # offset -5: every failed step's advantage is negative whatever the critic says
    config = tiny_config(
        **{"actor.objective": "webrl_released", "actor.advantage_offset": -5.0, **NO_DECAY}
    )
    metrics = []
    result = train_actor(
        config, failures, sft_dir, sft_dir, critic_dir, tmp_path / "a", on_step=metrics.append
    )
    assert metrics and all(
        m["loss/actor"] == 0.0 and m["actor/kept_fraction"] == 0.0 for m in metrics
    )
    assert not any(_changed(sft_dir, result["model_dir"]).values())
