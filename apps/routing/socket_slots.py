"""Open /v1/realtime sockets per API key, limited by ATP_REALTIME_MAX_SOCKETS_PER_KEY.

In memory when embedded; with Redis, shared by every process: one sorted set per key
whose members are socket ids scored by a lease expiry. A socket refreshes its lease while
open, so the slots of a process that died free themselves after LEASE_SECONDS instead of
counting against the key forever.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings

logger = logging.getLogger(__name__)

LEASE_SECONDS = 60.0
# How often an open socket renews its lease (well inside the lease).
REFRESH_SECONDS = LEASE_SECONDS / 3

_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class MemorySlots:
    """This process's open sockets per key."""

    def __init__(self) -> None:
        self._open: dict[str, set[str]] = {}

    async def acquire(self, key_id: str, socket_id: str, limit: int) -> bool:
        sockets = self._open.setdefault(key_id, set())
        if len(sockets) >= limit:
            return False
        sockets.add(socket_id)
        return True

    async def refresh(self, key_id: str, socket_id: str) -> None:
        return None

    async def release(self, key_id: str, socket_id: str) -> None:
        sockets = self._open.get(key_id)
        if sockets is not None:
            sockets.discard(socket_id)
            if not sockets:
                del self._open[key_id]


class RedisSlots:
    """Every process's open sockets per key, in Redis (see the module docstring).

    Redis trouble must not take the data plane down: a socket is admitted when Redis
    cannot be asked, and the failure is logged.
    """

    def _key(self, key_id: str) -> str:
        prefix = settings.CACHES.get("default", {}).get("KEY_PREFIX") or "atp"
        return f"{prefix}:ws-sockets:{key_id}"

    def _client(self):
        from apps.routing.resilience.breaker import async_client

        return async_client()

    async def acquire(self, key_id: str, socket_id: str, limit: int) -> bool:
        now = time.time()
        try:
            admitted = await self._client().eval(
                _ACQUIRE,
                1,
                self._key(key_id),
                now,
                now + LEASE_SECONDS,
                limit,
                socket_id,
                int(LEASE_SECONDS) + 1,
            )
        except Exception:
            logger.warning("realtime socket count in Redis unavailable; admitting", exc_info=True)
            return True
        return bool(admitted)

    async def refresh(self, key_id: str, socket_id: str) -> None:
        try:
            await self._client().zadd(
                self._key(key_id), {socket_id: time.time() + LEASE_SECONDS}, xx=True
            )
        except Exception:
            logger.warning("realtime socket lease not renewed in Redis", exc_info=True)

    async def release(self, key_id: str, socket_id: str) -> None:
        try:
            await self._client().zrem(self._key(key_id), socket_id)
        except Exception:
            logger.warning("realtime socket slot not released in Redis", exc_info=True)


_slots: MemorySlots | RedisSlots | None = None


def get_slots() -> MemorySlots | RedisSlots:
    global _slots
    if _slots is None:
        _slots = RedisSlots() if settings.REDIS_URL else MemorySlots()
    return _slots
