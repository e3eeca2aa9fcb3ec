"""One curriculum round for a run's phase (spec §6): seeds = the phase's failed tasks; generate;
filter (near-duplicates, feasibility, critic band on the start page's real observation, per-site
balance and cap); store with lineage. Called by the phase loop and `manage.py curriculum_step`."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db.models import Q

from apps.curriculum.models import Task
from apps.curriculum.services import store_candidates
from apps.rollouts.models import Trajectory
from apps.runs.models import Checkpoint, Phase, Run
from trainer.config import RunConfig
from trainer.curriculum.embed import load_embedder
from trainer.curriculum.filters import (
    apply_balance_cap,
    apply_critic_filter,
    apply_llm_feasibility,
    apply_nearby_filter,
    apply_world_feasibility,
    world_entities,
)
from trainer.curriculum.generators import (
    BreadthGenerator,
    Candidate,
    CurriculumError,
    OfflineGenerator,
    Seed,
    hf_complete,
)
from trainer.env.observation import html_view
from trainer.prompts import build_critic_prompt
from trainer.serve.openai_client import OpenAIChat

log = logging.getLogger(__name__)

FILTERS = ("dedupe", "feasibility", "critic", "balance")
Observe = Callable[[list[str]], dict[str, str]]
"""placeholder start URLs -> {start URL: simplified HTML of that page}"""


def failed_seeds(phase: Phase) -> list[Seed]:
    """The tasks the agent failed in this phase's training rollouts: reward 0 (human or ORM
    label), or ground-truth score below 1 where no reward is set."""
    failed = Trajectory.objects.filter(
        phase=phase,
        purpose=Trajectory.Purpose.TRAIN,
        status__in=[Trajectory.Status.OK, Trajectory.Status.TIMEOUT],
    ).filter(Q(reward__lt=0.5) | Q(reward__isnull=True, score__lt=1.0))
    tasks = Task.objects.filter(pk__in=failed.values("task_id")).order_by("pk")
    return [Seed(t.key, {**t.config, "intent": t.intent, "sites": list(t.sites)}) for t in tasks]


def build_generator(config: RunConfig, run: Run) -> Any:
    c = config.curriculum
    if c.generator == "offline":
        if config.world != "sandbox":
            raise CurriculumError("the offline generator evolves the built-in world's templates")
        from sandbox.instance import seed_world
        from sandbox.tasks import all_templates, build_config

        return OfflineGenerator(
            all_templates(), seed_world(config.world_seed), build_config=build_config
        )
    if c.generator == "openai":
        client = OpenAIChat(c.generator_url, temperature=1.0, top_p=1.0)  # §6.1 sampling
        return BreadthGenerator(
            client, name="openai", seeds_per_call=c.seeds_per_call, calls_per_site=c.calls_per_site
        )
    from trainer.serve.hf import HFGenerator
    from trainer.serve.sampling import Decoding

    actor = Checkpoint.objects.filter(run=run, kind=Checkpoint.Kind.ACTOR).order_by("-pk").first()
    if actor is None:
        raise CurriculumError("curriculum.generator 'hf' needs an actor checkpoint of this run")
    hf = HFGenerator.from_dir(
        actor.path, config, Decoding(temperature=1.0, top_p=1.0, max_tokens=256)
    )
    return BreadthGenerator(
        hf_complete(hf),
        name="hf",
        settings={"model_dir": actor.path},
        seeds_per_call=c.seeds_per_call,
        calls_per_site=c.calls_per_site,
    )


def _in_thread(coro_fn: Callable[[], Any]) -> Any:
    """Run an async function to completion even when the caller already has an event loop."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro_fn())
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def world_observer(run_id: int | None = None) -> Observe:
    """Open each start URL in a real browser on a leased world instance (the agent's cookies and
    origins) and return its simplified HTML: the task's real start state, not a fixed snapshot.
    The instance is leased for the run while it is reset and observed, so no run's rollout shares it.
    """

    def observe(start_urls: list[str]) -> dict[str, str]:
        from apps.runs import leases
        from sandbox.client import WorldClient

        with WorldClient(settings.WORLD_URL) as world:
            held = leases.wait_for(
                settings.WORLD_URL, world.instances(), 1, run_id=run_id,
                holder=f"curriculum observer of run {run_id}", wait_s=settings.WORLD_LEASE_WAIT_S,
            )  # fmt: skip
            if not held:
                raise CurriculumError(
                    f"no free world instance within {settings.WORLD_LEASE_WAIT_S} s "
                    "(WORLD_LEASE_WAIT_S) to observe the generated tasks' start pages"
                )
            try:
                leases.reset(world, held[0])
                return _observe_instance(world, held[0].instance, start_urls)
            finally:
                leases.release(held)

    return observe


