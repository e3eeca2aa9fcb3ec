"""Fixtures of the world's tests: a world served from a thread on free ports."""

from __future__ import annotations

import pytest

from sandbox.server import WorldThread, free_port_block


@pytest.fixture(scope="module")
def world():
    """Two instances of the whole world."""
    with WorldThread(instances=2, port=free_port_block()) as thread:
        yield thread
