"""The curriculum's filters (spec §6.2, §6.3): critic band, feasibility (LLM judge or the world's
knowledge), near-duplicates, and per-site balance with a cap. Each records score, keep and reason."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from trainer.curriculum.generators import SITE_DESCRIPTIONS, Candidate, Complete, CurriculumError
from trainer.serve.sampling import GenerationError

# --------------------------------------------------------------------------------------------
# Filters: each records {"score", "keep", "reason"} on the candidate


def critic_band_decision(
    p1: float, p2: float, band: tuple[float, float] = (0.05, 0.75)
) -> tuple[bool, float, str]:
    """§6.3: keep when EITHER head's P(success) of the start state lies in [low, high]."""
    lo, hi = band
    keep = lo <= p1 <= hi or lo <= p2 <= hi
    score = min(p1, p2)
    if keep:
        return True, score, f"P(success) heads ({p1:.3f}, {p2:.3f}) within [{lo}, {hi}]"
    side = "too easy" if min(p1, p2) > hi else "too hard" if max(p1, p2) < lo else "outside"
    return False, score, f"P(success) heads ({p1:.3f}, {p2:.3f}) {side} for [{lo}, {hi}]"


def apply_critic_filter(
    candidates: Sequence[Candidate],
    values: Sequence[tuple[float, float]],
    band: tuple[float, float],
) -> None:
    for candidate, (p1, p2) in zip(candidates, values, strict=True):
        keep, score, reason = critic_band_decision(float(p1), float(p2), band)
        candidate.decide("critic", keep, score, reason)


def apply_nearby_filter(
    candidates: Sequence[Candidate],
    existing: Sequence[str],
    *,
    embed: Callable[[list[str]], Any] | None = None,
    threshold: float = 0.9,
) -> None:
    """Near-duplicates against existing tasks and earlier candidates of the same batch: identical
    normalized text, or cosine similarity >= threshold when an embedding model is given."""
    from trainer.curriculum.embed import nearest_similarities

    texts = [c.intent for c in candidates]
    best = nearest_similarities(texts, list(existing), embed=embed)
    for candidate, (score, other, exact) in zip(candidates, best, strict=True):
        if exact:
            candidate.decide("dedupe", False, 1.0, f"same text as {other!r}")
        elif score is not None and score >= threshold:
            candidate.decide("dedupe", False, score, f"similarity {score:.3f} to {other!r}")
        else:
            shown = "no embedding model" if score is None else f"max similarity {score:.3f}"
            candidate.decide("dedupe", True, score, shown)


def apply_balance_cap(candidates: Sequence[Candidate], cap: int, rng: random.Random) -> None:
    """Per-site balance and a cap per phase: survivors are taken round-robin over sites (in a
    seeded random order within each site) until `cap` are kept; the rest are dropped."""
    survivors: dict[str, list[Candidate]] = defaultdict(list)
    for c in candidates:
        if c.kept:
            survivors[c.site].append(c)
    for group in survivors.values():
        rng.shuffle(group)
    chosen: set[int] = set()
    sites = sorted(survivors)
    depth = 0
    while len(chosen) < cap and any(depth < len(survivors[s]) for s in sites):
        for site in sites:
            if depth < len(survivors[site]) and len(chosen) < cap:
                chosen.add(id(survivors[site][depth]))
        depth += 1
    counts: dict[str, int] = defaultdict(int)
    for c in candidates:
        if not c.kept:
            continue
        if id(c) in chosen:
            counts[c.site] += 1
    for c in candidates:
        if not c.kept:
            continue
        if id(c) in chosen:
            c.decide("balance", True, None, f"kept; {counts[c.site]} of {cap} for {c.site}")
        else:
            c.decide("balance", False, None, f"over the cap of {cap} per phase after balancing")


# --------------------------------------------------------------------------------------------
# Feasibility (§6.2): an LLM judge with per-site rules, or the world's own knowledge

