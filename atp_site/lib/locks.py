"""Named locks with a time limit, held across processes when Redis is configured.

    lease = lock_acquire("duty:costs.rollup_usage", ttl_seconds=300)
    if lease is None:
        ...  # somebody else holds it
    try:
        ...
    finally:
        lock_release(lease)

With REDIS_URL a lock is one Redis key set with SET NX PX: every worker, beat and web
process of the deployment sees it, and it expires by itself when its holder dies. Without
Redis (the embedded setup, where one process runs everything) it lives in this process.
Only the holder releases a lock: the key is deleted only while it still holds the holder's
random token, so a holder that outlived its time limit cannot free a lock somebody else has
taken since.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

# Deletes KEYS[1] only while it holds ARGV[1], the holder's token (compare-and-delete).
_RELEASE = """
if redis.call("get", KEYS[1]) == ARGV[1] then
    return redis.call("del", KEYS[1])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Lease:
    """A held lock: its key and the token that proves who holds it."""

    key: str
    token: str
    shared: bool  # held in Redis (True) or in this process


def _redis() -> Any | None:
    """A Redis client when REDIS_URL is set: the cache's pool (django-redis) if it is one."""
    if not getattr(settings, "REDIS_URL", ""):
        return None
    try:
        from django_redis import get_redis_connection

        return get_redis_connection("default")
    except (ImportError, NotImplementedError):
        return _own_client()


_client: Any = None


def _own_client() -> Any:
    global _client
    if _client is None:
        import redis

        _client = redis.Redis.from_url(settings.REDIS_URL)
    return _client


def lock_key(name: str) -> str:
    """The Redis key of lock `name`: under the deployment's prefix and for its database, so
    deployments (or test databases) sharing one Redis never block each other."""
    prefix = getattr(settings, "ATP_REDIS_PREFIX", "") or settings.CACHES["default"].get(
        "KEY_PREFIX", "atp"
    )
    from django.db import connection

    database = str(connection.settings_dict.get("NAME", ""))
    scope = hashlib.sha256(database.encode()).hexdigest()[:12]
    return f"{prefix or 'atp'}:lock:{scope}:{name}"


# --- in this process -------------------------------------------------------------------------

_local_guard = threading.Lock()
_local: dict[str, tuple[str, float]] = {}  # key -> (token, monotonic expiry)


def _local_acquire(key: str, token: str, ttl: float) -> bool:
    now = time.monotonic()
    with _local_guard:
        held = _local.get(key)
        if held is not None and held[1] > now:
            return False
        _local[key] = (token, now + ttl)
        return True


def _local_release(key: str, token: str) -> bool:
    with _local_guard:
        held = _local.get(key)
        if held is None or held[0] != token:
            return False
        del _local[key]
        return True


# --- the interface ---------------------------------------------------------------------------


def lock_acquire(name: str, ttl_seconds: float) -> Lease | None:
    """Take lock `name` for at most `ttl_seconds`; None when somebody else holds it.

    When Redis cannot be reached the lock is taken in this process only (logged): a duty
    that may run twice is better than one that never runs while Redis is down, and every
    duty is safe to repeat.
    """
    key = lock_key(name)
    token = secrets.token_hex(16)
    ttl_ms = max(1, int(ttl_seconds * 1000))
    client = _redis()
    if client is not None:
        try:
            taken = client.set(key, token, nx=True, px=ttl_ms)
        except Exception as exc:
            logger.warning("lock %s: Redis unreachable (%s); locking in this process", name, exc)
        else:
            return Lease(key, token, shared=True) if taken else None
    if _local_acquire(key, token, ttl_seconds):
        return Lease(key, token, shared=False)
    return None


def lock_release(lease: Lease) -> bool:
    """Release a lock this caller holds; False if it had expired (and maybe been retaken)."""
    if not lease.shared:
        return _local_release(lease.key, lease.token)
    client = _redis()
    try:
        return bool(client.eval(_RELEASE, 1, lease.key, lease.token))
    except Exception as exc:
        # The key expires by itself at the end of its time limit.
        logger.warning("lock %s: not released (%s); it expires by itself", lease.key, exc)
        return False


def lock_held(name: str) -> bool:
    """Whether somebody holds lock `name` now (for display and tests)."""
    key = lock_key(name)
    client = _redis()
    if client is not None:
        try:
            return bool(client.exists(key))
        except Exception:
            pass
    with _local_guard:
        held = _local.get(key)
        return held is not None and held[1] > time.monotonic()
