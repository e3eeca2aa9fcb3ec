"""The self-evolving curriculum (spec §6): generators that turn failed tasks into new candidate tasks,
the in-breadth and feasibility prompts, and the filters, all as plain functions over task configs.

Django stores the results (`apps.curriculum`); nothing here touches a database, browser or world.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from trainer.serve.sampling import GenerationError

Complete = Callable[[list[str]], list[str]]
"""A text model: one completion per prompt, in order."""


class CurriculumError(RuntimeError):
    """A generator or judge could not do its work (dead endpoint, malformed reply, bad input)."""


# --------------------------------------------------------------------------------------------
# Seeds and candidates


@dataclass(frozen=True)
class Seed:
    """A task the agent failed: its stable key and its WebArena config (with site placeholders)."""

    key: str
    config: dict

    @property
    def intent(self) -> str:
        return str(self.config.get("intent", ""))

    @property
    def sites(self) -> list[str]:
        return list(self.config.get("sites") or [])

    @property
    def site(self) -> str:
        return self.sites[0] if len(self.sites) == 1 else "cross_site"


@dataclass
class Candidate:
    """A generated task before it is stored: config, parents, provenance and filter decisions."""

    config: dict
    parent_keys: list[str]
    how: str
    """instantiate | rephrase | sibling | llm"""
    template_id: int | None = None
    has_evaluator: bool = False
    notes: dict[str, dict] = field(default_factory=dict)
    """filter name -> {"score", "keep", "reason"}"""

    @property
    def intent(self) -> str:
        return str(self.config["intent"])

    @property
    def sites(self) -> list[str]:
        return list(self.config.get("sites") or [])

    @property
    def site(self) -> str:
        return self.sites[0] if len(self.sites) == 1 else "cross_site"

    @property
    def kept(self) -> bool:
        return all(note["keep"] for note in self.notes.values())

    def decide(self, name: str, keep: bool, score: float | None, reason: str) -> None:
        self.notes[name] = {"score": score, "keep": bool(keep), "reason": reason}


class TaskGenerator(Protocol):
    name: str

    def settings(self) -> dict[str, Any]: ...

    def generate(self, seeds: Sequence[Seed], rng: random.Random) -> list[Candidate]: ...


def site_root(start_url: str) -> str:
    """The site part of a placeholder URL: "__SHOPPING__/cart?x=1" -> "__SHOPPING__"."""
    match = re.match(r"^(__[A-Z_]+__)", start_url or "")
    if match:
        return match.group(1)
    match = re.match(r"^(https?://[^/]+)", start_url or "")
    return match.group(1) if match else start_url


def group_by_site(seeds: Sequence[Seed]) -> dict[str, list[Seed]]:
    groups: dict[str, list[Seed]] = defaultdict(list)
    for seed in seeds:
        groups[seed.site].append(seed)
    return dict(sorted(groups.items()))


# --------------------------------------------------------------------------------------------
# The in-breadth prompt (§6.1, our own wording) and backtick extraction

SITE_DESCRIPTIONS = {
    "shopping": "an online store where customers browse, search, review and buy products",
    "shopping_admin": "the admin back office of an online store (orders, products, customers, reports)",
    "reddit": "a discussion forum with communities, posts, comments and votes",
    "gitlab": "a code hosting platform with projects, issues, merge requests and members",
    "map": "an online map for finding places, directions and distances",
}


def build_breadth_prompt(site: str, seed_intents: Sequence[str]) -> str:
    """Ask for new tasks in the breadth of the given failed ones (§6.1, WizardLM in-breadth)."""
    about = SITE_DESCRIPTIONS.get(site, f"the website {site}")
    examples = "\n".join(f"- `{intent}`" for intent in seed_intents)
    return (
        f"You write tasks for an assistant that operates a website: {about} ({site}).\n"
        "Write new tasks that a real user of this website would plausibly ask for: clear, "
        "concrete, and doable on the site alone. Mix instructions and questions.\n"
        "Use the example tasks below as inspiration: stay in their domain, cover different needs "
        "than they do, and keep a similar difficulty (a little easier or harder is fine). "
        "Reuse the names that appear in the examples (products, people, places, projects, "
        "forums) instead of inventing new ones. Phrase each task differently. Do not refer to "
        "the examples or to yourself in a task.\n"
        "Put every task on its own line, wrapped in backticks like `this`.\n\n"
        f"#Example Tasks#\n{examples}\n\n#New Tasks#\n"
    )


def extract_backticked(text: str) -> list[str]:
    """Every non-empty span between a pair of backticks, stripped, in order, without repeats."""
    found: list[str] = []
    for span in re.findall(r"`([^`\n]+)`", text or ""):
        span = " ".join(span.split())
        if len(span) >= 8 and span not in found:
            found.append(span)
    return found


def llm_task_config(intent: str, site: str, start_url: str) -> dict:
    """A WebArena config for an LLM-written task: no ground truth, so a dummy evaluator (§6.3)."""
    return {
        "sites": [site],
        "task_id": None,
        "require_login": True,
        "storage_state": None,
        "start_url": start_url,
        "geolocation": None,
        "intent_template": "",
        "instantiation_dict": {},
        "intent_template_id": None,
        "intent": intent,
        "require_reset": False,
        "eval": {
            "eval_types": ["string_match"],
            "reference_answers": {"exact_match": "N/A"},
            "reference_url": None,
            "program_html": [],
        },
    }


class BreadthGenerator:
    """An LLM generator: per site, `calls_per_site` calls, each showing up to `seeds_per_call`
    failed tasks of that site; new tasks are the backticked spans of each reply (§6.1)."""

    def __init__(
        self,
        complete: Complete,
        *,
        name: str,
        settings: dict[str, Any] | None = None,
        seeds_per_call: int = 10,
        calls_per_site: int = 2,
    ):
        if seeds_per_call < 1 or calls_per_site < 1:
            raise ValueError("seeds_per_call and calls_per_site must be >= 1")
        self.complete = complete
        self.name = name
        self._settings = dict(settings or {})
        self.seeds_per_call = seeds_per_call
        self.calls_per_site = calls_per_site

    def settings(self) -> dict[str, Any]:
        backend = getattr(self.complete, "settings", None)
        return {
            **(backend() if callable(backend) else {}),
            **self._settings,
            "seeds_per_call": self.seeds_per_call,
            "calls_per_site": self.calls_per_site,
        }

    def generate(self, seeds: Sequence[Seed], rng: random.Random) -> list[Candidate]:
        calls: list[tuple[str, list[Seed]]] = []
        for site, group in group_by_site(seeds).items():
            if site == "cross_site":
                continue  # a prompt is about one website (§6.1)
            for _ in range(self.calls_per_site):
                calls.append((site, rng.sample(group, min(self.seeds_per_call, len(group)))))
        if not calls:
            return []
        prompts = [build_breadth_prompt(site, [s.intent for s in shown]) for site, shown in calls]
        try:
            replies = self.complete(prompts)
        except GenerationError as exc:
            raise CurriculumError(f"{self.name}: {exc}") from exc
        if len(replies) != len(prompts):
            raise CurriculumError(f"{self.name}: {len(prompts)} prompts, {len(replies)} replies")
        out: list[Candidate] = []
        for (site, shown), reply in zip(calls, replies, strict=True):
            start_url = site_root(shown[0].config.get("start_url", ""))
            for intent in extract_backticked(reply):
                out.append(
                    Candidate(
                        config=llm_task_config(intent, site, start_url),
                        parent_keys=[s.key for s in shown],
                        how="llm",
                    )
                )
        return out


def hf_complete(generator: Any) -> Complete:
    """Adapt the trainer's generation interface (`generate(prompts) -> [PolicyOutput]`)."""

    def complete(prompts: list[str]) -> list[str]:
        return [output.text for output in generator.generate(prompts)]

    return complete


