"""Pure pieces of a WebRL phase: the stage graph, task choice, step records from trajectories (§10),
Monte-Carlo returns (§1.5) and the adapter from a batch generator to the environment's `Policy`.

No Django here: the orchestrator in `apps/runs` and the CLI both call these.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from trainer.env.types import PolicyOutput, StepContext
from trainer.prompts import build_agent_prompt

# §1.2: phase 0 fine-tunes on demonstrations, rolls the SFT policy out on the train tasks (ground
# truth labels those rollouts for the initial ORM), evaluates it, trains the initial ORM (after the
# evaluation, whose test-split failures its held-out figures need) and seeds the curriculum.
PHASE0_STAGES = ("sft", "rollout", "eval", "orm_init", "curriculum")
# §1.3: phase i >= 1. CODE order: critic before actor.
PHASE_STAGES = ("rollout", "orm", "replay", "critic", "actor", "eval", "curriculum")
GPU_STAGES = frozenset({"sft", "orm_init", "orm", "replay", "critic", "actor", "curriculum"})
BROWSER_STAGES = frozenset({"rollout", "eval"})


class PhaseError(ValueError):
    """Bad input to a phase helper; the message says what is wrong."""


def phase_stages(phase_index: int, phases: int) -> tuple[str, ...]:
    """The stages of phase `phase_index` of a run with `phases` RL phases (phase 0 is extra).

    The last phase generates no new tasks: nobody would roll them out.
    """
    if phase_index < 0 or phase_index > phases:
        raise PhaseError(f"phase {phase_index} outside 0..{phases}")
    stages = PHASE0_STAGES if phase_index == 0 else PHASE_STAGES
    if phase_index == phases:
        stages = tuple(s for s in stages if s != "curriculum")
    return stages


def mc_returns(rewards: Sequence[float], gamma: float) -> list[float]:
    """mc_return_t = Σ_{j≥t} γ^{j−t} r_j (§1.5)."""
    out = [0.0] * len(rewards)
    acc = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        acc = rewards[t] + gamma * acc
        out[t] = acc
    return out


def step_records(
    intent: str,
    observations: Sequence[str],
    responses: Sequence[str],
    reward: float,
    gamma: float,
    token_ids: Sequence[Sequence[int] | None] | None = None,
    *,
    variant: str = "webrl",
) -> list[dict[str, Any]]:
    """§10 step dicts of one trajectory: P_t, P_{t+1}, the raw response, the outcome on every step.

    `observations[t]` is the HTML action t was chosen on. The last step's next observation reuses
    its own HTML with round T (§10). `reward` is the trajectory outcome R ∈ {0, 1} (§1.3.4).
    `variant` is the prompt's (`rollout.prompt`, `trainer.prompts.PROMPTS`).
    """
    if len(observations) != len(responses):
        raise PhaseError(
            f"{len(observations)} observations but {len(responses)} responses: one each per step"
        )
    if token_ids is not None and len(token_ids) != len(responses):
        raise PhaseError("token_ids needs one entry (or None) per step")
    n = len(responses)
    returns = mc_returns([float(reward)] * n, gamma)
    records = []
    for t in range(n):
        next_html = observations[t + 1] if t + 1 < n else observations[t]
        rec: dict[str, Any] = {
            "observation": build_agent_prompt(
                intent, responses[:t], observations[t], variant=variant
            ),
            "next_observation": build_agent_prompt(
                intent, responses[: t + 1], next_html, variant=variant
            ),
            "task": intent,
            "action": responses[t],
            "reward": float(reward),
            "done": t == n - 1,
            "trajectory_reward": 1 if reward >= 0.5 else 0,
            "mc_return": returns[t],
        }
        if token_ids is not None and token_ids[t]:
            rec["action_token_ids"] = list(token_ids[t])
        records.append(rec)
    return records


def choose_tasks(keys: Sequence[str], sites: Sequence[str], n: int, seed: int) -> list[str]:
    """Up to `n` task keys, balanced across sites (round robin over seeded shuffles), sorted.

    Deterministic in (keys, sites, n, seed), so a re-run stage picks the same tasks.
    """
    if len(keys) != len(sites):
        raise PhaseError("choose_tasks needs one site per key")
    if n <= 0:
        return []
    rng = random.Random(seed)
    by_site: dict[str, list[str]] = {}
    for key, site in sorted(zip(keys, sites, strict=True)):
        by_site.setdefault(site, []).append(key)
    queues = []
    for site in sorted(by_site):
        items = by_site[site]
        rng.shuffle(items)
        queues.append(items)
    chosen: list[str] = []
    while len(chosen) < n and any(queues):
        for q in queues:
            if q and len(chosen) < n:
                chosen.append(q.pop())
    return sorted(chosen)


def choose_demo_tasks(
    keys: Sequence[str],
    templates: Sequence[object],
    n: int,
    per_template: int,
    seed: int,
) -> list[str]:
    """Phase 0's demonstration tasks: `per_template` seeded-random tasks of every template (all of
    a template's when it has fewer), then one more of each template in turn until there are `n`;
    sorted. A task without a template (None) counts as a template of its own.

    Deterministic in (keys, templates, n, per_template, seed).
    """
    if len(keys) != len(templates):
        raise PhaseError("choose_demo_tasks needs one template per key")
    rng = random.Random(seed)
    groups: dict[str, list[str]] = {}
    for key, template in sorted(zip(keys, templates, strict=True), key=lambda kt: kt[0]):
        group = f"key:{key}" if template is None else f"template:{template}"
        groups.setdefault(group, []).append(key)
    queues = []
    for group in sorted(groups):
        items = groups[group]
        rng.shuffle(items)
        queues.append(items)
    chosen: list[str] = []
    for queue in queues:
        chosen.extend(queue[:per_template])
        del queue[:per_template]
    while len(chosen) < n and any(queues):
        for queue in queues:
            if queue and len(chosen) < n:
                chosen.append(queue.pop(0))
    return sorted(chosen)


def shard_of(index: int, shards: int) -> int:
    return index % max(shards, 1)


class BatchGenerator(Protocol):
    def generate(
        self, prompts: list[str], choices: list[list[str] | None] | None = None
    ) -> list[PolicyOutput]: ...


@dataclass
class _Pending:
    prompt: str
    choices: list[str] | None
    future: asyncio.Future


class BatchingPolicy:
    """A `Policy` for `BrowserPool.run_episode` that batches concurrent slots into one generate call.

    Slots that ask within `wait_ms` of each other share a batch (at most `batch_size`); generation
    runs in a thread so the browser's event loop keeps serving the other contexts. Each prompt
    travels with its step's valid actions (None under free decoding): `generate(prompts, choices)`.
    """

    def __init__(
        self,
        generate: Callable[[list[str], list[list[str] | None]], list[PolicyOutput]],
        batch_size: int = 8,
        wait_ms: float = 20.0,
    ):
        if batch_size < 1:
            raise PhaseError("batch_size must be >= 1")
        self._generate = generate
        self.batch_size = batch_size
        self.wait_s = wait_ms / 1000.0
        self._queue: list[_Pending] = []
        self._flusher: asyncio.Task | None = None
        self.calls = 0

    async def __call__(self, ctx: StepContext) -> PolicyOutput:
        loop = asyncio.get_running_loop()
        item = _Pending(ctx.prompt, ctx.valid_actions, loop.create_future())
        self._queue.append(item)
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return await item.future

    async def _flush(self) -> None:
        while self._queue:
            if len(self._queue) < self.batch_size:
                await asyncio.sleep(self.wait_s)
            batch, self._queue = self._queue[: self.batch_size], self._queue[self.batch_size :]
            self.calls += 1
            try:
                outputs = await asyncio.to_thread(
                    self._generate, [p.prompt for p in batch], [p.choices for p in batch]
                )
                if len(outputs) != len(batch):
                    raise PhaseError(f"generator gave {len(outputs)} outputs for {len(batch)}")
            except Exception as exc:  # every waiting slot learns why, none hangs
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            for p, out in zip(batch, outputs, strict=True):
                if not p.future.done():
                    p.future.set_result(out)


def policy_from_generator(generator: BatchGenerator, batch_size: int = 8) -> BatchingPolicy:
    """The env's `Policy` over `trainer.serve.hf`'s `Generator.generate(prompts)`."""
    return BatchingPolicy(generator.generate, batch_size=batch_size)


def success_rates(rows: Sequence[tuple[str, float | None]]) -> dict[str, float]:
    """Per-site and average success (%) from (site_label, score) rows; Avg counts every row (§8.1)."""
    total = len(rows)
    per: dict[str, list[int]] = {}
    for site, score in rows:
        per.setdefault(site, []).append(1 if score is not None and score >= 1.0 else 0)
    out = {site: 100.0 * sum(v) / len(v) for site, v in sorted(per.items())}
    out["avg"] = 100.0 * sum(sum(v) for v in per.values()) / total if total else 0.0
    return out