def _observe_instance(world, instance: int, start_urls: list[str]) -> dict[str, str]:
    from trainer.env.pool import BrowserPool
    from trainer.env.webarena import resolve_placeholders

    urls = world.site_urls(instance)
    storage, origins = world.storage_state(instance), world.allowed_origins(instance)

    async def run() -> dict[str, str]:
        out = {}
        async with BrowserPool(contexts=1, executable_path=settings.CHROMIUM_PATH) as pool:
            for start in start_urls:
                target = resolve_placeholders(start, urls).split(" |AND| ")[0]
                obs = await pool.observe(
                    target, storage_state=storage, allowed_origins=origins, screenshot=False
                )
                out[start] = obs.html
        return out

    return _in_thread(run)


def load_critic(run: Run, config: RunConfig) -> Any | None:
    ckpt = Checkpoint.objects.filter(run=run, kind=Checkpoint.Kind.CRITIC).order_by("-pk").first()
    if ckpt is None:
        return None
    from trainer.learn.placement import load_frozen_critic

    return load_frozen_critic(config, ckpt.path)  # where the policy trains, in its dtype


def critic_filter(
    candidates: list[Candidate],
    critic: Any | None,
    observe: Observe,
    band: tuple[float, float],
    view: str = "webrl",
    variant: str = "webrl",
) -> None:
    if critic is None:
        for c in candidates:
            c.decide("critic", True, None, "no critic yet (phase 0): not filtered (§1.2)")
        return
    starts = sorted({c.config["start_url"] for c in candidates})
    pages = observe(starts) if starts else {}
    seen = html_view(view)
    prompts = [
        build_critic_prompt(c.intent, seen(pages[c.config["start_url"]]), variant=variant)
        for c in candidates
    ]
    apply_critic_filter(candidates, critic.values(prompts), band)


def feasibility_filter(candidates: list[Candidate], config: RunConfig) -> None:
    url = config.curriculum.feasibility_url
    if url:
        judge = OpenAIChat(url, temperature=0.0, max_tokens=256)
        try:
            apply_llm_feasibility(candidates, judge)
        finally:
            judge.close()
    elif config.world == "sandbox":
        from sandbox.instance import seed_world

        apply_world_feasibility(candidates, world_entities(seed_world(config.seed)))
    else:
        for c in candidates:
            c.decide("feasibility", True, None, "no judge configured (curriculum.feasibility_url)")


def counts_of(candidates: list[Candidate]) -> dict[str, Any]:
    out: dict[str, Any] = {"generated": len(candidates), "kept": sum(c.kept for c in candidates)}
    for name in FILTERS:
        seen = [c for c in candidates if name in c.notes]
        out[f"dropped_{name}"] = sum(not c.notes[name]["keep"] for c in seen)
    per_site: dict[str, dict[str, int]] = {}
    for site in sorted({c.site for c in candidates}):
        mine = [c for c in candidates if c.site == site]
        row = {"generated": len(mine), "kept": sum(c.kept for c in mine)}
        for name in FILTERS:
            row[f"dropped_{name}"] = sum(
                1 for c in mine if name in c.notes and not c.notes[name]["keep"]
            )
        per_site[site] = row
    out["per_site"] = per_site
    out["how"] = dict(Counter(c.how for c in candidates if c.kept))
    return out


def run_curriculum_round(
    run: Run,
    phase_index: int | None = None,
    *,
    generator: Any = None,
    critic: Any = "checkpoint",
    observe: Observe | None = None,
    embed: Any = "default",
) -> dict:
    """One generation-and-filter round for `run` at `phase_index` (default: its latest phase).
    The keyword arguments replace the parts the run's config would build (tests, benchmarks)."""
    config = RunConfig.from_dict(run.config)
    phases = Phase.objects.filter(run=run).order_by("-index")
    phase = phases.filter(index=phase_index).first() if phase_index is not None else phases.first()
    if phase is None:
        which = "phases" if phase_index is None else f"phase {phase_index}"
        raise CurriculumError(f"run {run.pk} has no {which}")
    seeds = failed_seeds(phase)
    rng = random.Random(f"{config.seed}:curriculum:{phase.index}")
    gen = generator if generator is not None else build_generator(config, run)
    candidates = gen.generate(seeds, rng) if seeds else []

    existing = list(
        Task.objects.filter(world=config.world)
        .exclude(run=run, generating_phase=phase)
        .values_list("intent", flat=True)
    )
    embedder = load_embedder() if embed == "default" else embed
    apply_nearby_filter(
        candidates, existing, embed=embedder, threshold=config.curriculum.dedupe_threshold
    )
    feasibility_filter(candidates, config)
    if critic == "checkpoint":
        critic = load_critic(run, config)
    critic_filter(
        candidates,
        critic,
        observe or world_observer(run.pk),
        config.curriculum.critic_band,
        config.rollout.observation,
        config.rollout.prompt,
    )
    apply_balance_cap(candidates, config.curriculum.tasks_per_phase, rng)

    stored = store_candidates(
        run,
        phase,
        candidates,
        world=config.world,
        generator={"name": gen.name, "settings": gen.settings()},
        auto_approve=config.curriculum.approval == "auto",
    )
    result = {"seeds": len(seeds), **counts_of(candidates)}
    result.update(stored)
    log.info("curriculum round run %s phase %s: %s", run.pk, phase.index, result)
    return result
