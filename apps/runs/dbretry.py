"""Database calls of long-lived workers that survive a dropped connection (a restarted server, an
administrator terminating backends): the connection is closed and the call tried again.

Only for calls outside a transaction that are safe to repeat (claims, fenced writes, beats):
Django reconnects a closed connection on its next query, never a broken one by itself.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connection

log = logging.getLogger(__name__)
T = TypeVar("T")
ATTEMPTS = 4


def retrying(
    fn: Callable[..., T], attempts: int = ATTEMPTS, wait_s: float = 0.5
) -> Callable[..., T]:
    @functools.wraps(fn)
    def call(*args, **kwargs) -> T:
        for attempt in range(1, attempts + 1):
            try:
                return fn(*args, **kwargs)
            except (OperationalError, InterfaceError) as exc:
                if connection.in_atomic_block or attempt == attempts:
                    raise
                log.warning("%s: database connection lost (%s); reconnecting",
                            getattr(fn, "__name__", fn), str(exc).strip()[:120])  # fmt: skip
                connection.close()
                time.sleep(wait_s * attempt)
        raise AssertionError("unreachable")

    return call