# --------------------------------------------------------------------------------------------
# The offline generator: evolve failed tasks through the world's own templates


def _paraphrase_rules() -> list[tuple[re.Pattern[str], str]]:
    rules = [
        (r"^What is (.+?)\??$", r"Tell me \1."),
        (r"^What are (.+?)\??$", r"List \1."),
        (r"^How many (.+?)\??$", r"Count how many \1."),
        (r"^Which (.+?)\??$", r"Find out which \1."),
        (r"^Show me (.+)$", r"Open \1"),
        (r"^Go to (.+)$", r"Navigate to \1"),
        (r"^Open (.+)$", r"Bring up \1"),
        (r"^Find (.+)$", r"Look up \1"),
        (r"^Tell me (.+)$", r"I want to know \1"),
    ]
    return [(re.compile(p, re.IGNORECASE), r) for p, r in rules]


PARAPHRASE_RULES = _paraphrase_rules()


def rephrase(intent: str) -> str | None:
    """A meaning-preserving rewording by the first matching rule, else None."""
    for pattern, replacement in PARAPHRASE_RULES:
        if pattern.match(intent.strip()):
            return pattern.sub(replacement, intent.strip())
    return None


class OfflineGenerator:
    """For the built-in world: new instantiations of a failed task's template, rephrasings of it,
    and instantiations of sibling templates (same sites, same start page). Tasks keep evaluators."""

    name = "offline"

    def __init__(
        self,
        templates: Sequence[Any],
        seed_state: dict,
        *,
        build_config: Callable[[Any, dict, dict], dict],
        per_seed: int = 3,
    ):
        self.templates = {t.id: t for t in templates}
        self.seed_state = seed_state
        self.build_config = build_config
        """(template, seed_state, instantiation) -> WebArena config, as the world builds them."""
        self.per_seed = per_seed

    def settings(self) -> dict[str, Any]:
        return {"per_seed": self.per_seed, "templates": len(self.templates)}

    def config_for(self, template: Any, inst: dict) -> dict:
        try:
            config = dict(self.build_config(template, self.seed_state, inst))
        except Exception as exc:  # a broken template must not stop the round
            raise CurriculumError(f"template {template.id}: build failed: {exc}") from exc
        config.pop("split", None)
        config["task_id"] = None
        return config

    def _instances(self, template: Any, rng: random.Random) -> list[dict]:
        try:
            return list(template.instantiate(self.seed_state, rng))
        except Exception as exc:  # a broken template must not stop the round
            raise CurriculumError(f"template {template.id}: instantiate failed: {exc}") from exc

    def generate(self, seeds: Sequence[Seed], rng: random.Random) -> list[Candidate]:
        out: list[Candidate] = []
        for seed in seeds:
            template = self.templates.get(seed.config.get("intent_template_id"))
            if template is None:
                continue
            own = dict(seed.config.get("instantiation_dict") or {})
            # New instantiations of the same template.
            fresh = [
                i
                for i in self._instances(template, rng)
                if {k: v for k, v in i.items() if not str(k).startswith("_")} != own
            ]
            for inst in fresh[: self.per_seed]:
                out.append(self._candidate(template, inst, seed, "instantiate"))
            # The failed task itself, reworded (same evaluator).
            reworded = rephrase(seed.intent)
            if reworded:
                config = {k: v for k, v in seed.config.items() if k != "split"}
                config.update(intent=reworded, task_id=None)
                out.append(
                    Candidate(config, [seed.key], "rephrase", template.id, has_evaluator=True)
                )
            # Sibling templates on the same sites and start page.
            start = seed.config.get("start_url", "")
            siblings = [
                t
                for t in self.templates.values()
                if t.id != template.id and tuple(t.sites) == tuple(template.sites)
            ]
            rng.shuffle(siblings)
            added = 0
            for sibling in siblings:
                if added >= self.per_seed:
                    break
                instances = self._instances(sibling, rng)
                if not instances:
                    continue
                candidate = self._candidate(sibling, instances[0], seed, "sibling")
                same_page = site_root(candidate.config["start_url"]) == site_root(start)
                if same_page:
                    out.append(candidate)
                    added += 1
        return out

    def _candidate(self, template: Any, inst: dict, seed: Seed, how: str) -> Candidate:
        config = self.config_for(template, inst)
        return Candidate(config, [seed.key], how, template.id, has_evaluator=True)
