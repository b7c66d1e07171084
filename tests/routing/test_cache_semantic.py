"""Semantic response cache with the real all-MiniLM-L6-v2 model shipped in its wheel."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import orjson
import pytest
from asgiref.sync import sync_to_async
from redis import asyncio as aioredis

from apps.routing import cache
from apps.routing.cache import policy_for
from apps.routing.cache.backends import MemoryBackend, RedisBackend
from apps.routing.cache.engine import ResponseCache
from apps.routing.cache.semantic import Embedder, bundled_model_path, load_minilm
from apps.routing.engine.router import reset_engine
from apps.routing.route_services import route_create
from apps.tenants.keys import generate_api_key, hash_key, visible_prefix
from apps.tenants.models import ApiKey, Tenant
from atp_site.lib import config_version
from tests.routing.conftest import call

REDIS_URL = os.environ.get("REDIS_URL", "")


@pytest.fixture(scope="session")
def minilm():
    """The real model, loaded once for the whole run (a few seconds)."""
    return load_minilm()


@dataclass
class RouteCfg:
    name: str = "atp/semantic"
    cache_ttl_seconds: int = 300
    semantic_cache: bool = True
    semantic_threshold: float = 0.92


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


SYSTEM = {"role": "system", "content": "You are a helpful geography assistant."}


def body(text, *, system=SYSTEM, **extra):
    return {"messages": [system, {"role": "user", "content": text}], "temperature": 0, **extra}


def completion(text):
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
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22},
    }


async def _ready_embedder(encoder) -> Embedder:
    # A generous encode budget: these tests are about what the cache finds, and on a loaded
    # machine an encode can take longer than the gateway's 0.5 s (then skipped by design).
    embedder = Embedder(lambda: encoder, timeout=30)
    assert await embedder.warm_up()
    return embedder


async def remember(c, text, answer, *, tenant="t1", model="gpt-x", route=None, **extra):
    request = body(text, **extra)
    policy = policy_for(route or RouteCfg(), request, {})
    assert await c.store(
        policy,
        tenant,
        model,
        request,
        completion(answer),
        model=model,
        provider="p",
        cost=Decimal("0.01"),
    )


async def ask(c, text, *, tenant="t1", model="gpt-x", route=None, **extra):
    request = body(text, **extra)
    return await c.lookup(policy_for(route or RouteCfg(), request, {}), tenant, model, request)


@pytest.fixture
async def memory_cache(minilm):
    clock = Clock()
    embedder = await _ready_embedder(minilm)
    c = ResponseCache(MemoryBackend(clock=clock), embedder=embedder, clock=clock)
    c.test_clock = clock
    yield c
    embedder.close()


def test_paraphrases_are_close_and_unrelated_prompts_are_not(minilm):
    a = minilm("What is the capital of France?")
    b = minilm("What's the capital of France?")
    c = minilm("How do I bake sourdough bread at home?")
    assert a.shape == (384,) and abs(float(np.linalg.norm(a)) - 1) < 1e-4
    assert float(a @ b) > 0.95
    assert float(a @ c) < 0.5


def test_a_prompt_longer_than_the_model_window_is_not_embedded(minilm):
    assert minilm("tell me about Paris " * 200) is None


async def test_a_paraphrase_is_a_semantic_hit(memory_cache):
    await remember(memory_cache, "What is the capital of France?", "Paris.")
    hit = await ask(memory_cache, "What's the capital of France?")
    assert hit is not None and hit.kind == "semantic_hit"
    assert hit.similarity > 0.92
    assert hit.response["choices"][0]["message"]["content"] == "Paris."
    assert hit.original_cost == Decimal("0.01")
    stats = await memory_cache.stats()
    assert stats["atp/semantic"]["semantic_hits"] == 1


async def test_the_exact_request_is_an_exact_hit_on_a_semantic_route(memory_cache):
    await remember(memory_cache, "What is the capital of France?", "Paris.")
    hit = await ask(memory_cache, "What is the capital of France?")
    assert hit.kind == "hit" and hit.similarity is None


async def test_an_unrelated_prompt_misses(memory_cache):
    await remember(memory_cache, "What is the capital of France?", "Paris.")
    assert await ask(memory_cache, "How do I bake sourdough bread at home?") is None
    assert await ask(memory_cache, "What is the capital of Germany?") is None


async def test_the_route_threshold_decides(memory_cache):
    await remember(memory_cache, "What is the capital of France?", "Paris.")
    strict = RouteCfg(semantic_threshold=0.999)
    assert await ask(memory_cache, "What's the capital of France?", route=strict) is None
    assert await ask(memory_cache, "What's the capital of France?") is not None


async def test_semantic_hits_never_cross_tenants_models_or_parameters(memory_cache):
    await remember(memory_cache, "What is the capital of France?", "Paris.")
    paraphrase = "What's the capital of France?"
    assert await ask(memory_cache, paraphrase, tenant="t2") is None
    assert await ask(memory_cache, paraphrase, model="gpt-y") is None
    tools = [{"type": "function", "function": {"name": "lookup_city", "parameters": {}}}]
    assert await ask(memory_cache, paraphrase, tools=tools) is None
    assert await ask(memory_cache, paraphrase, response_format={"type": "json_object"}) is None
    other_system = {"role": "system", "content": "Answer in German."}
    assert await ask(memory_cache, paraphrase, system=other_system) is None
    assert await ask(memory_cache, paraphrase) is not None


async def test_different_numbers_never_share_an_answer(memory_cache):
    await remember(memory_cache, "What is 12 times 7?", "84")
    assert await ask(memory_cache, "What is 12 times 8?") is None
    assert await ask(memory_cache, "What's 12 times 7?") is not None


async def test_routes_without_semantic_caching_only_match_exactly(memory_cache):
    exact_only = RouteCfg(semantic_cache=False)
    await remember(memory_cache, "What is the capital of France?", "Paris.", route=exact_only)
    assert await ask(memory_cache, "What's the capital of France?", route=exact_only) is None


async def test_semantic_entries_expire_with_the_ttl(memory_cache):
    await remember(memory_cache, "What is the capital of France?", "Paris.")
    memory_cache.test_clock.now += 301
    assert await ask(memory_cache, "What's the capital of France?") is None


async def test_model_that_cannot_load_disables_semantic_caching_only(tmp_path, caplog):
    embedder = Embedder(functools.partial(load_minilm, model_path=tmp_path))
    c = ResponseCache(MemoryBackend(), embedder=embedder)
    with caplog.at_level(logging.ERROR, logger="apps.routing.cache.semantic"):
        assert not await embedder.warm_up()
    assert embedder.state == "failed"
    lines = [r for r in caplog.records if "semantic cache disabled" in r.getMessage()]
    assert len(lines) == 1
    await remember(c, "What is the capital of France?", "Paris.")
    assert (await ask(c, "What is the capital of France?")).kind == "hit"
    assert await ask(c, "What's the capital of France?") is None
    stats = await c.stats()
    assert stats["atp/semantic"]["errors"] == 0
    embedder.close()


async def test_lookups_do_not_wait_for_the_model_to_load(minilm):
    release = threading.Event()

    def slow_loader():
        release.wait(10)
        return minilm

    embedder = Embedder(slow_loader)
    c = ResponseCache(MemoryBackend(), embedder=embedder)
    started = time.perf_counter()
    assert await ask(c, "What is the capital of France?") is None
    assert time.perf_counter() - started < 1
    assert embedder.state == "loading"
    release.set()
    assert await embedder.warm_up()
    await remember(c, "What is the capital of France?", "Paris.")
    assert (await ask(c, "What's the capital of France?")).kind == "semantic_hit"
    embedder.close()


def test_the_model_ships_in_the_wheel():
    path = bundled_model_path()
    assert (path / "model.safetensors").is_file()
    assert (path / "modules.json").is_file()


# --- Redis: scopes shared between processes -------------------------------------------------


@pytest.fixture
async def redis_caches(minilm):
    if not REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL)")
    prefix = f"atp-test-{uuid.uuid4().hex[:12]}"
    embedder = await _ready_embedder(minilm)
    made = []

    def make():
        c = ResponseCache(RedisBackend(REDIS_URL, prefix=prefix, timeout=2), embedder=embedder)
        made.append(c)
        return c

    yield make
    for c in made:
        await c.aclose()
    client = aioredis.Redis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
    embedder.close()


@pytest.mark.redis
async def test_a_semantic_entry_stored_by_one_process_is_found_by_another(redis_caches):
    writer, reader = redis_caches(), redis_caches()
    await remember(writer, "What is the capital of France?", "Paris.")
    hit = await ask(reader, "What's the capital of France?")
    assert hit is not None and hit.kind == "semantic_hit"
    assert await ask(reader, "What's the capital of France?", tenant="t2") is None


@pytest.mark.redis
async def test_a_process_mirror_catches_up_with_only_the_new_vectors(redis_caches):
    writer, reader = redis_caches(), redis_caches()
    await remember(writer, "What is the capital of France?", "Paris.")
    assert await ask(reader, "What's the capital of France?") is not None
    [index] = reader.indexes._scopes.values()
    assert (len(index), index.seq) == (1, 1)

    await remember(writer, "What is the capital of Italy?", "Rome.")
    await remember(writer, "What is the capital of Spain?", "Madrid.")
    hit = await ask(reader, "What's the capital of Spain?")
    assert hit.response["choices"][0]["message"]["content"] == "Madrid."
    assert (len(index), index.seq) == (3, 3)
    # The writer mirrored its own stores as it went.
    assert await ask(writer, "What's the capital of Italy?") is not None


@pytest.mark.redis
async def test_a_mirror_that_missed_stores_reads_the_whole_scope(redis_caches):
    writer, reader = redis_caches(), redis_caches()
    await remember(writer, "What is the capital of France?", "Paris.")
    assert await ask(reader, "What's the capital of France?") is not None
    [(scope, index)] = reader.indexes._scopes.items()
    await remember(writer, "What is the capital of Italy?", "Rome.")
    await remember(writer, "What is the capital of Spain?", "Madrid.")
    # The reader read sequence number 2, then store 3 landed before it read the list: the
    # newest item (3) does not follow its last (1), so it reads the whole scope instead.
    await reader._refresh(scope, 2)
    assert (len(index), index.seq) == (3, 3)
    assert len(set(index.keys)) == 3
    assert await ask(reader, "What's the capital of Italy?") is not None


@pytest.mark.redis
async def test_semantic_lookup_is_two_reads_when_nothing_changed(redis_caches, monkeypatch):
    writer, reader = redis_caches(), redis_caches()
    await remember(writer, "What is the capital of France?", "Paris.")
    assert await ask(reader, "What's the capital of France?") is not None
    calls = []
    client = reader.backend.client()
    original = client.execute_command

    async def counting(*args, **kwargs):
        calls.append(args[0])
        return await original(*args, **kwargs)

    monkeypatch.setattr(client, "execute_command", counting)
    assert await ask(reader, "What is France's capital city?") is not None
    assert calls == ["MGET", "GET"]
    calls.clear()
    assert await ask(reader, "What is the capital of France?") is not None
    assert calls == ["MGET"]


async def test_concurrent_encodes_never_block_the_event_loop(memory_cache):
    await remember(memory_cache, "What is the capital of France?", "Paris.")
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    prompts = [f"Tell me a fact about the river number {i} in Europe" for i in range(8)]
    await asyncio.gather(*(ask(memory_cache, p) for p in prompts))
    task.cancel()
    assert ticks > 8


async def test_storing_the_same_request_again_keeps_one_vector(memory_cache):
    await remember(memory_cache, "What is the capital of France?", "Paris.")
    await remember(memory_cache, "What is the capital of France?", "Paris!")
    [index] = memory_cache.indexes._scopes.values()
    assert len(index) == 1
    hit = await ask(memory_cache, "What's the capital of France?")
    assert hit.response["choices"][0]["message"]["content"] == "Paris!"


def test_scope_indexes_are_bounded_per_scope_and_in_number():
    from apps.routing.cache.semantic import ScopeIndexes

    rng = np.random.default_rng(0)

    def unit():
        v = rng.standard_normal(384).astype(np.float32)
        return v / np.linalg.norm(v)

    indexes = ScopeIndexes(max_scopes=2, max_per_scope=3)
    first = indexes.get(b"a")
    vectors = [unit() for _ in range(5)]
    first.add([(2e9, bytes([i]) * 32, v) for i, v in enumerate(vectors)])
    assert len(first) == 3 and first.keys[0] == bytes([2]) * 32  # the two oldest went
    key, similarity = first.search(vectors[4], now=1e9)
    assert key == bytes([4]) * 32 and similarity > 0.999
    assert first.search(vectors[4], now=3e9) is None  # all expired
    indexes.get(b"b")
    indexes.get(b"c")
    assert len(indexes) == 2 and indexes.get(b"a", create=False) is None


def test_scope_indexes_are_bounded_in_bytes_across_scopes_least_recently_used_first():
    from apps.routing.cache.semantic import ROW_BYTES, ScopeIndexes

    rng = np.random.default_rng(1)

    def unit():
        v = rng.standard_normal(384).astype(np.float32)
        return v / np.linalg.norm(v)

    def total(indexes):
        return sum(len(i) for i in indexes._scopes.values()) * ROW_BYTES

    cap = 10 * ROW_BYTES
    indexes = ScopeIndexes(max_scopes=1000, max_per_scope=1000, max_bytes=cap)
    for tenant in range(8):
        indexes.get(f"t{tenant}".encode()).add(
            [(2e9, bytes([tenant, i]) * 16, unit()) for i in range(3)]
        )
        assert indexes.nbytes == total(indexes) <= cap
    # Scopes of 3 rows under a cap of 10: the three most recently written are kept.
    assert [s.decode() for s in indexes._scopes] == ["t5", "t6", "t7"]
    # Reading a scope makes it recent: the next write evicts another one.
    indexes.get(b"t5")
    indexes.get(b"t8").add([(2e9, bytes([8, i]) * 16, unit()) for i in range(3)])
    assert [s.decode() for s in indexes._scopes] == ["t7", "t5", "t8"]
    # One scope larger than the cap keeps its newest vectors only.
    big = indexes.get(b"big")
    vectors = [unit() for _ in range(25)]
    big.add([(2e9, bytes([99, i]) * 16, v) for i, v in enumerate(vectors)])
    assert list(indexes._scopes) == [b"big"] and len(big) == 10
    assert big.search(vectors[-1], now=1e9)[0] == bytes([99, 24]) * 16
    # Expiry, discards and resets keep the running total exact.
    big.discard(bytes([99, 24]) * 16)
    assert indexes.nbytes == total(indexes) == 9 * ROW_BYTES
    assert big.search(vectors[-1], now=3e9) is None
    assert indexes.nbytes == 0
    indexes.get(b"x").add([(2e9, b"k" * 32, unit())])
    indexes.reset(b"x")
    assert indexes.nbytes == total(indexes) == 0


async def test_the_semantic_cache_stays_within_its_byte_cap_across_tenants(minilm):
    from apps.routing.cache.semantic import ROW_BYTES

    clock = Clock()
    embedder = await _ready_embedder(minilm)
    c = ResponseCache(
        MemoryBackend(clock=clock), embedder=embedder, clock=clock, max_semantic_bytes=4 * ROW_BYTES
    )
    try:
        for tenant in range(12):
            await remember(c, "What is the capital of France?", "Paris.", tenant=f"t{tenant}")
            assert c.indexes.nbytes <= 4 * ROW_BYTES
        assert len(c.indexes) == 4
        # The most recent tenants still get semantic hits; the first ones' vectors were
        # dropped (their exact entries remain in the answer store).
        recent = await ask(c, "What's the capital of France?", tenant="t11")
        assert recent is not None and recent.kind == "semantic_hit"
        assert await ask(c, "What's the capital of France?", tenant="t0") is None
        exact = await ask(c, "What is the capital of France?", tenant="t0")
        assert exact is not None and exact.kind == "hit"
    finally:
        embedder.close()


async def test_store_reuses_the_embedding_computed_by_the_lookup(memory_cache, minilm):
    calls = []

    def counting(text):
        calls.append(text)
        return minilm(text)

    c = ResponseCache(MemoryBackend(), embedder=await _ready_embedder(counting))
    request = body("What is the capital of France?", model="atp/semantic", stream=True)
    policy = policy_for(RouteCfg(), request, {})
    assert await c.lookup(policy, "t1", "gpt-x", request) is None
    upstream = {k: v for k, v in request.items() if k not in ("model", "stream")}
    assert await c.store(
        policy,
        "t1",
        "gpt-x",
        upstream,
        completion("Paris."),
        model="gpt-x",
        provider="p",
        cost=Decimal(0),
    )
    assert calls == ["What is the capital of France?"]
    assert (await ask(c, "What's the capital of France?")).kind == "semantic_hit"
    c.embedder.close()


# --- through the gateway: the pipeline's use of the cache -----------------------------------


@pytest.fixture
async def semantic_route(gateway, minilm):
    """A route with the semantic cache on, served by the simulator, with the real model."""

    await sync_to_async(route_create)(
        name="team/faq",
        candidates=["sim-fast"],
        strategy="ordered",
        cache_ttl_seconds=60,
        semantic_cache=True,
    )
    reset_engine()
    shared = cache.build_from_settings()
    shared.embedder = await _ready_embedder(minilm)
    previous = cache.use(shared)
    yield gateway
    await shared.aclose()
    cache.use(previous)
    reset_engine()


def _chat(text, **extra):
    return {
        "model": "team/faq",
        "temperature": 0,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


@pytest.mark.django_db(transaction=True)
async def test_gateway_answers_a_paraphrase_from_the_semantic_cache(semantic_route):

    key = semantic_route.key
    first = await call(
        "POST", "/v1/chat/completions", key=key, json=_chat("What is the capital of France?")
    )
    assert first.status == 200, first.body
    assert first.headers["x-atp-cache"] == "miss"
    await cache.default().drain()
    second = await call(
        "POST", "/v1/chat/completions", key=key, json=_chat("What's the capital of France?")
    )
    assert second.status == 200, second.body
    assert second.headers["x-atp-cache"] == "semantic_hit"
    assert float(second.headers["x-atp-cache-similarity"]) > 0.92
    assert Decimal(second.headers["x-atp-cost-usd"]) == 0
    answer = first.json()["choices"][0]["message"]["content"]
    assert second.json()["choices"][0]["message"]["content"] == answer
    unrelated = await call(
        "POST",
        "/v1/chat/completions",
        key=key,
        json=_chat("How do I bake sourdough bread at home?"),
    )
    assert unrelated.headers["x-atp-cache"] == "miss"


@pytest.mark.django_db(transaction=True)
async def test_gateway_never_serves_another_tenants_cached_answer(semantic_route):

    def other_key():
        tenant = Tenant.objects.create(slug="globex", name="Globex")
        raw = generate_api_key()
        ApiKey.objects.create(
            tenant=tenant, name="k", prefix=visible_prefix(raw), key_hash=hash_key(raw)
        )
        config_version.bump()
        return raw

    outsider = await sync_to_async(other_key)()
    request = _chat("What is the capital of France?")
    await call("POST", "/v1/chat/completions", key=semantic_route.key, json=request)
    await cache.default().drain()
    same = await call("POST", "/v1/chat/completions", key=semantic_route.key, json=request)
    assert same.headers["x-atp-cache"] == "hit"
    theirs = await call("POST", "/v1/chat/completions", key=outsider, json=request)
    assert theirs.status == 200, theirs.body
    assert theirs.headers["x-atp-cache"] == "miss"


@pytest.mark.django_db(transaction=True)
async def test_gateway_stores_a_streamed_answer_and_replays_it(semantic_route):

    key = semantic_route.key
    streamed = await call(
        "POST",
        "/v1/chat/completions",
        key=key,
        json=_chat("Name three rivers in Europe.", stream=True),
    )
    assert streamed.status == 200 and streamed.headers["x-atp-cache"] == "miss"
    frames = [orjson.loads(f) for f in streamed.sse() if f != b"[DONE]"]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in frames if c["choices"])
    await cache.default().drain()
    again = await call(
        "POST", "/v1/chat/completions", key=key, json=_chat("Name three rivers in Europe.")
    )
    assert again.headers["x-atp-cache"] == "hit"
    assert again.json()["choices"][0]["message"]["content"] == text