FEASIBILITY_RULES = {
    "reddit": "Anything a forum user can do on the site (posting, commenting, voting, browsing "
    "communities and user pages, editing one's own content) is feasible.",
    "gitlab": "Anything the code hosting platform supports (projects, issues, merge requests, "
    "members, repository files, settings) is feasible.",
    "map": "Infeasible: live traffic, accidents or road closures; weather; saving favourite "
    "places; sharing a live location; booking or reserving anything; flights or trains; event "
    "listings. Searching places, directions and distances are feasible.",
    "shopping_admin": "Infeasible: e-mailing order details to customers, automatic e-invoices, "
    "processing returns or refunds, updating the admin's own profile, recommending products "
    "from customer behaviour. Reading and editing orders, products, customers and reports "
    "is feasible.",
    "shopping": "Infeasible: filtering for discounted products, changing a delivery address, "
    "adding a payment method, showing the stages of an order, live shipment tracking, live "
    "customer service, after-sales requests. Searching, browsing, reviews, the cart, the wish "
    "list and past orders are feasible.",
}


def build_feasibility_prompt(site: str, intent: str) -> str:
    """Ask whether a task can be done on the site, with that site's rules (§6.2, own wording)."""
    rules = FEASIBILITY_RULES.get(site, "Judge by what such a website normally supports.")
    about = SITE_DESCRIPTIONS.get(site, site)
    return (
        "Decide whether a web agent could complete the task below using only the website "
        f"described, {about}.\n"
        f"Rules for this website: {rules}\n"
        "A task that asks for something the site does not offer, or that needs outside "
        "information, is infeasible.\n"
        f"Website: {site}\nTask: {intent}\n"
        "Give a one-sentence reason, then end with [YES] if feasible or [NO] if not.\n"
    )


def parse_feasibility(text: str) -> bool | None:
    """The judge's verdict: the LAST [YES]/[NO] in the reply; None when there is none."""
    marks = re.findall(r"\[(YES|NO)\]", text or "", flags=re.IGNORECASE)
    if not marks:
        return None
    return marks[-1].upper() == "YES"


def apply_llm_feasibility(candidates: Sequence[Candidate], complete: Complete) -> None:
    """Ask the judge about each candidate; an unparseable reply drops the task, with the reason."""
    if not candidates:
        return
    prompts = [build_feasibility_prompt(c.site, c.intent) for c in candidates]
    try:
        replies = complete(prompts)
    except GenerationError as exc:
        raise CurriculumError(f"feasibility judge: {exc}") from exc
    if len(replies) != len(prompts):
        raise CurriculumError(f"feasibility judge: {len(prompts)} prompts, {len(replies)} replies")
    for candidate, reply in zip(candidates, replies, strict=True):
        verdict = parse_feasibility(reply)
        snippet = " ".join(reply.split())[:200]
        if verdict is None:
            candidate.decide("feasibility", False, None, f"judge gave no [YES]/[NO]: {snippet!r}")
        else:
            candidate.decide("feasibility", verdict, 1.0 if verdict else 0.0, f"judge: {snippet}")


def world_entities(state: Any, *, min_len: int = 4, max_len: int = 60) -> set[str]:
    """Every name-like string in a world's seed state (lower-cased), for the feasibility rule."""
    found: set[str] = set()
    stack = [state]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
            stack.extend(k for k in item if isinstance(k, str))
        elif isinstance(item, list | tuple | set):
            stack.extend(item)
        elif isinstance(item, str) and min_len <= len(item) <= max_len:
            if re.search(r"[A-Za-z]", item) and (item[0].isupper() or "_" in item or " " in item):
                found.add(item.lower())
    return found


def apply_world_feasibility(candidates: Sequence[Candidate], entities: set[str]) -> None:
    """The built-in world's own knowledge: a task built from a template is feasible by
    construction; an LLM-written task is feasible only if it names an entity of the seed state
    (a product, user, forum, project or place that exists), since the world holds nothing else."""
    for c in candidates:
        if c.template_id is not None and c.has_evaluator:
            c.decide("feasibility", True, 1.0, f"built from world template {c.template_id}")
            continue
        text = c.intent.lower()
        named = sorted((e for e in entities if e in text), key=len, reverse=True)
        if named:
            c.decide("feasibility", True, 1.0, f"names {named[0]!r}, which exists in the world")
        else:
            c.decide(
                "feasibility", False, 0.0, "names nothing that exists in the world's seed state"
            )
