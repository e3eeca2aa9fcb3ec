"""Seed determinism, the template set and the train/test splits."""

from __future__ import annotations

import json
import pickle

import httpx
import pytest

from sandbox import SITES
from sandbox.client import WorldClient
from sandbox.instance import seed_world
from sandbox.taskgen import fill
from sandbox.tasks import TEST_MIX, _splits, all_templates, group_counts, load_tasks
from trainer.env.webarena import validate_task


def test_the_same_seed_gives_an_identical_world():
    assert pickle.dumps(seed_world(0)) == pickle.dumps(seed_world(0))


def test_another_seed_gives_another_world():
    assert seed_world(0)["shopping"]["products"] != seed_world(1)["shopping"]["products"]


def test_the_store_is_sized_like_a_small_deployment():
    store = seed_world(0)["shopping"]
    assert len(store["products"]) >= 300
    assert len(store["users"]) >= 40
    assert len(store["orders"]) >= 200
    assert len(store["reviews"]) >= 500


def test_every_site_state_is_plain_data():
    def plain(value) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, str | int) and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return isinstance(value, str | int | float | bool) or value is None

    world = seed_world(0)
    assert set(world) <= set(SITES)
    assert all(plain(state) for state in world.values())


def test_tasks_are_rebuilt_identically():
    first = json.dumps(load_tasks("test"))
    _splits.cache_clear()
    assert json.dumps(load_tasks("test")) == first


def test_the_test_split_has_webarena_lites_mix():
    tasks = load_tasks("test")
    assert len(tasks) == 165
    assert group_counts(tasks) == TEST_MIX
    assert [t["task_id"] for t in tasks] == list(range(165))


def test_train_has_at_least_a_thousand_tasks_and_shares_none_with_test():
    train, test = load_tasks("train"), load_tasks("test")
    assert len(train) >= 1000
    assert not {t["intent"] for t in train} & {t["intent"] for t in test}
    assert [t["task_id"] for t in train] == list(range(len(train)))


def test_every_task_is_a_valid_webarena_config_without_fuzzy_match():
    for task in load_tasks("test") + load_tasks("train"):
        assert validate_task(task) == [], (task["task_id"], validate_task(task))
        assert "fuzzy_match" not in json.dumps(task["eval"])
        assert task["world"] == "sandbox" and task["oracle"]
        assert task["intent"] == fill(task["intent_template"], task["instantiation_dict"])


def test_the_world_has_sixty_templates_of_every_kind_and_some_cross_site():
    templates = all_templates()
    assert len(templates) >= 60
    assert {t.kind for t in templates} == {"info", "nav", "state"}
    assert sum(1 for t in templates if len(t.sites) > 1) >= 2


def test_every_w1_template_has_a_test_or_train_instantiation():
    seen = {t["intent_template_id"] for t in load_tasks("train") + load_tasks("test")}
    w1 = [t.id for t in all_templates() if t.id < 300 or 600 <= t.id < 650]
    assert set(w1) <= seen


def test_a_world_served_from_another_seed_says_so_and_sells_that_seeds_products():
    from sandbox.server import WorldThread, free_port_block

    with WorldThread(instances=1, port=free_port_block(), seed=1) as world:
        client = WorldClient(world.url)
        assert client.seed() == 1
        page = httpx.get(client.site_urls(0)["shopping"] + "/", follow_redirects=True).text
    names = {p["name"] for p in seed_world(1)["shopping"]["products"]}
    assert any(name in page for name in names)
    # the first test task of seed 1 asks about that world, not the default one
    intent = load_tasks("test", 1)[0]["intent"]
    assert intent != load_tasks("test", 0)[0]["intent"]


def test_the_world_commands_refuse_a_world_of_another_seed(world, capsys):
    from sandbox.cli import main

    assert WorldClient(world.url).seed() == 0
    code = main(
        ["oracle", "--split", "test", "--limit", "1", "--seed", "1", "--world-url", world.url]
    )
    assert code == 2
    assert "built from seed 0, these tasks need seed 1" in capsys.readouterr().err


@pytest.mark.browser
def test_the_oracle_solves_another_seeds_tasks_in_that_seeds_world(capsys):
    from sandbox.cli import main
    from sandbox.server import free_port_block

    url = f"http://127.0.0.1:{free_port_block()}"
    args = ["oracle", "--split", "test", "--seed", "1", "--instances", "1", "--json"]
    template = load_tasks("test", 1)[0]["intent_template_id"]  # a shopping info task
    assert main([*args, "--world-url", url, "--limit", "2", "--template", str(template)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["seed"] == 1 and out["total"] == out["solved"] >= 1
