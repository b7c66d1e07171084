"""Where each gateway process publishes its time buckets: Redis when configured, else memory.

A bucket is (resolution in seconds, start second); each process writes its own cumulative
sample for the bucket under its own id, so a later publication of the same bucket (rows that
reached the flush late) replaces the earlier one, and readers merge the processes' samples.
Buckets expire (SECONDS_TTL, MINUTES_TTL); recent errors are a short capped list.

Redis layout (prefix = the cache KEY_PREFIX, "atp" by default):

    <prefix>:live:<resolution>:<start>   hash  process id -> JSON sample   (expires)
    <prefix>:live:errors                 list  JSON error summaries, newest first (capped)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings

SECOND = 1
MINUTE = 60
TTL = {SECOND: 180, MINUTE: 2 * 3600 + 300}
ERRORS_KEPT = 50


class Store:
    """Publish and read buckets; every method is synchronous (call it off the event loop)."""

    def publish(self, process: str, buckets: Mapping[tuple[int, int], Mapping[str, float]]) -> None:
        raise NotImplementedError

    def read(self, resolution: int, starts: Iterable[int]) -> dict[int, dict[str, dict]]:
        """{start: {process: sample}} for the buckets that exist."""
        raise NotImplementedError

    def push_errors(self, errors: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def errors(self) -> list[dict[str, Any]]:
        raise NotImplementedError


class MemoryStore(Store):
    """The embedded store: one process, so one dictionary (a lock: flushes and pages may run
    on different threads)."""

    def __init__(self, clock=time.time) -> None:
        self.clock = clock
        self._buckets: dict[tuple[int, int], dict[str, dict]] = {}
        self._errors: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def publish(self, process, buckets) -> None:
        now = self.clock()
        with self._lock:
            for (resolution, start), sample in buckets.items():
                self._buckets.setdefault((resolution, start), {})[process] = dict(sample)
            for key in [k for k in self._buckets if k[1] + k[0] + TTL[k[0]] < now]:
                del self._buckets[key]

    def read(self, resolution, starts):
        with self._lock:
            return {
                start: {p: dict(s) for p, s in found.items()}
                for start in starts
                if (found := self._buckets.get((resolution, start)))
            }

    def push_errors(self, errors) -> None:
        with self._lock:
            self._errors[:0] = list(reversed(errors))
            del self._errors[ERRORS_KEPT:]

    def errors(self):
        with self._lock:
            return list(self._errors)


class RedisStore(Store):
    """Buckets shared by every process through Redis."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = f"{prefix}:live"
        self._client = None

    @property
    def client(self):
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(
                self.url, socket_timeout=2.0, socket_connect_timeout=2.0
            )
        return self._client

    def _key(self, resolution: int, start: int) -> str:
        return f"{self.prefix}:{resolution}:{start}"

    def publish(self, process, buckets) -> None:
        if not buckets:
            return
        pipe = self.client.pipeline(transaction=False)
        for (resolution, start), sample in buckets.items():
            key = self._key(resolution, start)
            pipe.hset(key, process, json.dumps(sample, separators=(",", ":")))
            pipe.expire(key, TTL[resolution])
        pipe.execute()

    def read(self, resolution, starts):
        starts = list(starts)
        pipe = self.client.pipeline(transaction=False)
        for start in starts:
            pipe.hgetall(self._key(resolution, start))
        out = {}
        for start, found in zip(starts, pipe.execute(), strict=True):
            if found:
                out[start] = {p.decode(): json.loads(s) for p, s in found.items()}
        return out

    def push_errors(self, errors) -> None:
        if not errors:
            return
        key = f"{self.prefix}:errors"
        pipe = self.client.pipeline(transaction=False)
        pipe.lpush(key, *(json.dumps(e, separators=(",", ":")) for e in errors))
        pipe.ltrim(key, 0, ERRORS_KEPT - 1)
        pipe.expire(key, 24 * 3600)
        pipe.execute()

    def errors(self):
        return [json.loads(e) for e in self.client.lrange(f"{self.prefix}:errors", 0, -1)]


_store: Store | None = None


def get_store() -> Store:
    """The process's store: Redis when REDIS_URL is set, else in memory."""
    global _store
    if _store is None:
        if settings.REDIS_URL:
            prefix = settings.CACHES.get("default", {}).get("KEY_PREFIX") or "atp"
            _store = RedisStore(settings.REDIS_URL, prefix)
        else:
            _store = MemoryStore()
    return _store


def set_store(store: Store | None) -> None:
    """Replace the process's store (tests; None rebuilds it from settings)."""
    global _store
    _store = store
