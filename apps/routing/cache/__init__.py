"""The response cache of the data plane: exact and semantic, with streamed replay.

Per request, on the hot path:

    policy = cache.policy_for(route_cfg, body, headers)      # pure, no I/O
    hit = await cache.lookup(policy, tenant_id, scope_model, body)
    ... on a miss, call the provider, then ...
    cache.store_later(policy, tenant_id, scope_model, body, response,
                      model=..., provider=..., cost=...)  # background, never raises
    headers += cache.response_headers(policy, hit)

`replay_chunks(hit.response, include_usage=...)` streams a hit like a live answer and
`StreamCollector` rebuilds a streamed answer for `store_later`. docs/cache.md describes the
behaviour for users.

The process-wide cache is built on first use from the settings: Redis when REDIS_URL is
set, otherwise an in-process LRU. Tests and tools may swap it with `use`.
"""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Any

from django.conf import settings

from apps.routing.cache.backends import MemoryBackend, RedisBackend
from apps.routing.cache.engine import CacheHit, ResponseCache
from apps.routing.cache.policy import CachePolicy, RouteCacheConfig, policy_for
from apps.routing.cache.replay import StreamCollector, replay_chunks
from apps.routing.cache.semantic import Embedder, load_minilm

__all__ = [
    "CacheHit",
    "CachePolicy",
    "ResponseCache",
    "RouteCacheConfig",
    "StreamCollector",
    "aclose",
    "acache_stats",
    "cache_stats",
    "default",
    "lookup",
    "policy_for",
    "replay_chunks",
    "response_headers",
    "store",
    "store_later",
    "use",
    "warm_up",
]

_default: ResponseCache | None = None


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def build_from_settings() -> ResponseCache:
    """A cache configured from the settings (see docs/cache.md for each ATP_CACHE_*)."""
    redis_url = _setting("REDIS_URL", "")
    if redis_url:
        prefix = settings.CACHES.get("default", {}).get("KEY_PREFIX") or "atp"
        backend: MemoryBackend | RedisBackend = RedisBackend(
            redis_url, prefix=prefix, timeout=_setting("ATP_CACHE_REDIS_TIMEOUT", 0.25)
        )
    else:
        backend = MemoryBackend(
            max_entries=_setting("ATP_CACHE_MAX_ENTRIES", 10_000),
            max_bytes=_setting("ATP_CACHE_MAX_BYTES", 128 << 20),
        )
    embedder = None
    if _setting("ATP_CACHE_SEMANTIC", True):
        threads = _setting("ATP_CACHE_EMBED_THREADS", 1)
        embedder = Embedder(
            functools.partial(load_minilm, threads=threads),
            timeout=_setting("ATP_CACHE_SEMANTIC_TIMEOUT", 0.5),
            max_pending=_setting("ATP_CACHE_SEMANTIC_MAX_PENDING", 32),
        )
    return ResponseCache(
        backend,
        embedder=embedder,
        compress_above=_setting("ATP_CACHE_COMPRESS_ABOVE", 2048),
        max_scopes=_setting("ATP_CACHE_SEMANTIC_MAX_SCOPES", 1000),
        max_per_scope=_setting("ATP_CACHE_SEMANTIC_MAX_PER_SCOPE", 1000),
        max_semantic_bytes=_setting("ATP_CACHE_SEMANTIC_MAX_BYTES", 256 << 20),
    )


def default() -> ResponseCache:
    global _default
    if _default is None:
        _default = build_from_settings()
    return _default


def use(cache: ResponseCache | None) -> ResponseCache | None:
    """Make `cache` the process-wide cache (None: rebuild from settings on next use)."""
    global _default
    previous, _default = _default, cache
    return previous


async def lookup(
    policy: CachePolicy, tenant_id: str, scope_model: str, body: dict[str, Any]
) -> CacheHit | None:
    """The cached answer for this request, or None. One Redis round trip for an exact
    look-up; a semantic look-up adds an encode in the model's thread and one more read
    when something similar is found. Never raises."""
    return await default().lookup(policy, tenant_id, scope_model, body)


def store_later(
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
    """Store a fresh chat.completion in the background; returns at once, never raises."""
    default().store_later(
        policy, tenant_id, scope_model, body, response, model=model, provider=provider, cost=cost
    )


async def store(
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
    """`store_later`, awaited: True when stored. Never raises. Not for the response path."""
    return await default().store(
        policy, tenant_id, scope_model, body, response, model=model, provider=provider, cost=cost
    )


def response_headers(policy: CachePolicy, hit: CacheHit | None) -> list[tuple[bytes, bytes]]:
    """`x-atp-cache: hit | semantic_hit | miss | bypass` (and, for a semantic hit, its
    similarity) on routes that cache; nothing on routes that do not."""
    if not policy.enabled:
        return []
    if hit is not None:
        headers = [(b"x-atp-cache", hit.kind.encode())]
        if hit.similarity is not None:
            headers.append((b"x-atp-cache-similarity", f"{hit.similarity:.4f}".encode()))
        return headers
    return [(b"x-atp-cache", b"miss" if policy.lookup else b"bypass")]


async def acache_stats() -> dict[str, dict[str, Any]]:
    """Per route: hits, semantic_hits, misses, stores, errors and hit_rate."""
    return await default().stats()


def cache_stats() -> dict[str, dict[str, Any]]:
    """`acache_stats` for synchronous callers (console views, metrics); not the data plane."""
    return default().stats_sync()


async def warm_up() -> bool:
    """Load the embedding model now (start-up when a route uses the semantic cache)."""
    cache = default()
    return cache.embedder is not None and await cache.embedder.warm_up()


async def aclose() -> None:
    """Finish background stores, send pending counters, close the Redis client (shutdown)."""
    if _default is not None:
        await _default.aclose()
