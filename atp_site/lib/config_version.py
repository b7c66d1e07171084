"""The configuration version: services bump it on every write the data plane depends on.

Data-plane processes keep in-memory snapshots (keys, providers, deployments, ...) and
rebuild them when this number changes. Every process must see a bump, whichever process
(a server, a worker, `manage.py atp_apply`) made it, so the number lives in one database
row (apps.routing.models.ConfigVersion). With Redis, the row is mirrored there and read
from there; a failed Redis read falls back to the row, so bumps write both.

A process reads the version once per ATP_SNAPSHOT_CHECK_SECONDS (apps.routing.snapshot),
never per request.
"""

from __future__ import annotations

import logging
import time

from asgiref.sync import sync_to_async
from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.db import close_old_connections, transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest

logger = logging.getLogger(__name__)

KEY = "atp:config-version"
# The Redis copy expires, so a bump whose Redis write failed (Redis briefly down) is
# picked up from the database within this many seconds even though Redis answers again.
REDIS_TTL_SECONDS = 60
# Redis read failures logged once per this many seconds, not once per check.
_WARN_EVERY_SECONDS = 60.0
_last_warning = 0.0


def _shared_cache() -> bool:
    """True when the cache is shared by processes (Redis), not this process's memory."""
    return not isinstance(caches[DEFAULT_CACHE_ALIAS], LocMemCache)


def stored() -> int:
    """The version in the database, creating the row on a fresh database."""
    from apps.routing.models import ConfigVersion

    value = ConfigVersion.objects.filter(pk=1).values_list("version", flat=True).first()
    if value is None:
        # A fresh (or flushed) database starts from the clock, so it never repeats a
        # version a running process built its snapshot at.
        row, _ = ConfigVersion.objects.get_or_create(pk=1, defaults={"version": time.time_ns()})
        value = row.version
    return int(value)


def _warn_redis_failure() -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= _WARN_EVERY_SECONDS:
        _last_warning = now
        logger.warning(
            "configuration version: Redis read failed; reading it from the database",
            exc_info=True,
        )


def current() -> int:
    if not _shared_cache():
        return stored()
    try:
        value = cache.get(KEY)
    except Exception:
        _warn_redis_failure()
        return stored()
    if value is not None:
        return int(value)
    value = stored()
    try:
        # add, not set: a bump landing between the read above and this write wins.
        cache.add(KEY, value, timeout=REDIS_TTL_SECONDS)
    except Exception:
        _warn_redis_failure()
    return value


def bump() -> int:
    """Mark every snapshot stale. Call it from `transaction.on_commit` in services."""
    from apps.routing.models import ConfigVersion

    now = time.time_ns()
    with transaction.atomic():
        # Greatest(...): strictly increasing, and never below the clock, so a version
        # never repeats one seen before a database was restored or flushed.
        updated = ConfigVersion.objects.filter(pk=1).update(
            version=Greatest(F("version") + 1, Value(now))
        )
        if not updated:
            stored()  # creates the row
            ConfigVersion.objects.filter(pk=1).update(
                version=Greatest(F("version") + 1, Value(now))
            )
        # Read inside the transaction: the row stays locked, so this is our own value.
        value = ConfigVersion.objects.values_list("version", flat=True).get(pk=1)
    if _shared_cache():
        try:
            cache.set(KEY, value, timeout=REDIS_TTL_SECONDS)
        except Exception:
            # The database has it; readers fall back to it once the Redis copy expires.
            logger.warning("configuration version %s not written to Redis", value, exc_info=True)
    return value


def _current_in_worker() -> int:
    # A worker thread's connection outlives requests: drop it when broken or too old.
    close_old_connections()
    return current()


async def acurrent() -> int:
    """`current()` for the event loop, read in a worker thread of the default pool.

    Never the single thread that serialises database work (thread_sensitive=True): a
    version check must not wait behind a batch of write-behind inserts.
    """
    return await sync_to_async(_current_in_worker, thread_sensitive=False)()
