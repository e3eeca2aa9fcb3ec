"""Named points in the stage and episode loops where the fault-injection tests hold a worker.

Off unless WEBRL_FAULT_POINTS names points (`stage_started:orm_init,episode_started`) and
WEBRL_FAULT_REDIS gives a Redis: the first process to reach a named point records itself there and
waits until the test releases it, so the test injects its fault at a known point, not by racing a
poll. In production the variables are unset and a hook costs one dictionary lookup.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

PREFIX = "webrl:fault:"


def armed(point: str, qualifier: str = "") -> bool:
    return _armed(point, qualifier) is not None


def _armed(point: str, qualifier: str) -> str | None:
    names = {p.strip() for p in os.environ.get("WEBRL_FAULT_POINTS", "").split(",") if p.strip()}
    for name in (f"{point}:{qualifier}", point):
        if name in names:
            return name
    return None


def _redis(timeout_s: float):
    import redis

    return redis.Redis.from_url(os.environ["WEBRL_FAULT_REDIS"], socket_timeout=timeout_s)


def hook(point: str, qualifier: str = "", wait_s: float = 600.0, **info) -> None:
    """Reached `point`: when armed, the first arrival reports itself and waits to be released."""
    name = _armed(point, qualifier)
    if name is None or not os.environ.get("WEBRL_FAULT_REDIS"):
        return
    client = _redis(wait_s + 30)
    try:
        if client.incr(f"{PREFIX}{name}:count") > 1:
            return  # only the first arrival is held
        me = {"pid": os.getpid(), "point": name, "t": time.time(), **info}
        client.rpush(f"{PREFIX}{name}:reached", json.dumps(me))
        client.blpop([f"{PREFIX}{name}:go"], timeout=wait_s)
    finally:
        client.close()


async def ahook(point: str, qualifier: str = "", **info) -> None:
    if _armed(point, qualifier) is not None:
        await asyncio.to_thread(hook, point, qualifier, **info)


# --- the test's side -------------------------------------------------------------------------


def reset(client, *names: str) -> None:
    for name in names:
        client.delete(f"{PREFIX}{name}:count", f"{PREFIX}{name}:reached", f"{PREFIX}{name}:go")


def wait_reached(client, name: str, timeout_s: float) -> dict:
    """Block until a worker reaches `name`; returns what it reported (its pid and the ids)."""
    got = client.blpop([f"{PREFIX}{name}:reached"], timeout=timeout_s)
    if got is None:
        raise TimeoutError(f"no worker reached fault point {name!r} within {timeout_s:.0f} s")
    return json.loads(got[1])


def release(client, name: str) -> None:
    client.rpush(f"{PREFIX}{name}:go", "1")
