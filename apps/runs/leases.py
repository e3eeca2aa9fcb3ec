"""World instances leased per run and shard in the database: two runs (or two copies of a shard)
never drive the same instance, and every reset of an instance goes through its lease.

A lease is a `WorldLease` row (one per world URL and instance) holding a token until `expires_at`;
its holder renews it every beat. A lease whose holder died expires after `WORLD_LEASE_TTL_S` and
can be taken over; the old holder's `reset` is then refused.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.runs.models import WorldLease

log = logging.getLogger(__name__)


class LeaseLost(RuntimeError):
    """The lease expired and someone else may hold the instance now."""


class LeaseBusy(RuntimeError):
    """Another holder has the instances asked for."""


@dataclass(frozen=True)
class Lease:
    world: str
    instance: int
    token: str


def world_key(url: str) -> str:
    return url.rstrip("/")


def ttl_s() -> float:
    return float(settings.WORLD_LEASE_TTL_S)


def acquire(world_url: str, count: int, n: int, *, run_id: int | None, holder: str) -> list[Lease]:
    """Up to `n` free instances among the world's first `count` (lowest first); maybe none."""
    key = world_key(world_url)
    WorldLease.objects.bulk_create(
        [WorldLease(world=key, instance=i) for i in range(count)], ignore_conflicts=True
    )
    now = timezone.now()
    leases = []
    with transaction.atomic():
        free = (
            WorldLease.objects.select_for_update(skip_locked=True)
            .filter(world=key, instance__lt=count)
            .filter(Q(token="") | Q(expires_at__lt=now))
            .order_by("instance")[:n]
        )
        for row in free:
            token = uuid.uuid4().hex
            WorldLease.objects.filter(pk=row.pk).update(
                token=token,
                holder=holder[:200],
                run_id=run_id,
                acquired_at=now,
                expires_at=now + timedelta(seconds=ttl_s()),
            )
            leases.append(Lease(key, row.instance, token))
    if leases:
        log.info("%s leased instances %s", holder, [lease.instance for lease in leases])
    return leases


def wait_for(
    world_url: str, count: int, n: int, *, run_id: int | None, holder: str, wait_s: float
) -> list[Lease]:
    """`acquire`, retried every second for up to `wait_s` while every instance is taken."""
    deadline = time.monotonic() + wait_s
    while True:
        leases = acquire(world_url, count, n, run_id=run_id, holder=holder)
        if leases or time.monotonic() >= deadline:
            return leases
        time.sleep(1.0)


def _held(lease: Lease):
    return WorldLease.objects.filter(
        world=lease.world,
        instance=lease.instance,
        token=lease.token,
        expires_at__gte=timezone.now(),
    )


def renew(leases: list[Lease]) -> list[Lease]:
    """Extend each lease still held; returns those (a missing one was lost: stop using it)."""
    kept = []
    until = timezone.now() + timedelta(seconds=ttl_s())
    for lease in leases:
        if _held(lease).update(expires_at=until):
            kept.append(lease)
        else:
            log.warning("lease of instance %s lost (expired and maybe taken)", lease.instance)
    return kept


def release(leases: list[Lease]) -> None:
    for lease in leases:
        WorldLease.objects.filter(
            world=lease.world, instance=lease.instance, token=lease.token
        ).update(token="", holder="", run=None, expires_at=None)


def reset(world, lease: Lease) -> float:
    """Reset the leased instance (renewing the lease first); LeaseLost when it is no longer ours.
    `world` is a `sandbox.client.WorldClient`; returns the server's reset time in ms."""
    if not renew([lease]):
        raise LeaseLost(f"instance {lease.instance} of {lease.world}: lease lost, not reset")
    return world.reset_ms(lease.instance)


@contextlib.contextmanager
def holding_all(world_url: str, count: int, *, holder: str) -> Iterator[list[Lease]]:
    """Every instance of a running world, held (and renewed every 2 s) for a command that resets
    instances of its own choosing (`manage.py world oracle|bench|export-sft`); LeaseBusy when a
    run holds any of them."""
    held = acquire(world_url, count, count, run_id=None, holder=holder)
    if len(held) < count:
        release(held)
        busy = WorldLease.objects.filter(world=world_key(world_url)).exclude(token="")
        owners = sorted({f"instance {row.instance}: {row.holder}" for row in busy})
        raise LeaseBusy(f"the world at {world_url} is in use ({'; '.join(owners)})")
    done = threading.Event()

    def keep() -> None:
        from django.db import connection

        try:
            while not done.wait(2.0):
                renew(held)
        finally:
            connection.close()

    thread = threading.Thread(target=keep, daemon=True)
    thread.start()
    try:
        yield held
    finally:
        done.set()
        thread.join(10)
        release(held)
