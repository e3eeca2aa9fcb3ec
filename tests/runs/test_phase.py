"""The pure pieces of a phase: stage graph, step records, returns, task choice, the batching policy."""

from __future__ import annotations

import asyncio

import pytest

from trainer.env.types import Observation, PolicyOutput, StepContext
from trainer.phase import (
    BatchingPolicy,
    PhaseError,
    choose_demo_tasks,
    choose_tasks,
    mc_returns,
    phase_stages,
    step_records,
    success_rates,
)
from trainer.prompts import build_agent_prompt


def test_phase_zero_fine_tunes_then_rolls_out_and_later_phases_follow_the_paper_order():
    assert phase_stages(0, 2) == ("sft", "rollout", "eval", "orm_init", "curriculum")
    assert phase_stages(1, 2) == (
        "rollout", "orm", "replay", "critic", "actor", "eval", "curriculum",
    )  # fmt: skip
    assert "curriculum" not in phase_stages(2, 2)


def test_it_rejects_a_phase_outside_the_run():
    with pytest.raises(PhaseError, match="outside"):
        phase_stages(3, 2)


def test_monte_carlo_returns_discount_the_outcome_backwards():
    assert mc_returns([1.0, 1.0, 1.0], 0.9) == pytest.approx([2.71, 1.9, 1.0])
    assert mc_returns([0.0, 0.0], 0.9) == [0.0, 0.0]


def test_step_records_chain_prompts_and_copy_the_outcome_to_every_step():
    recs = step_records("buy it", ["<p>a</p>", "<p>b</p>"], ["do(x)", "exit()"], 1.0, 0.9)
    assert [r["done"] for r in recs] == [False, True]
    assert recs[0]["observation"] == build_agent_prompt("buy it", [], "<p>a</p>")
    assert recs[0]["next_observation"] == build_agent_prompt("buy it", ["do(x)"], "<p>b</p>")
    # §10: the last step's next observation reuses its own HTML with round T.
    assert recs[1]["next_observation"] == build_agent_prompt(
        "buy it", ["do(x)", "exit()"], "<p>b</p>"
    )
    assert [r["mc_return"] for r in recs] == pytest.approx([1.9, 1.0])
    assert {r["trajectory_reward"] for r in recs} == {1}


def test_step_records_need_one_observation_per_response():
    with pytest.raises(PhaseError, match="one each"):
        step_records("t", ["a"], ["x", "y"], 0.0, 0.9)


def test_task_choice_is_deterministic_and_balanced_across_sites():
    keys = [f"s{i}" for i in range(10)] + [f"m{i}" for i in range(2)]
    sites = ["shop"] * 10 + ["map"] * 2
    first = choose_tasks(keys, sites, 4, seed=3)
    assert first == choose_tasks(keys, sites, 4, seed=3)
    assert sum(k.startswith("m") for k in first) == 2
    assert len(choose_tasks(keys, sites, 50, seed=3)) == 12
    assert choose_tasks(keys, sites, 0, seed=3) == []


def test_demonstrations_cover_every_template_at_least_per_template_times():
    # template 1 has 10 tasks, template 2 has 6, template 3 has 2, and one task has no template
    templates = [1] * 10 + [2] * 6 + [3] * 2 + [None]
    keys = [f"k{i:02d}" for i in range(len(templates))]
    of = dict(zip(keys, templates, strict=True))
    chosen = choose_demo_tasks(keys, templates, 4, per_template=4, seed=-1)
    assert chosen == sorted(chosen) == choose_demo_tasks(keys, templates, 4, 4, -1)
    counts = {t: sum(of[k] == t for k in chosen) for t in (1, 2, 3, None)}
    assert counts == {1: 4, 2: 4, 3: 2, None: 1}  # 11 > n = 4: the quota wins
    topped = choose_demo_tasks(keys, templates, 15, per_template=4, seed=-1)
    assert set(chosen) <= set(topped) and len(topped) == 15
    assert {t: sum(of[k] == t for k in topped) for t in (1, 2)} == {1: 6, 2: 6}  # in turn
    assert len(choose_demo_tasks(keys, templates, 99, 4, -1)) == len(keys)
    assert choose_demo_tasks(keys, templates, 0, 0, -1) == []
    assert choose_demo_tasks(keys, templates, 4, 4, -1) != choose_demo_tasks(
        keys, templates, 4, 4, 7
    )


def _ctx(prompt: str) -> StepContext:
    obs = Observation(html="", url="", title="")
    return StepContext(task={}, intent="t", step=0, prompt=prompt, observation=obs, responses=[])


def test_the_batching_policy_serves_concurrent_slots_with_one_generate_call():
    seen = []

    def generate(prompts, choices):
        seen.append(list(prompts))
        return [PolicyOutput(text=p.upper()) for p in prompts]

    policy = BatchingPolicy(generate, batch_size=4, wait_ms=30)

    async def main():
        return await asyncio.gather(*(policy(_ctx(p)) for p in ["a", "b", "c"]))

    outs = asyncio.run(main())
    assert [o.text for o in outs] == ["A", "B", "C"]
    assert seen == [["a", "b", "c"]]


def test_each_prompt_travels_to_the_generator_with_its_steps_valid_actions():
    seen = []

    def generate(prompts, choices):
        seen.append(list(choices))
        return [PolicyOutput(text=c[0] if c else p) for p, c in zip(prompts, choices, strict=True)]

    policy = BatchingPolicy(generate, batch_size=4, wait_ms=30)
    free, constrained = _ctx("a"), _ctx("b")
    constrained.valid_actions = ['do(action="Scroll Down")', 'exit(message="")']

    async def main():
        return await asyncio.gather(policy(free), policy(constrained))

    outs = asyncio.run(main())
    assert seen == [[None, constrained.valid_actions]]
    assert [o.text for o in outs] == ["a", 'do(action="Scroll Down")']


def test_a_generator_error_reaches_every_waiting_slot():
    def generate(prompts, choices):
        raise RuntimeError("model fell over")

    policy = BatchingPolicy(generate, batch_size=2, wait_ms=1)

    async def main():
        return await asyncio.gather(*(policy(_ctx(p)) for p in "ab"), return_exceptions=True)

    outs = asyncio.run(main())
    assert all(isinstance(o, RuntimeError) for o in outs)


def test_success_rates_count_every_trajectory_in_the_average():
    rates = success_rates([("shop", 1.0), ("shop", 0.0), ("map", None), ("map", 1.0)])
    assert rates == {"map": 50.0, "shop": 50.0, "avg": 50.0}
