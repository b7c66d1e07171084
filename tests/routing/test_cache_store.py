"""Response cache: exact look-ups and stores on the in-memory and Redis backends."""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from decimal import Decimal

import pytest
from redis import asyncio as aioredis

from apps.routing import cache
from apps.routing.cache import entries, policy_for
from apps.routing.cache.backends import MemoryBackend, RedisBackend
from apps.routing.cache.engine import ResponseCache

REDIS_URL = os.environ.get("REDIS_URL", "")


@dataclass
class RouteCfg:
    name: str = "atp/balanced"
    cache_ttl_seconds: int = 60
    semantic_cache: bool = False
    semantic_threshold: float = 0.92


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def body(text="What is the capital of France?", **extra):
    return {
        "model": "atp/balanced",
        "messages": [{"role": "user", "content": text}],
        **extra,
        "temperature": 0,
    }


def completion(text="Paris.", finish="stop"):
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-x",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
    }


async def _redis_cleanup(prefix: str) -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def make_cache(request):
    """Builds caches over one store: several caches share it, like processes share Redis."""
    clock = Clock()
    if request.param == "redis":
        if not REDIS_URL:
            pytest.skip("needs Redis (REDIS_URL)")
        prefix = f"atp-test-{uuid.uuid4().hex[:12]}"
        made: list[ResponseCache] = []

        def make(**kwargs):
            kwargs.setdefault("clock", clock)
            c = ResponseCache(RedisBackend(REDIS_URL, prefix=prefix, timeout=2), **kwargs)
            made.append(c)
            return c

        make.clock = clock
        make.kind = "redis"
        yield make
        for c in made:
            await c.aclose()
        await _redis_cleanup(prefix)
    else:
        backend = MemoryBackend(clock=clock)

        def make(**kwargs):
            kwargs.setdefault("clock", clock)
            return ResponseCache(backend, **kwargs)

        make.clock = clock
        make.kind = "memory"
        yield make


async def test_stored_answer_is_a_hit_with_its_origin(make_cache):
    c = make_cache()
    policy = policy_for(RouteCfg(), body(), {})
    assert await c.lookup(policy, "t1", "gpt-x", body()) is None
    stored = await c.store(
        policy,
        "t1",
        "gpt-x",
        body(),
        completion(),
        model="gpt-x",
        provider="openai",
        cost=Decimal("0.0012"),
    )
    assert stored
    hit = await c.lookup(policy_for(RouteCfg(), body(), {}), "t1", "gpt-x", body(stream=True))
    assert hit is not None and hit.kind == "hit"
    assert hit.response == completion()
    assert (hit.model, hit.provider, hit.original_cost) == ("gpt-x", "openai", Decimal("0.0012"))
    assert hit.similarity is None
    assert hit.created == make_cache.clock.now


async def test_other_tenant_and_other_model_miss(make_cache):
    c = make_cache()
    policy = policy_for(RouteCfg(), body(), {})
    await c.store(
        policy, "t1", "gpt-x", body(), completion(), model="gpt-x", provider="p", cost=Decimal(0)
    )
    assert await c.lookup(policy_for(RouteCfg(), body(), {}), "t2", "gpt-x", body()) is None
    assert await c.lookup(policy_for(RouteCfg(), body(), {}), "t1", "gpt-y", body()) is None
    assert await c.lookup(policy_for(RouteCfg(), body(), {}), "t1", "gpt-x", body()) is not None


async def test_a_hit_is_shared_by_every_cache_on_the_same_store(make_cache):
    writer, reader = make_cache(), make_cache()
    await writer.store(
        policy_for(RouteCfg(), body(), {}),
        "t1",
        "m",
        body(),
        completion(),
        model="m",
        provider="p",
        cost=Decimal(0),
    )
    assert await reader.lookup(policy_for(RouteCfg(), body(), {}), "t1", "m", body()) is not None


async def test_no_cache_skips_the_lookup_but_stores_and_no_store_does_neither(make_cache):
    c = make_cache()
    plain = policy_for(RouteCfg(), body(), {})
    await c.store(
        plain, "t1", "m", body(), completion("old"), model="m", provider="p", cost=Decimal(0)
    )
    no_cache = policy_for(RouteCfg(), body(), {b"cache-control": b"no-cache"})
    assert await c.lookup(no_cache, "t1", "m", body()) is None
    assert await c.store(
        no_cache, "t1", "m", body(), completion("new"), model="m", provider="p", cost=Decimal(0)
    )
    hit = await c.lookup(policy_for(RouteCfg(), body(), {}), "t1", "m", body())
    assert hit.response["choices"][0]["message"]["content"] == "new"

    no_store = policy_for(RouteCfg(), body(), {b"cache-control": b"no-store"})
    assert await c.lookup(no_store, "t1", "m", body()) is None
    assert not await c.store(
        no_store, "t1", "m", body(), completion("newest"), model="m", provider="p", cost=Decimal(0)
    )
    hit = await c.lookup(policy_for(RouteCfg(), body(), {}), "t1", "m", body())
    assert hit.response["choices"][0]["message"]["content"] == "new"


