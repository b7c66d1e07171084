"""Where cached answers live: an in-process LRU (embedded) or Redis (shared by processes).

Both hold encoded entries under their 32-byte exact key with a TTL, and hit-rate counters.
Redis also holds each semantic scope's vectors (see `RedisBackend` for the layout); in
memory the engine's own scope indexes are the only copy.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import Counter, OrderedDict
from collections.abc import Callable

from redis import asyncio as aioredis

Clock = Callable[[], float]


class MemoryBackend:
    """A bounded LRU with per-entry TTL, by entry count and by total bytes."""

    shared = False

    def __init__(
        self, *, max_entries: int = 10_000, max_bytes: int = 128 << 20, clock: Clock = time.time
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self._data: OrderedDict[bytes, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self._stats: Counter[tuple[str, str]] = Counter()

    def __len__(self) -> int:
        return len(self._data)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    async def get(self, key: bytes) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        expires_at, value = item
        if expires_at <= self.clock():
            self._remove(key)
            return None
        self._data.move_to_end(key)
        return value

    async def put(self, key: bytes, value: bytes, ttl: int) -> None:
        if len(value) > self.max_bytes:
            return
        if key in self._data:
            self._remove(key)
        self._data[key] = (self.clock() + ttl, value)
        self._bytes += len(value)
        while len(self._data) > self.max_entries or self._bytes > self.max_bytes:
            oldest = next(iter(self._data))
            self._remove(oldest)

    def _remove(self, key: bytes) -> None:
        _, value = self._data.pop(key)
        self._bytes -= len(value)

    async def count(self, deltas: Counter[tuple[str, str]]) -> None:
        self._stats.update(deltas)

    async def stats(self) -> dict[tuple[str, str], int]:
        return dict(self._stats)

    def stats_sync(self) -> dict[tuple[str, str], int]:
        return dict(self._stats)

    async def aclose(self) -> None:
        return None


# One script per semantic store: the entry, the scope's next sequence number and its vector
# list in one round trip, atomically, so a reader never sees a sequence number whose item
# is not in the list yet. The list keeps the newest `max_per_scope` items; both scope keys
# live as long as their longest-lived item.
_STORE_SEMANTIC = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local seq = redis.call('INCR', KEYS[2])
redis.call('LPUSH', KEYS[3], string.format('%016x', seq) .. ARGV[3])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[4]) - 1)
local ttl = tonumber(ARGV[2])
for i = 2, 3 do
  if redis.call('TTL', KEYS[i]) < ttl then redis.call('EXPIRE', KEYS[i], ttl) end
end
return seq
"""

_STATS_FIELD_SEP = "\x1f"


class RedisBackend:
    """Entries, semantic scopes and counters in Redis.

    Layout under `<prefix>:rc:`
      e:<key hex>      the encoded entry, with the route's TTL
      s:<scope hex>:n  the scope's last sequence number (INCR per stored vector)
      s:<scope hex>:l  the scope's vectors, newest first: 16 hex digits of sequence number,
                       then expiry, exact key and float32 vector (semantic.pack_item)
      stats            hash "<route>\\x1f<counter>" -> count
    A process mirrors each scope it searches in memory and, per look-up, reads only the
    sequence number (in the same round trip as the exact look-up); it fetches the list's
    newest items only when that number moved. No RediSearch needed: plain Redis 7.

    Each event loop gets its own pooled client (a redis.asyncio connection belongs to the
    loop that opened it).
    """

    shared = True

    def __init__(self, url: str, *, prefix: str = "atp", timeout: float = 0.25) -> None:
        self.url = url
        self.prefix = f"{prefix}:rc:"
        self.timeout = timeout
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
            weakref.WeakKeyDictionary()
        )
        self._script_sha: str | None = None

    def client(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = aioredis.Redis.from_url(
                self.url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                health_check_interval=30,
            )
            self._clients[loop] = client
        return client

    def entry_key(self, key: bytes) -> str:
        return f"{self.prefix}e:{key.hex()}"

    def _scope_keys(self, scope: bytes) -> tuple[str, str]:
        base = f"{self.prefix}s:{scope.hex()}"
        return f"{base}:n", f"{base}:l"

    async def get(self, key: bytes) -> bytes | None:
        async with asyncio.timeout(self.timeout):
            return await self.client().get(self.entry_key(key))

    async def get_with_seq(self, key: bytes, scope: bytes) -> tuple[bytes | None, int]:
        """The entry and the scope's sequence number, in one round trip."""
        seq_key, _ = self._scope_keys(scope)
        async with asyncio.timeout(self.timeout):
            value, seq = await self.client().mget(self.entry_key(key), seq_key)
        return value, int(seq or 0)

    async def put(self, key: bytes, value: bytes, ttl: int) -> None:
        async with asyncio.timeout(self.timeout):
            await self.client().set(self.entry_key(key), value, ex=ttl)

    async def put_semantic(
        self, key: bytes, value: bytes, ttl: int, scope: bytes, item: bytes, max_per_scope: int
    ) -> int:
        """Store the entry and its vector; the vector's sequence number in its scope."""
        seq_key, list_key = self._scope_keys(scope)
        client = self.client()
        keys = [self.entry_key(key), seq_key, list_key]
        args = [value, ttl, item, max_per_scope]
        async with asyncio.timeout(self.timeout):
            if self._script_sha is None:
                self._script_sha = await client.script_load(_STORE_SEMANTIC)
            try:
                return int(await client.evalsha(self._script_sha, len(keys), *keys, *args))
            except aioredis.ResponseError as exc:
                if "NOSCRIPT" not in str(exc):
                    raise
                return int(await client.eval(_STORE_SEMANTIC, len(keys), *keys, *args))

    async def scope_items(self, scope: bytes, newest: int | None) -> list[tuple[int, bytes]]:
        """The scope's newest `newest` items (all when None) as (sequence number, item)."""
        _, list_key = self._scope_keys(scope)
        stop = -1 if newest is None else newest - 1
        async with asyncio.timeout(self.timeout):
            raw = await self.client().lrange(list_key, 0, stop)
        return [(int(item[:16], 16), item[16:]) for item in raw]

    async def count(self, deltas: Counter[tuple[str, str]]) -> None:
        client = self.client()
        async with asyncio.timeout(self.timeout):
            async with client.pipeline(transaction=False) as pipe:
                for (route, counter), n in deltas.items():
                    pipe.hincrby(f"{self.prefix}stats", f"{route}{_STATS_FIELD_SEP}{counter}", n)
                await pipe.execute()

    @staticmethod
    def _parse_stats(raw: dict[bytes, bytes]) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for field, value in raw.items():
            route, _, counter = field.decode().rpartition(_STATS_FIELD_SEP)
            out[(route, counter)] = int(value)
        return out

    async def stats(self) -> dict[tuple[str, str], int]:
        async with asyncio.timeout(self.timeout * 4):
            raw = await self.client().hgetall(f"{self.prefix}stats")
        return self._parse_stats(raw)

    def stats_sync(self) -> dict[tuple[str, str], int]:
        """For the console and metrics views (synchronous code, never the data plane)."""
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
        try:
            return self._parse_stats(client.hgetall(f"{self.prefix}stats"))
        finally:
            client.close()

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()
