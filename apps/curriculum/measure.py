"""Measure a demo-sized curriculum round (issue #6 item 7): roll a policy out on world train tasks,
seed a round with its failures, then report each filter's pass share, the policy's (and the
oracle's) success on kept tasks, their diversity, and the ORM's accuracy against ground truth."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections import Counter
from typing import Any

import torch
from django.conf import settings
from django.contrib.auth import get_user_model

from apps.curriculum.models import Task
from apps.curriculum.round import FILTERS, run_curriculum_round
from apps.rollouts.models import Trajectory
from apps.runs.models import Phase, Run
from trainer.config import RunConfig, preset
from trainer.curriculum.embed import normalize_intent
from trainer.env.types import EpisodeLimits

LIMITS = EpisodeLimits(max_steps=6, screenshots=False, settle_ms=500, episode_timeout_s=90)
MAX_NEW_TOKENS = 24  # the demo actor's actions are short; this bounds CPU time per step


async def _episodes(
    world_url: str, tasks: list[Task], policy_for, chromium: str, limits: EpisodeLimits
) -> list[Any]:
    from asgiref.sync import sync_to_async

    from apps.runs import leases
    from sandbox.client import WorldClient

    with WorldClient(world_url) as world:
        held = await sync_to_async(leases.wait_for)(
            world_url, world.instances(), 1, run_id=None, holder="curriculum_measure",
            wait_s=settings.WORLD_LEASE_WAIT_S,
        )  # fmt: skip
        if not held:
            raise RuntimeError("no free world instance (every one is leased by a run)")
        lease = held[0]
        urls = world.site_urls(lease.instance)
        storage, origins = (
            world.storage_state(lease.instance),
            world.allowed_origins(lease.instance),
        )
        try:
            results = await _leased_episodes(
                world, lease, tasks, policy_for, chromium, limits, urls, storage, origins
            )
        finally:
            await sync_to_async(leases.release)(held)
    return results


async def _leased_episodes(
    world, lease, tasks, policy_for, chromium, limits, urls, storage, origins
) -> list[Any]:
    from asgiref.sync import sync_to_async

    from apps.runs import leases
    from trainer.env.pool import BrowserPool
    from trainer.env.webarena import resolve_placeholders

    results = []
    async with BrowserPool(contexts=1, executable_path=chromium) as pool:
        for task in tasks:
            await sync_to_async(leases.reset)(world, lease)
            config = resolve_placeholders(task.config, urls)
            result = await pool.run_episode(
                config, policy_for(config), limits=limits,
                allowed_origins=origins, storage_state=storage,
            )  # fmt: skip
            results.append(result)
    return results


def rollouts(
    world_url: str, tasks: list[Task], policy_for, chromium: str, view: str = "webrl",
    prompt: str = "webrl", decoding: str = "free", arguments: str = "spans",
    block_noop_repeats: bool = False, answer_questions: bool = False,
) -> list[Any]:  # fmt: skip
    limits = dataclasses.replace(LIMITS, view=view, prompt=prompt, decoding=decoding,
                                 arguments=arguments, block_noop_repeats=block_noop_repeats,
                                 answer_questions=answer_questions)  # fmt: skip
    return asyncio.run(_episodes(world_url, tasks, policy_for, chromium, limits))


def orm_accuracy(orm_dir: str, tasks: list[Task], results: list[Any], cfg: RunConfig) -> dict:
    """[P(YES) >= 0.5] of the ORM (§4) against the ground-truth score, over episodes with one; its
    prompts built and cut under `cfg` as in training."""
    from trainer.learn.orm import classification_metrics, orm_scores, orm_seq_len
    from trainer.prompts import build_orm_prompt

    prompts, labels = [], []
    for task, result in zip(tasks, results, strict=True):
        if result.score is None:
            continue
        responses = [s.response for s in result.steps]
        prompts.append(
            build_orm_prompt(
                task.intent,
                responses,
                result.last_html,
                variant=cfg.rollout.prompt,
                checks=cfg.orm.checks,
            )
        )
        labels.append(result.score >= 1.0)
    if not prompts:
        return {"n": 0}
    probs = orm_scores(orm_dir, prompts, max_seq_len=orm_seq_len(cfg), device="cpu")
    return {"n": len(prompts), "positives": sum(labels), **classification_metrics(probs, labels)}


def _rate(results: list[Any]) -> float | None:
    scored = [r.score for r in results if r.score is not None]
    return round(sum(s >= 1.0 for s in scored) / len(scored), 3) if scored else None


def measure(
    *,
    actor: str,
    critic: str | None,
    orm: str | None,
    seeds: int,
    cap: int,
    world_url: str,
    chromium: str,
    seed: int = 0,
) -> dict:
    from sandbox.oracle import oracle_policy
    from trainer.learn.placement import load_frozen_critic
    from trainer.phase import policy_from_generator
    from trainer.serve.hf import HFGenerator
    from trainer.serve.sampling import Decoding

    config = preset("demo-cpu").with_overrides(
        [f"curriculum.tasks_per_phase={cap}", "curriculum.approval=auto", f"seed={seed}"]
    )
    cfg: RunConfig = config
    view = cfg.rollout.observation
    owner, _ = get_user_model().objects.get_or_create(username="curriculum-measure")
    run = Run.objects.create(owner=owner, name=f"curriculum measure {time.time():.0f}",
                             config=cfg.to_dict(), status=Run.Status.SUCCEEDED)  # fmt: skip
    phase = Phase.objects.create(run=run, index=1)
    train = list(Task.objects.filter(world="sandbox", split="train", status="approved"))
    if not train:
        raise RuntimeError("no world train tasks: run `manage.py load_world_tasks` first")
    picked = random.Random(seed).sample(train, min(seeds, len(train)))

    torch.set_num_threads(1)  # on a shared 2-core machine more threads are far slower
    generator = HFGenerator.from_dir(
        actor, cfg, Decoding(temperature=1.0, top_p=0.9, max_tokens=MAX_NEW_TOKENS)
    )
    policy = policy_from_generator(generator)
    t0 = time.time()
    r = cfg.rollout
    agent = (view, r.prompt, r.decoding, r.arguments, r.block_noop_repeats, r.answer_questions)
    seed_results = rollouts(world_url, picked, lambda task: policy, chromium, *agent)
    for task, result in zip(picked, seed_results, strict=True):
        Trajectory.objects.create(task=task, run=run, phase=phase, status="ok", score=result.score)
    t_seed = time.time() - t0

    t0 = time.time()
    the_critic = load_frozen_critic(cfg, critic) if critic else None
    counts = run_curriculum_round(run, 1, critic=the_critic)
    t_round = time.time() - t0

    generated = list(Task.objects.filter(run=run, generating_phase=phase))
    kept = [t for t in generated if t.status == Task.Status.APPROVED]
    n = len(generated)
    passing = {
        name: round(sum(1 for t in generated if t.filter_notes.get(name, {}).get("keep")) / n, 3)
        if n
        else None
        for name in FILTERS
        if name != "balance"
    }
    t0 = time.time()
    kept_policy = rollouts(world_url, kept, lambda task: policy, chromium, *agent)
    kept_oracle = rollouts(world_url, kept, oracle_policy, chromium, view, cfg.rollout.prompt)
    t_kept = time.time() - t0
    orm = orm_accuracy(orm, kept + kept, kept_policy + kept_oracle, cfg) if orm else None
    critic_values = [t.critic_value for t in kept if t.critic_value is not None]
    return {
        "run": run.pk,
        "seed_tasks": len(picked),
        "seed_policy_success": _rate(seed_results),
        "failed_seeds": counts["seeds"],
        "generated": counts["generated"],
        "stored_rows": n,
        "pass_share": passing,
        "kept": len(kept),
        "kept_share": round(len(kept) / n, 3) if n else None,
        "dropped": {name: counts[f"dropped_{name}"] for name in FILTERS},
        "per_site_kept": dict(Counter(t.site_label for t in kept)),
        "how_kept": counts["how"],
        "kept_policy_success": _rate(kept_policy),
        "kept_oracle_success": _rate(kept_oracle),
        "kept_critic_mean": round(sum(critic_values) / len(critic_values), 3)
        if critic_values
        else None,
        "diversity": {
            "kept_distinct_templates": len({t.template_id for t in kept}),
            "kept_distinct_intents": len({normalize_intent(t.intent) for t in kept}),
            "generated_distinct_templates": len({t.template_id for t in generated}),
            "seed_distinct_templates": len({t.template_id for t in picked}),
        },
        "orm_on_kept": orm,
        "seconds": {
            "seed_rollouts": round(t_seed, 1),
            "round": round(t_round, 1),
            "kept_rollouts": round(t_kept, 1),
        },  # fmt: skip
    }
