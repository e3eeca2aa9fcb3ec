"""Small step files and tiny configs for the trainer tests (no downloads, runs in seconds on 2 cores)."""

from __future__ import annotations

import random
from typing import Any

from trainer.config import RunConfig, preset
from trainer.learn.data import add_mc_returns
from trainer.prompts import build_agent_prompt

PAGES = {
    "shop": '<html> <a id="0" data-bbox="10,10,50,20"> Home </a> <input id="1" type="text" placeholder="Search"> </input> <button id="2"> Go </button> </html>',
    "forum": '<html> <a id="0"> Forums </a> <a id="1"> Submit </a> <span id="2" data-text="Top"> Top </span> </html>',
    "map": '<html> <input id="0" placeholder="From"> </input> <input id="1" placeholder="To"> </input> <button id="2"> Route </button> </html>',
}
TASKS = [
    (
        "shop",
        "Search for {w}",
        ['do(action="Search", argument="{w}", element="1")', 'exit(message="done")'],
    ),
    ("forum", "Open the {w} forum", ['do(action="Click", element="0")', 'exit(message="{w}")']),
    (
        "map",
        "Route to {w}",
        ['do(action="Type", argument="{w}", element="1")', 'do(action="Click", element="2")'],
    ),
]
WORDS = ["shoes", "lamps", "books", "tea", "chairs", "maps", "paris", "boston"]


def tiny_config(**overrides: Any) -> RunConfig:
    """demo-cpu shrunk to a 2-layer, 64-wide model and 256-token sequences."""
    base = preset("demo-cpu").with_overrides(
        [
            "model.hidden_size=64",
            "model.intermediate_size=128",
            "model.num_layers=2",
            "model.num_heads=4",
            "model.vocab_size=400",
            "engine.max_seq_len=256",
            "engine.micro_batch=4",
            "engine.grad_accum=1",
            "sft.epochs=1",
            # the released prompt and free decoding, as demo-cpu had them; the two switches have
            # tests of their own (tests/trainer/test_constrained.py, tests/env/test_prompts.py)
            "rollout.prompt=webrl",
            "rollout.decoding=free",
        ]
    )
    return base.with_overrides([f"{k}={v}" for k, v in overrides.items()])


def make_steps(
    n_trajectories: int = 8, seed: int = 0, success_every: int = 2
) -> list[dict[str, Any]]:
    """Step records of §10 for short oracle-like trajectories; every `success_every`-th one fails."""
    rng = random.Random(seed)
    records = []
    for i in range(n_trajectories):
        site, template, actions = TASKS[i % len(TASKS)]
        word = rng.choice(WORDS)
        intent = template.format(w=word)
        acts = [a.format(w=word) for a in actions]
        outcome = 0.0 if success_every and i % success_every == success_every - 1 else 1.0
        html = PAGES[site]
        for t, act in enumerate(acts):
            done = t == len(acts) - 1
            obs = build_agent_prompt(intent, acts[:t], html)
            nxt = build_agent_prompt(intent, acts[: t + 1], html)
            records.append(
                {
                    "observation": obs,
                    "next_observation": nxt,
                    "task": intent,
                    "action": f"# Element: the target\n{act}",
                    "reward": outcome,
                    "done": done,
                    "trajectory_reward": outcome,
                }
            )
    return add_mc_returns(records, 0.9)
