"""The world's state: seeding every site deterministically, and resettable instances of it.

An instance is one copy of all sites' state; reset unpickles a blob prepared once at start.
"""

from __future__ import annotations

import importlib
import pickle
import random
from types import ModuleType

from sandbox import DEFAULT_SEED, SITES
from sandbox.web import agent_session_id

# shopping_admin is the back office of the shopping store: its handlers read and write
# world["shopping"], while world["shopping_admin"] only holds the admin's own users and sessions.


def site_modules() -> dict[str, ModuleType]:
    """The site modules that exist, in the order of SITES (a missing module is skipped)."""
    modules = {}
    for site in SITES:
        try:
            modules[site] = importlib.import_module(f"sandbox.sites.{site}")
        except ModuleNotFoundError as exc:
            if exc.name != f"sandbox.sites.{site}":
                raise
    return modules


def seed_world(seed: int = DEFAULT_SEED) -> dict:
    """The full seed state {site: state}; identical for identical seeds."""
    world = {}
    for site, module in site_modules().items():
        state = module.seed_state(random.Random(f"{seed}:{site}"))
        agent = getattr(module, "AGENT_USER", None)
        if agent is not None:
            state.setdefault("sessions", {})[agent_session_id(site)] = agent
        world[site] = state
    return world


class Instance:
    """One isolated copy of the world, served on its own ports."""

    def __init__(self, index: int, blob: bytes, urls: dict[str, str]):
        self.index = index
        self.urls = urls
        self._blob = blob
        self.world: dict = pickle.loads(blob)
        self.resets = 0

    def reset(self) -> None:
        """Replace the whole state with a fresh copy of the seed snapshot."""
        self.world = pickle.loads(self._blob)
        self.resets += 1


def snapshot(world: dict) -> bytes:
    """The blob every instance resets from."""
    return pickle.dumps(world, protocol=pickle.HIGHEST_PROTOCOL)


def site_port(port: int, instance: int, site: str) -> int:
    """Port of a site server: control port + 10 + 10 * instance + index of the site in SITES."""
    return port + 10 + 10 * instance + SITES.index(site)


def site_urls(host: str, port: int, instance: int, sites: list[str]) -> dict[str, str]:
    return {site: f"http://{host}:{site_port(port, instance, site)}" for site in sites}
