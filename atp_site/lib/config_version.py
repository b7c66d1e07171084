"""The configuration version: services bump it on every write the data plane depends on.

Data-plane processes keep in-memory snapshots (keys, providers, deployments, ...) and
rebuild them when this number changes. It lives in the Django cache, so with Redis every
process sees a bump; in the embedded setup the cache is the process's own memory.
"""

from __future__ import annotations

import time

from django.core.cache import cache

KEY = "atp:config-version"


def current() -> int:
    value = cache.get(KEY)
    if value is None:
        # A fresh cache (or an evicted key) must not look like "nothing changed".
        value = time.time_ns()
        cache.add(KEY, value, timeout=None)
        value = cache.get(KEY, value)
    return int(value)


def bump() -> int:
    """Mark every snapshot stale. Call it from `transaction.on_commit` in services."""
    value = time.time_ns()
    cache.set(KEY, value, timeout=None)
    return value


async def acurrent() -> int:
    value = await cache.aget(KEY)
    if value is None:
        value = time.time_ns()
        await cache.aadd(KEY, value, timeout=None)
        value = await cache.aget(KEY, value)
    return int(value)
