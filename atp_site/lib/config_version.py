"""The configuration version: services bump it on every write the data plane depends on.

Data-plane processes keep in-memory snapshots (keys, providers, deployments, ...) and
rebuild them when this number changes. It lives in the Django cache, so with Redis every
process sees a bump; in the embedded setup the cache is the process's own memory.
"""

from __future__ import annotations

import time

from asgiref.sync import sync_to_async
from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.locmem import LocMemCache

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
    """`current()` for the event loop.

    The in-process cache answers without I/O, so it is read directly; any other backend is
    read from a worker thread of the default pool, never the single thread that serialises
    database work (a version check must not wait behind a batch of log inserts).
    """
    if isinstance(caches[DEFAULT_CACHE_ALIAS], LocMemCache):
        return current()
    return await sync_to_async(current, thread_sensitive=False)()
