"""MiniWoB++ through the same episode interface: utterance as intent, the page's reward as score."""

import asyncio
import random
import re
import time

import pytest

from trainer.env import miniwob
from trainer.env.types import EpisodeLimits, PolicyOutput

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def wob():
    with miniwob.MiniWobServer() as server:
        yield server


def test_the_package_ships_130_tasks():
    names = miniwob.task_names()
    assert len(names) == 130
    assert "click-button" in names and "enter-text" in names


def test_unknown_tasks_are_rejected(wob):
    with pytest.raises(ValueError, match="unknown MiniWoB"):
        miniwob.make_task("click-the-moon", wob.base_url)


def _find(obs, tag, text=None):
    for element_id, e in obs.elements.items():
        if e["tag"] == tag and (text is None or e["text"] == text):
            return element_id
    raise AssertionError(f"no {tag} {text!r} in {obs.elements}")


def test_click_button_is_solved_and_scored_by_the_page(env, wob):
    async def policy(ctx):
        wanted = re.search(r'"(.*)"', ctx.intent).group(1)
        return PolicyOutput(
            f'do(action="Click", element="{_find(ctx.observation, "button", wanted)}")'
        )

    result = env.run(
        env.pool.run_episode(miniwob.make_task("click-button", wob.base_url, seed=3), policy)
    )
    assert result.status == "ok"
    assert result.intent.startswith("Click on the")
    assert result.score == 1.0
    assert result.eval_detail["miniwob"]["done"] is True
    assert result.eval_detail["stop_reason"] == "miniwob episode ended"


def test_enter_text_is_solved_with_type_then_click(env, wob):
    async def policy(ctx):
        if ctx.step == 0:
            wanted = re.search(r'"(.*)"', ctx.intent).group(1)
            return PolicyOutput(
                f'do(action="Type", argument="{wanted}", element="{_find(ctx.observation, "input")}")'
            )
        return PolicyOutput(f'do(action="Click", element="{_find(ctx.observation, "button")}")')

    result = env.run(
        env.pool.run_episode(miniwob.make_task("enter-text", wob.base_url, seed=5), policy)
    )
    assert result.score == 1.0, result.eval_detail
    assert len(result.steps) == 2


def test_a_wrong_answer_scores_zero(env, wob):
    async def policy(ctx):
        return (
            PolicyOutput(
                f'do(action="Type", argument="wrong", element="{_find(ctx.observation, "input")}")'
            )
            if ctx.step == 0
            else PolicyOutput(f'do(action="Click", element="{_find(ctx.observation, "button")}")')
        )

    result = env.run(
        env.pool.run_episode(miniwob.make_task("enter-text", wob.base_url, seed=5), policy)
    )
    assert result.status == "ok"
    assert result.score == 0.0
    assert result.eval_detail["miniwob"]["raw_reward"] == -1


def test_the_same_seed_gives_the_same_utterance(env, wob):
    async def policy(ctx):
        return PolicyOutput('exit(message="")')

    task = miniwob.make_task("click-button", wob.base_url, seed=11)
    first = env.run(env.pool.run_episode(task, policy))
    second = env.run(env.pool.run_episode(task, policy))
    assert first.intent == second.intent
    assert first.score == 0.0  # exited before the page ended the episode
    assert first.eval_detail["miniwob"]["reason"] == "the episode had not ended"


def random_policy(rng: random.Random):
    async def policy(ctx):
        elements = ctx.observation.elements
        ids = list(elements)
        inputs = [i for i in ids if elements[i]["tag"] in ("input", "textarea")]
        selects = [i for i in ids if elements[i]["tag"] == "select"]
        choices = ['do(action="Scroll Down")', 'do(action="Scroll Up")', 'do(action="Press Enter")']
        if ids:
            choices += [f'do(action="Click", element="{rng.choice(ids)}")'] * 4
            choices.append(f'do(action="Hover", element="{rng.choice(ids)}")')
        if inputs:
            choices.append(
                f'do(action="Type", argument="{rng.choice(["cat", "42", "Hello"])}", element="{rng.choice(inputs)}")'
            )
        if selects:
            choices.append(
                f'do(action="Select Dropdown Option", argument="a", element="{rng.choice(selects)}")'
            )
        return PolicyOutput(rng.choice(choices))

    return policy


@pytest.mark.slow
@pytest.mark.timeout(1800)  # about 7 minutes on a busy 2-core machine
def test_random_valid_actions_on_all_130_tasks_end_without_unhandled_errors(env, wob):
    limits = EpisodeLimits(max_steps=5, action_timeout_s=20)
    rng = random.Random(0)

    async def one(name, seed):
        task = miniwob.make_task(name, wob.base_url, seed=seed)
        return name, await env.pool.run_episode(
            task, random_policy(random.Random(seed)), limits=limits
        )

    async def sweep():
        return await asyncio.gather(*(one(n, rng.randrange(1000)) for n in miniwob.task_names()))

    t0 = time.perf_counter()
    results = env.run(sweep(), timeout=1800)
    elapsed = time.perf_counter() - t0
    bad = [(n, r.status, r.error) for n, r in results if r.status != "ok" or r.score is None]
    print(
        f"\n130 MiniWoB++ tasks in {elapsed:.1f} s; steps {sum(len(r.steps) for _, r in results)}"
    )
    assert bad == []