async def test_max_age_refuses_older_answers(make_cache):
    c = make_cache()
    await c.store(
        policy_for(RouteCfg(), body(), {}),
        "t1",
        "m",
        body(),
        completion(),
        model="m",
        provider="p",
        cost=Decimal(0),
    )
    make_cache.clock.now += 30
    fresh_only = policy_for(RouteCfg(), body(), {b"cache-control": b"max-age=10"})
    assert await c.lookup(fresh_only, "t1", "m", body()) is None
    recent_ok = policy_for(RouteCfg(), body(), {b"cache-control": b"max-age=60"})
    assert await c.lookup(recent_ok, "t1", "m", body()) is not None


async def test_incomplete_answers_are_not_stored(make_cache):
    c = make_cache()
    policy = policy_for(RouteCfg(), body(), {})
    assert not await c.store(
        policy,
        "t1",
        "m",
        body(),
        completion(finish="content_filter"),
        model="m",
        provider="p",
        cost=Decimal(0),
    )
    assert not await c.store(
        policy, "t1", "m", body(), {"object": "error"}, model="m", provider="p", cost=Decimal(0)
    )
    assert await c.lookup(policy_for(RouteCfg(), body(), {}), "t1", "m", body()) is None


async def test_store_later_returns_at_once_and_stores_in_the_background(make_cache):
    c = make_cache()
    response = completion()
    c.store_later(
        policy_for(RouteCfg(), body(), {}),
        "t1",
        "m",
        body(),
        response,
        model="m",
        provider="p",
        cost=Decimal("0.5"),
    )
    response["choices"][0]["message"]["content"] = "changed after the call"
    await c.drain()
    hit = await c.lookup(policy_for(RouteCfg(), body(), {}), "t1", "m", body())
    assert hit.response["choices"][0]["message"]["content"] == "Paris."


async def test_hit_rate_counters_per_route(make_cache):
    c = make_cache()
    route = RouteCfg(name=f"route-{uuid.uuid4().hex[:6]}")
    await c.lookup(policy_for(route, body(), {}), "t1", "m", body())
    await c.store(
        policy_for(route, body(), {}),
        "t1",
        "m",
        body(),
        completion(),
        model="m",
        provider="p",
        cost=Decimal(0),
    )
    await c.lookup(policy_for(route, body(), {}), "t1", "m", body())
    await c.lookup(policy_for(route, body(), {}), "t1", "m", body())
    await c.drain()
    stats = (await make_cache().stats())[route.name]
    assert stats == {
        "hits": 2,
        "semantic_hits": 0,
        "misses": 1,
        "stores": 1,
        "errors": 0,
        "hit_rate": 2 / 3,
    }


async def test_large_answers_are_compressed():
    text = "Paris is the capital of France. " * 200
    raw = entries.encode(
        entries.Entry(completion(text), "m", "p", Decimal("1"), 1.0), compress_above=2048
    )
    assert raw[:1] == b"z" and len(raw) < len(text) / 4
    assert entries.decode(raw).response == completion(text)
    small = entries.encode(
        entries.Entry(completion(), "m", "p", Decimal(0), 1.0), compress_above=2048
    )
    assert small[:1] == b"j"


# --- in-memory specifics --------------------------------------------------------------------


async def test_memory_entries_expire_after_the_route_ttl():
    clock = Clock()
    c = ResponseCache(MemoryBackend(clock=clock), clock=clock)
    policy = policy_for(RouteCfg(cache_ttl_seconds=60), body(), {})
    await c.store(policy, "t1", "m", body(), completion(), model="m", provider="p", cost=Decimal(0))
    clock.now += 59
    assert await c.lookup(policy_for(RouteCfg(), body(), {}), "t1", "m", body()) is not None
    clock.now += 2
    assert await c.lookup(policy_for(RouteCfg(), body(), {}), "t1", "m", body()) is None
    assert len(c.backend) == 0


async def test_memory_lru_is_bounded_by_entries_and_bytes():
    backend = MemoryBackend(max_entries=3, max_bytes=10_000)
    for i in range(5):
        await backend.put(bytes([i]) * 32, b"x" * 100, 60)
    assert len(backend) == 3
    assert await backend.get(bytes([0]) * 32) is None
    assert await backend.get(bytes([2]) * 32) is not None  # now the most recently used
    await backend.put(bytes([5]) * 32, b"x" * 100, 60)
    assert await backend.get(bytes([2]) * 32) is not None
    assert await backend.get(bytes([3]) * 32) is None  # the least recently used went

    by_size = MemoryBackend(max_entries=100, max_bytes=1_000)
    for i in range(5):
        await by_size.put(bytes([i]) * 32, b"x" * 300, 60)
    assert len(by_size) == 3 and by_size.size_bytes == 900


