"""World instances are leased per run and shard in the database; every reset goes through a lease."""

from __future__ import annotations

import ast
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.runs import leases
from apps.runs.models import WorldLease
from sandbox.client import WorldClient
from sandbox.server import WorldThread, free_port_block
from tests.conftest import ROOT
from tests.runs.helpers import make_run, tiny_config

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def world():
    with WorldThread(instances=2, port=free_port_block()) as w:
        yield w


def _resets(world) -> list[int]:
    return [inst.resets for inst in world.world.instances]


def test_two_runs_never_hold_the_same_instance(owner):
    a, b = make_run(owner, tiny_config(), "a"), make_run(owner, tiny_config(), "b")
    url = "http://world.test:9400"
    first = leases.acquire(url, 2, 2, run_id=a.pk, holder="a shard 0")
    assert sorted(lease.instance for lease in first) == [0, 1]
    assert leases.acquire(url, 2, 1, run_id=b.pk, holder="b shard 0") == []
    leases.release(first[:1])
    second = leases.acquire(url, 2, 2, run_id=b.pk, holder="b shard 0")
    assert [lease.instance for lease in second] == [first[0].instance]
    assert WorldLease.objects.get(instance=first[0].instance).run_id == b.pk


def test_a_lease_whose_holder_died_is_taken_over_and_the_old_holder_cannot_reset(owner, world):
    run = make_run(owner, tiny_config())
    (dead,) = leases.acquire(world.url, 2, 1, run_id=run.pk, holder="dead shard")
    WorldLease.objects.filter(instance=dead.instance).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    (alive,) = leases.acquire(world.url, 2, 1, run_id=run.pk, holder="new shard")
    assert alive.instance == dead.instance
    before = _resets(world)
    with WorldClient(world.url) as client:
        with pytest.raises(leases.LeaseLost):
            leases.reset(client, dead)
        assert _resets(world) == before
        leases.reset(client, alive)
    assert _resets(world)[alive.instance] == before[alive.instance] + 1
    assert leases.renew([dead, alive]) == [alive]


@pytest.mark.browser
def test_the_curriculum_observer_resets_only_an_instance_it_leased(owner, world, settings):
    from apps.curriculum.round import world_observer

    settings.WORLD_URL = world.url
    other = make_run(owner, tiny_config(), "rolling out")
    mine = make_run(owner, tiny_config(), "curriculum")
    (busy,) = leases.acquire(world.url, 2, 1, run_id=other.pk, holder="other run's shard")
    before = _resets(world)
    pages = world_observer(mine.pk)(["__SHOPPING__"])
    assert "<" in pages["__SHOPPING__"]
    after = _resets(world)
    assert after[busy.instance] == before[busy.instance]  # the other run's episode is untouched
    assert sum(after) == sum(before) + 1
    assert not WorldLease.objects.filter(run=mine).exclude(token="").exists()  # released


def test_the_curriculum_observer_waits_for_a_free_instance_then_says_why(owner, world, settings):
    from apps.curriculum.round import world_observer
    from trainer.curriculum.generators import CurriculumError

    settings.WORLD_URL = world.url
    settings.WORLD_LEASE_WAIT_S = 0
    leases.acquire(world.url, 2, 2, run_id=None, holder="another run")
    with pytest.raises(CurriculumError, match="no free world instance"):
        world_observer(make_run(owner, tiny_config()).pk)(["__SHOPPING__"])


def test_the_world_command_refuses_a_world_that_runs_are_using(world):
    leases.acquire(world.url, 2, 1, run_id=None, holder="stage 7 shard 0")
    with pytest.raises(CommandError, match="in use .*stage 7 shard 0"):
        call_command("world", "bench", "--world-url", world.url, "--resets", "1", "--pages", "1")


def test_every_world_reset_in_the_apps_goes_through_a_lease():
    """No module of apps/ but the lease module calls a WorldClient's reset directly, or hands
    it to something that will (`asyncio.to_thread(world.reset, 0)`)."""
    offenders = []
    for path in sorted((ROOT / "apps").rglob("*.py")):
        if path.name == "leases.py" or "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        lease_names = {"leases"}  # the names apps.runs.leases goes by in this module
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "apps.runs":
                lease_names |= {a.asname or a.name for a in node.names if a.name == "leases"}
            if isinstance(node, ast.Import):
                lease_names |= {
                    a.asname for a in node.names if a.name == "apps.runs.leases" and a.asname
                }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("reset", "reset_ms")
                and not (isinstance(node.value, ast.Name) and node.value.id in lease_names)
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
