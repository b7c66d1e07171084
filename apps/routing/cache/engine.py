"""The response cache: exact and semantic look-ups, background stores, hit-rate counters."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from apps.routing.cache import entries, keys
from apps.routing.cache.backends import Clock, MemoryBackend, RedisBackend
from apps.routing.cache.policy import CachePolicy
from apps.routing.cache.semantic import Embedder, ScopeIndexes, pack_item, unpack_item

if TYPE_CHECKING:
    import numpy as np  # loaded on first semantic use: +16 MB per process otherwise

logger = logging.getLogger(__name__)

COUNTERS = ("hits", "semantic_hits", "misses", "stores", "errors")

# Answers worth replaying: complete ones. A content-filtered or failed answer is not.
_STORABLE_FINISH = frozenset({"stop", "length", "tool_calls", "function_call"})


@dataclass(frozen=True, slots=True)
class CacheHit:
    """A cached answer for this request."""

    kind: str  # "hit" (exact) or "semantic_hit"
    response: dict[str, Any]  # the stored chat.completion body, usage included
    model: str  # the public model name that served the original request
    provider: str
    similarity: float | None  # cosine similarity for a semantic hit
    original_cost: Decimal  # what the original call cost; this answer costs nothing
    created: float  # epoch seconds when the answer was stored

    def age(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.created)


_UNSET: Any = object()


@dataclass(slots=True)
class _Prepared:
    """What one request derives once for look-up and store."""

    identity: tuple[str, str, int]
    key: bytes
    semantic: keys.SemanticPrompt | None
    vector: Any = _UNSET  # np.ndarray, None (not embeddable now) or _UNSET (not tried)


class ResponseCache:
    """One process's response cache over a backend (memory or Redis).

    Look-ups count as hits, semantic hits or misses; failures of the backend or of the
    embedding model are logged and count as errors, never raised: a cache that cannot
    answer is a miss.
    """

    def __init__(
        self,
        backend: MemoryBackend | RedisBackend,
        *,
        embedder: Embedder | None = None,
        clock: Clock = time.time,
        compress_above: int = 2048,
        max_scopes: int = 1000,
        max_per_scope: int = 1000,
        max_semantic_bytes: int | None = None,
        stats_flush_seconds: float = 1.0,
    ) -> None:
        self.backend = backend
        self.embedder = embedder
        self.clock = clock
        self.compress_above = compress_above
        self.max_per_scope = max_per_scope
        self.indexes = ScopeIndexes(
            max_scopes=max_scopes, max_per_scope=max_per_scope, max_bytes=max_semantic_bytes
        )
        self.stats_flush_seconds = stats_flush_seconds
        self._pending: Counter[tuple[str, str]] = Counter()
        self._flushed_at = 0.0
        self._flushing: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._warned_at: dict[str, float] = {}

    # --- look-up ----------------------------------------------------------------------------

    async def lookup(
        self, policy: CachePolicy, tenant_id: str, scope_model: str, body: dict[str, Any]
    ) -> CacheHit | None:
        if not policy.lookup:
            return None
        try:
            prepared = self._prepare(policy, tenant_id, scope_model, body)
            hit = await self._lookup(policy, prepared)
        except Exception as exc:
            self._warn("lookup", exc)
            self.count(policy.route, "errors")
            return None
        self.count(policy.route, hit.kind + "s" if hit else "misses")
        return hit

    def _semantic_for(self, policy: CachePolicy, prepared: _Prepared) -> keys.SemanticPrompt | None:
        if not policy.semantic or self.embedder is None or self.embedder.state == "failed":
            return None
        return prepared.semantic

    async def _lookup(self, policy: CachePolicy, prepared: _Prepared) -> CacheHit | None:
        semantic = self._semantic_for(policy, prepared)
        seq = 0
        if semantic is not None and self.backend.shared:
            value, seq = await self.backend.get_with_seq(prepared.key, semantic.scope)
        else:
            value = await self.backend.get(prepared.key)
        entry = self._usable(value, policy)
        if entry is not None:
            return _hit("hit", entry, None)
        if semantic is None:
            return None

        if self.backend.shared:
            vector, _ = await asyncio.gather(
                self._vector(prepared), self._refresh(semantic.scope, seq)
            )
        else:
            vector = await self._vector(prepared)
        if vector is None:
            return None
        index = self.indexes.get(semantic.scope, create=False)
        found = index.search(vector, self.clock()) if index is not None else None
        if found is None or found[1] < policy.threshold:
            return None
        key, similarity = found
        entry = self._usable(await self.backend.get(key), policy)
        if entry is None:
            index.discard(key)
            return None
        return _hit("semantic_hit", entry, similarity)

    def _usable(self, value: bytes | None, policy: CachePolicy) -> entries.Entry | None:
        if value is None:
            return None
        entry = entries.decode(value)
        if policy.max_age is not None and self.clock() - entry.created > policy.max_age:
            return None
        return entry

    async def _vector(self, prepared: _Prepared) -> np.ndarray | None:
        if prepared.vector is _UNSET:
            if self.embedder is None or prepared.semantic is None:
                return None
            vector = await self.embedder.embed(prepared.semantic.text)
            if vector is None and self.embedder.state != "ready":
                return None  # the model is loading: try again when storing
            prepared.vector = vector
        return prepared.vector

    async def _refresh(self, scope: bytes, seq: int) -> None:
        """Bring this process's mirror of a Redis scope up to sequence number `seq`."""
        index = self.indexes.get(scope)
        if seq == index.seq:
            return
        if seq < index.seq:
            # The scope expired in Redis and started again: mirror it from scratch.
            index = self.indexes.reset(scope)
        missing = seq - index.seq
        newest = None if index.seq == 0 or missing >= self.max_per_scope else missing
        items = await self.backend.scope_items(scope, newest)
        fresh = sorted(s for s in items if s[0] > index.seq)
        if newest is not None and fresh and fresh[0][0] > index.seq + 1:
            # Stores landed between reading the number and the list: read the whole list.
            items = await self.backend.scope_items(scope, None)
            fresh = sorted(s for s in items if s[0] > index.seq)
        index.add([unpack_item(item) for _, item in fresh])
        if fresh:
            index.seq = max(index.seq, fresh[-1][0])

    # --- store ------------------------------------------------------------------------------

    def store_later(
        self,
        policy: CachePolicy,
        tenant_id: str,
        scope_model: str,
        body: dict[str, Any],
        response: dict[str, Any],
        *,
        model: str,
        provider: str,
        cost: Decimal,
    ) -> None:
        """Store in the background: returns at once, never raises, never delays the answer.

        The response is encoded now, so the caller may go on using (and changing) its dict.
        """
        if not policy.store:
            return
        try:
            value = self._encode(response, model=model, provider=provider, cost=cost)
            if value is None:
                return
            prepared = self._prepare(policy, tenant_id, scope_model, body)
            task = asyncio.get_running_loop().create_task(self._store(policy, prepared, value))
        except Exception as exc:
            self._warn("store", exc)
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def store(
        self,
        policy: CachePolicy,
        tenant_id: str,
        scope_model: str,
        body: dict[str, Any],
        response: dict[str, Any],
        *,
        model: str,
        provider: str,
        cost: Decimal,
    ) -> bool:
        """Store and wait for it; True when stored. Never raises."""
        if not policy.store:
            return False
        try:
            value = self._encode(response, model=model, provider=provider, cost=cost)
            if value is None:
                return False
            prepared = self._prepare(policy, tenant_id, scope_model, body)
        except Exception as exc:
            self._warn("store", exc)
            return False
        return await self._store(policy, prepared, value)

    def _encode(
        self, response: dict[str, Any], *, model: str, provider: str, cost: Decimal
    ) -> bytes | None:
        choices = response.get("choices")
        if response.get("object") != "chat.completion" or not choices:
            return None
        if any(c.get("finish_reason") not in _STORABLE_FINISH for c in choices):
            return None
        if "atp" in response:
            # ATP's metadata (cost, consensus votes) describes the call that produced the
            # answer, not a later hit; the entry keeps the original cost on its own.
            response = {k: v for k, v in response.items() if k != "atp"}
        entry = entries.Entry(
            response=response, model=model, provider=provider, cost=cost, created=self.clock()
        )
        return entries.encode(entry, compress_above=self.compress_above)

    async def _store(self, policy: CachePolicy, prepared: _Prepared, value: bytes) -> bool:
        try:
            semantic = self._semantic_for(policy, prepared)
            vector = await self._vector(prepared) if semantic is not None else None
            if semantic is None or vector is None:
                await self.backend.put(prepared.key, value, policy.ttl)
            else:
                await self._store_semantic(policy, prepared.key, value, semantic.scope, vector)
        except Exception as exc:
            self._warn("store", exc)
            self.count(policy.route, "errors")
            return False
        self.count(policy.route, "stores")
        return True

    async def _store_semantic(
        self, policy: CachePolicy, key: bytes, value: bytes, scope: bytes, vector: np.ndarray
    ) -> None:
        expires_at = self.clock() + policy.ttl
        if not self.backend.shared:
            await self.backend.put(key, value, policy.ttl)
            self.indexes.get(scope).add([(expires_at, key, vector)])
            return
        item = pack_item(expires_at, key, vector)
        seq = await self.backend.put_semantic(
            key, value, policy.ttl, scope, item, self.max_per_scope
        )
        index = self.indexes.get(scope, create=False)
        if index is not None and seq == index.seq + 1:
            index.add([(expires_at, key, vector)])
            index.seq = seq

    # --- shared pieces ----------------------------------------------------------------------

    def _prepare(
        self, policy: CachePolicy, tenant_id: str, scope_model: str, body: dict[str, Any]
    ) -> _Prepared:
        identity = (tenant_id, scope_model, id(body))
        prepared = policy.prepared
        if prepared is not None and prepared.identity == identity:
            return prepared
        normalised = keys.normalise(body)
        key = keys.exact_key(tenant_id, scope_model, normalised)
        if prepared is not None and prepared.key == key:
            # Another dict of the same request (say, the body without ATP's own fields):
            # keep the embedding already computed for it.
            prepared.identity = identity
            return prepared
        semantic = (
            keys.semantic_prompt(tenant_id, scope_model, normalised) if policy.semantic else None
        )
        prepared = _Prepared(identity=identity, key=key, semantic=semantic)
        policy.prepared = prepared
        return prepared

    def _warn(self, what: str, exc: BaseException) -> None:
        # One line per kind of failure every ten seconds: a Redis outage must not flood logs.
        now = time.monotonic()
        if now - self._warned_at.get(what, -60.0) >= 10:
            self._warned_at[what] = now
            logger.warning("response cache %s failed: %s: %s", what, type(exc).__name__, exc)

    # --- hit-rate counters ------------------------------------------------------------------

    def count(self, route: str, counter: str) -> None:
        """Count an event; with Redis, counts are sent in batches at most once a second."""
        self._pending[(route, counter)] += 1
        now = time.monotonic()
        if now - self._flushed_at < self.stats_flush_seconds:
            return
        if self._flushing is not None and not self._flushing.done():
            return
        self._flushed_at = now
        try:
            self._flushing = asyncio.get_running_loop().create_task(self.flush_stats())
        except RuntimeError:
            return  # no event loop (a synchronous caller): the next count flushes

    async def flush_stats(self) -> None:
        deltas, self._pending = self._pending, Counter()
        if not deltas:
            return
        try:
            await self.backend.count(deltas)
        except Exception as exc:
            self._pending.update(deltas)
            self._warn("counter flush", exc)

    @staticmethod
    def _shape(raw: dict[tuple[str, str], int]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for (route, counter), n in raw.items():
            row = out.setdefault(route, dict.fromkeys(COUNTERS, 0))
            row[counter] = row.get(counter, 0) + n
        for row in out.values():
            looked = row["hits"] + row["semantic_hits"] + row["misses"]
            row["hit_rate"] = (row["hits"] + row["semantic_hits"]) / looked if looked else 0.0
        return out

    async def stats(self) -> dict[str, dict[str, Any]]:
        raw = Counter(await self.backend.stats())
        raw.update(self._pending)
        return self._shape(raw)

    def stats_sync(self) -> dict[str, dict[str, Any]]:
        # Called from a console thread while the event loop counts: copy in one step.
        pending = dict(self._pending)
        raw = Counter(self.backend.stats_sync())
        raw.update(pending)
        return self._shape(raw)

    async def drain(self) -> None:
        """Finish background stores and send pending counts (shutdown, tests)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)
        await self.flush_stats()

    async def aclose(self) -> None:
        await self.drain()
        await self.backend.aclose()
        if self.embedder is not None:
            self.embedder.close()


def _hit(kind: str, entry: entries.Entry, similarity: float | None) -> CacheHit:
    return CacheHit(
        kind=kind,
        response=entry.response,
        model=entry.model,
        provider=entry.provider,
        similarity=similarity,
        original_cost=entry.cost,
        created=entry.created,
    )