# --- Redis specifics ------------------------------------------------------------------------


@pytest.mark.redis
async def test_redis_entries_carry_the_route_ttl_and_are_compact():
    if not REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL)")
    prefix = f"atp-test-{uuid.uuid4().hex[:12]}"
    c = ResponseCache(RedisBackend(REDIS_URL, prefix=prefix))
    try:
        policy = policy_for(RouteCfg(cache_ttl_seconds=120), body(), {})
        await c.store(
            policy, "t1", "m", body(), completion(), model="m", provider="p", cost=Decimal(0)
        )
        client = c.backend.client()
        [name] = [k async for k in client.scan_iter(match=f"{prefix}:rc:e:*")]
        assert 115_000 < await client.pttl(name) <= 120_000
        assert (await client.get(name))[:1] == b"j"
    finally:
        await c.aclose()
        await _redis_cleanup(prefix)


@pytest.mark.redis
async def test_each_event_loop_gets_its_own_redis_client():
    if not REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL)")
    backend = RedisBackend(REDIS_URL, prefix=f"atp-test-{uuid.uuid4().hex[:12]}")
    here = backend.client()
    assert backend.client() is here

    def other_loop():
        async def probe():
            client = backend.client()
            await client.ping()
            await backend.aclose()
            return client

        return asyncio.run(probe())

    there = await asyncio.to_thread(other_loop)
    assert there is not here
    await backend.aclose()


async def test_an_unreachable_redis_is_a_miss_and_never_raises():
    c = ResponseCache(RedisBackend("redis://127.0.0.1:9/0", timeout=0.2))
    policy = policy_for(RouteCfg(), body(), {})
    assert await c.lookup(policy, "t1", "m", body()) is None
    assert not await c.store(
        policy, "t1", "m", body(), completion(), model="m", provider="p", cost=Decimal(0)
    )
    c.store_later(policy, "t1", "m", body(), completion(), model="m", provider="p", cost=Decimal(0))
    await c.drain()
    assert c._pending[("atp/balanced", "errors")] == 3


# --- the module interface -------------------------------------------------------------------


@pytest.fixture
def memory_default():
    previous = cache.use(ResponseCache(MemoryBackend()))
    yield cache.default()
    cache.use(previous)


async def test_module_interface_round_trip_and_headers(memory_default):
    policy = cache.policy_for(RouteCfg(), body(), {})
    assert await cache.lookup(policy, "t1", "m", body()) is None
    assert cache.response_headers(policy, None) == [(b"x-atp-cache", b"miss")]
    cache.store_later(
        policy, "t1", "m", body(), completion(), model="m", provider="p", cost=Decimal(0)
    )
    await memory_default.drain()
    again = cache.policy_for(RouteCfg(), body(), {})
    hit = await cache.lookup(again, "t1", "m", body())
    assert cache.response_headers(again, hit) == [(b"x-atp-cache", b"hit")]
    bypass = cache.policy_for(RouteCfg(), body(), {b"cache-control": b"no-cache"})
    assert cache.response_headers(bypass, None) == [(b"x-atp-cache", b"bypass")]
    off = cache.policy_for(RouteCfg(cache_ttl_seconds=0), body(), {})
    assert cache.response_headers(off, None) == []
    await memory_default.drain()
    assert cache.cache_stats()["atp/balanced"]["hits"] == 1
    assert (await cache.acache_stats())["atp/balanced"]["misses"] == 1


def test_default_cache_follows_the_settings(settings):
    previous = cache.use(None)
    try:
        settings.REDIS_URL = ""
        assert isinstance(cache.default().backend, MemoryBackend)
        cache.use(None)
        settings.REDIS_URL = "redis://127.0.0.1:6379/0"
        assert isinstance(cache.default().backend, RedisBackend)
    finally:
        cache.use(previous)


async def test_atp_metadata_of_the_original_call_is_not_stored(make_cache):
    c = make_cache()
    response = {**completion(), "atp": {"cost_usd": "0.0100", "consensus": {"votes": []}}}
    policy = policy_for(RouteCfg(), body(), {})
    await c.store(
        policy, "t1", "m", body(), response, model="m", provider="p", cost=Decimal("0.01")
    )
    hit = await c.lookup(policy_for(RouteCfg(), body(), {}), "t1", "m", body())
    assert hit.response == completion() and hit.original_cost == Decimal("0.01")
    assert "atp" in response
