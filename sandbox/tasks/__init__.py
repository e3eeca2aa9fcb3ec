"""The world's tasks: every template's instantiations as WebArena configs, split into train/test.

Deterministic: the seed world and a per-template rng decide everything. The test split has
WebArena-Lite's mix (TEST_MIX); every other instantiation is train.
"""

from __future__ import annotations

import copy
import functools
import importlib
import random

from sandbox import DEFAULT_SEED
from sandbox.instance import seed_world
from sandbox.oracle import plan_to_json
from sandbox.taskgen import Template, fill

TEST_MIX = {
    "shopping": 45,
    "shopping_admin": 35,
    "gitlab": 30,
    "map": 26,
    "reddit": 19,
    "cross_site": 10,
}
ID_RANGES = {
    "shopping": range(100, 200),
    "shopping_admin": range(200, 300),
    "reddit": range(300, 400),
    "gitlab": range(400, 500),
    "map": range(500, 600),
    "cross_w1": range(600, 650),
    "cross_w2": range(650, 700),
}
SPLITS = ("train", "test")


def group_of(template: Template) -> str:
    """The test-mix group: the site, or "cross_site" for templates spanning two sites."""
    return "cross_site" if len(template.sites) > 1 else template.sites[0]


def all_templates() -> list[Template]:
    """Every template of every task module that exists, sorted by id; ids checked."""
    templates = []
    for name, ids in ID_RANGES.items():
        try:
            module = importlib.import_module(f"sandbox.tasks.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"sandbox.tasks.{name}":
                raise
            continue
        for template in module.TEMPLATES:
            if template.id not in ids:
                raise ValueError(f"template {template.id} of {name} is outside {ids}")
            templates.append(template)
    seen = set()
    for template in templates:
        if template.id in seen:
            raise ValueError(f"duplicate template id {template.id}")
        seen.add(template.id)
    return sorted(templates, key=lambda t: t.id)


def instantiations(template: Template, world: dict, seed: int = DEFAULT_SEED) -> list[dict]:
    """The template's instantiation dicts, without duplicate intents, in a seeded order."""
    rng = random.Random(f"{seed}:template:{template.id}")
    out, intents = [], set()
    for inst in template.instantiate(world, rng):
        intent = fill(template.intent_template, inst)
        if intent not in intents:
            intents.add(intent)
            out.append(inst)
    return out


def build_config(template: Template, world: dict, inst: dict) -> dict:
    """A WebArena task config (§8.2) with the oracle plan and `"world": "sandbox"`."""
    spec = template.build(world, inst)
    public = {k: v for k, v in inst.items() if not k.startswith("_")}
    return {
        "sites": list(template.sites),
        "task_id": None,
        "require_login": True,
        "storage_state": None,
        "start_url": spec.start_url,
        "geolocation": None,
        "intent_template": template.intent_template,
        "instantiation_dict": public,
        "intent": fill(template.intent_template, inst),
        "require_reset": template.kind == "state",
        "intent_template_id": template.id,
        "eval": spec.eval,
        "world": "sandbox",
        "kind": template.kind,
        "oracle": plan_to_json(spec.plan),
    }


@functools.cache
def _splits(seed: int) -> dict[str, list[dict]]:
    world = seed_world(seed)
    by_group: dict[str, list[tuple[Template, list[dict]]]] = {}
    for template in all_templates():
        by_group.setdefault(group_of(template), []).append(
            (template, instantiations(template, world, seed))
        )
    test, train = [], []
    for group in TEST_MIX:
        entries = by_group.get(group, [])
        if not entries:
            continue
        picked = _pick_test(entries, TEST_MIX[group], random.Random(f"{seed}:test:{group}"))
        for template, insts in entries:
            for index, inst in enumerate(insts):
                target = test if (template.id, index) in picked else train
                target.append(build_config(template, world, inst))
    test.sort(key=lambda c: (list(TEST_MIX).index(_group_key(c)), c["intent_template_id"]))
    for split, configs in (("test", test), ("train", train)):
        for task_id, config in enumerate(configs):
            config["task_id"] = task_id
            config["split"] = split
    return {"test": test, "train": train}


def _group_key(config: dict) -> str:
    return "cross_site" if len(config["sites"]) > 1 else config["sites"][0]


def _pick_test(entries: list, quota: int, rng: random.Random) -> set[tuple[int, int]]:
    """Round-robin over the group's templates, one seeded-random instantiation at a time,
    always leaving each template at least one instantiation for train when it has two or more."""
    queues = []
    for template, insts in entries:
        order = list(range(len(insts)))
        rng.shuffle(order)
        keep_for_train = 1 if len(order) > 1 else 0
        queues.append((template.id, order[: len(order) - keep_for_train]))
    picked: set[tuple[int, int]] = set()
    while len(picked) < quota and any(q for _, q in queues):
        for template_id, queue in queues:
            if queue and len(picked) < quota:
                picked.add((template_id, queue.pop(0)))
    return picked


def load_tasks(split: str, seed: int = DEFAULT_SEED) -> list[dict]:
    """Every task config of `split` ("train" or "test"), URLs with __SITE__ placeholders."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    return copy.deepcopy(_splits(seed)[split])


def group_counts(tasks: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for task in tasks:
        key = _group_key(task)
        counts[key] = counts.get(key, 0) + 1
    return counts
