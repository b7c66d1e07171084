"""The execute step surviving failure, through the real ASGI app and fake upstreams on
127.0.0.1: retries, fallbacks (streams only before the first byte), circuit breakers, the
all-failed error, route overrides, observed statistics and load-balancing orders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime

import orjson
import pytest
from asgiref.sync import sync_to_async

from apps.costs.pricing import Prices
from apps.providers.adapters.base import Target
from apps.providers.http import close_sessions
from apps.providers.models import ModelDeployment, Provider
from apps.routing.pipeline import execute
from apps.routing.pipeline.context import RequestContext
from apps.routing.resilience import balance
from apps.routing.resilience import stats as observed
from apps.routing.resilience.backoff import RetryPolicy
from apps.routing.resilience.breaker import (
    CLOSED,
    OPEN,
    BreakerConfig,
    MemoryBreakers,
    set_breakers,
)
from apps.routing.snapshot import DeploymentInfo, holder
from atp_site.lib import config_version
from tests.fakes.openai_server import FakeOpenAI, Script
from tests.routing.conftest import call

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = {"model": "gpt-x", "messages": [{"role": "user", "content": "Hello there"}]}
UPSTREAM_KEY = "sk-fake-test-key"


class Clock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
async def _close_upstream_sessions():
    yield
    await close_sessions()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def breakers(clock):
    """In-memory breakers with a small threshold and an injected clock."""
    config = BreakerConfig(
        window=30, min_requests=3, failure_rate=0.5, cooldown=10, half_open_probes=1
    )
    made = MemoryBreakers(config, clock=clock)
    set_breakers(made)
    yield made
    set_breakers(None)


@pytest.fixture
async def fakes():
    async with FakeOpenAI() as first, FakeOpenAI() as second:
        yield first, second


def _add_upstream(name: str, base_url: str, weight: int, **provider_fields) -> ModelDeployment:
    provider = Provider(name=name, kind="openai_compatible", base_url=base_url, **provider_fields)
    provider.set_api_key(UPSTREAM_KEY)
    provider.save()
    return ModelDeployment.objects.create(
        provider=provider,
        public_name="gpt-x",
        upstream_model="gpt-4o-mini",
        weight=weight,
        input_price=Decimal("1"),
        output_price=Decimal("2"),
        capabilities=["chat", "streaming"],
    )


@dataclass
class Pair:
    first: FakeOpenAI
    second: FakeOpenAI
    a: ModelDeployment
    b: ModelDeployment
    key: str

    def __iter__(self):
        return iter((self.first, self.second, self.a, self.b))


@pytest.fixture
async def pair(gateway, fakes) -> Pair:
    """`gpt-x` served by two upstreams; `primary` (weight 10^6) is nearly always first."""
    first, second = fakes

    def build():
        a = _add_upstream("primary", first.base_url, 1_000_000, first_byte_timeout=1.0)
        b = _add_upstream("secondary", second.base_url, 1)
        config_version.bump()
        return a, b

    a, b = await sync_to_async(build)()
    holder.invalidate()
    return Pair(first, second, a, b, gateway.key)


def chat_requests(fake: FakeOpenAI) -> int:
    return len(fake.bodies("/chat/completions"))


def error_of(resp) -> dict:
    body = resp.json()
    assert set(body) == {"error"}, body
    return body["error"]


async def test_retryable_failure_is_retried_on_the_same_deployment(pair):
    first, second, *_ = pair
    first.enqueue(Script(status=503))
    resp = await call("POST", "/v1/chat/completions", json=CHAT, key=pair.key)
    assert resp.status == 200, resp.body
    assert resp.headers["x-atp-provider"] == "primary"
    assert chat_requests(first) == 2 and chat_requests(second) == 0


async def test_retries_exhausted_fall_back_to_the_next_deployment(pair):
    first, second, *_ = pair
    first.enqueue(Script(status=500), Script(status=502))
    resp = await call("POST", "/v1/chat/completions", json=CHAT, key=pair.key)
    assert resp.status == 200
    assert resp.headers["x-atp-provider"] == "secondary"
    assert chat_requests(first) == 2 and chat_requests(second) == 1


async def test_the_request_log_keeps_the_attempts_before_a_fallback(pair):
    """The request's detail page shows what failed before the answer: the logged decision
    carries every failed attempt (deployment, provider, try, status, latency)."""
    from apps.routing.models import RequestLog
    from apps.routing.writebehind import request_logs

    first, *_ = pair
    first.enqueue(Script(status=500), Script(status=502))
    resp = await call("POST", "/v1/chat/completions", json=CHAT, key=pair.key)
    assert resp.status == 200
    await request_logs.drain()
    log = await RequestLog.objects.aget(request_id=resp.headers["x-request-id"])
    attempts = log.decision["attempts"]
    assert [(a["provider"], a["try"], a["status"]) for a in attempts] == [
        ("primary", 1, 502),
        ("primary", 2, 502),
    ]
    assert all(a["latency_ms"] >= 0 for a in attempts)
    # A request served at once logs no attempts.
    ok = await call("POST", "/v1/chat/completions", json=CHAT, key=pair.key)
    await request_logs.drain()
    served = await RequestLog.objects.aget(request_id=ok.headers["x-request-id"])
    assert "attempts" not in (served.decision or {})


@pytest.mark.parametrize("status", [400, 422])
async def test_client_error_is_neither_retried_nor_falls_back(pair, status):
    first, second, *_ = pair
    first.enqueue(Script(status=status, error="Invalid 'messages'."))
    resp = await call("POST", "/v1/chat/completions", json=CHAT, key=pair.key)
    assert resp.status == 400
    err = error_of(resp)
    assert err["code"] == "upstream_bad_request" and err["retryable"] is False
    assert chat_requests(first) == 1 and chat_requests(second) == 0


async def test_auth_failure_is_not_retried_but_falls_back(pair):
    first, second, *_ = pair
    first.enqueue(Script(status=401))
    resp = await call("POST", "/v1/chat/completions", json=CHAT, key=pair.key)
    assert resp.status == 200
    assert resp.headers["x-atp-provider"] == "secondary"
    assert chat_requests(first) == 1


async def test_every_candidate_failing_gives_one_error_listing_the_attempts(pair):
    first, second, *_ = pair
    first.default = Script(status=500)
    second.default = Script(status=503, retry_after=0.01)
    resp = await call("POST", "/v1/chat/completions", json=CHAT, key=pair.key)
    assert resp.status == 503
    assert resp.headers["content-type"] == "application/json"
    err = error_of(resp)
    assert err["retryable"] is True and err["code"] == "upstream_unavailable"
    assert err["retry_after"] == pytest.approx(0.01)
    attempts = err["atp"]["attempts"]
    assert [(a["provider"], a["try"], a["status"]) for a in attempts] == [
        ("primary", 1, 502),
        ("primary", 2, 502),
        ("secondary", 1, 503),
        ("secondary", 2, 503),
    ]
    assert all(a["deployment"] == "gpt-x" and a["retryable"] for a in attempts)
    assert "4 attempt(s) on 2 deployment(s)" in err["message"]
    assert UPSTREAM_KEY not in resp.body.decode()


async def test_every_candidate_rate_limited_gives_429_with_the_earliest_retry_after(pair):
    first, second, *_ = pair
    # Hints longer than the retry policy's ceiling are not waited: the next candidate is
    # tried at once.
    first.default = Script(status=429, retry_after=45)
    second.default = Script(status=429, retry_after=40)
    resp = await call("POST", "/v1/chat/completions", json=CHAT, key=pair.key)
    assert resp.status == 429, resp.body
    assert resp.headers["retry-after"] == "40"
    err = error_of(resp)
    assert err["type"] == "rate_limit_error" and err["code"] == "upstream_rate_limited"
    assert err["retryable"] is True and err["retry_after"] == 40
    assert [a["status"] for a in err["atp"]["attempts"]] == [429, 429]
    anthropic = await call(
        "POST",
        "/v1/messages",
        key=pair.key,
        json={"model": "gpt-x", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]},
    )
    assert anthropic.status == 429 and anthropic.headers["retry-after"] == "40"
    assert anthropic.json()["error"]["type"] == "rate_limit_error"


async def test_rate_limits_without_a_hint_get_the_default_retry_after(pair, settings):
    settings.ATP_RETRY_AFTER_DEFAULT_SECONDS = 2
    first, second, *_ = pair
    first.default = Script(status=429)
    second.default = Script(status=429)
    resp = await call("POST", "/v1/chat/completions", json=CHAT, key=pair.key)
    assert resp.status == 429 and resp.headers["retry-after"] == "2"
    assert error_of(resp)["retry_after"] == 2


async def test_a_rate_limit_and_an_outage_together_give_503(pair):
    first, second, *_ = pair
    first.default = Script(status=429, retry_after=45)
    second.default = Script(status=503)
    resp = await call("POST", "/v1/chat/completions", json=CHAT, key=pair.key)
    assert resp.status == 503
    err = error_of(resp)
    assert err["code"] == "upstream_unavailable" and err["type"] == "upstream_error"
    assert resp.headers["retry-after"] == "45"


async def test_retry_after_in_milliseconds_or_as_a_date_is_understood(pair, settings):
    settings.ATP_RETRY_MAX_ATTEMPTS = 1
    first, second, *_ = pair
    first.default = Script(status=429, headers={"retry-after-ms": "45000"})
    second.default = Script(
        status=429,
        headers={
            "retry-after": format_datetime(datetime.now(UTC) + timedelta(seconds=50), usegmt=True)
        },
    )
    resp = await call("POST", "/v1/chat/completions", json=CHAT, key=pair.key)
    assert resp.status == 429 and resp.headers["retry-after"] == "45"
    hints = [a["retry_after"] for a in error_of(resp)["atp"]["attempts"]]
    assert hints[0] == 45 and 45 < hints[1] <= 50


async def test_an_exhausted_upstream_quota_falls_back_and_is_not_a_rate_limit(pair):
    first, second, *_ = pair
    quota = {
        "error": {
            "message": "You exceeded your current quota.",
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        }
    }
    first.enqueue(Script(status=429, error=quota))
    resp = await call("POST", "/v1/chat/completions", json=CHAT, key=pair.key)
    assert resp.status == 200 and resp.headers["x-atp-provider"] == "secondary"
    assert chat_requests(first) == 1
    first.default = Script(status=429, error=quota)
    second.default = Script(status=429, error=quota)
    resp = await call("POST", "/v1/chat/completions", json=CHAT, key=pair.key)
    assert resp.status == 502 and "retry-after" not in resp.headers
    err = error_of(resp)
    assert err["code"] == "upstream_quota_exhausted" and err["retryable"] is False


async def test_timeouts_everywhere_give_504(pair):
    first, second, a, b = pair
    await sync_to_async(Provider.objects.filter(pk=b.provider_id).update)(first_byte_timeout=0.2)
    await sync_to_async(config_version.bump)()
    first.default = Script(delay=3)
    second.default = Script(delay=3)
    resp = await call("POST", "/v1/chat/completions", json=CHAT, key=pair.key, wait=10)
    assert resp.status == 504
    err = error_of(resp)
    assert err["code"] == "upstream_timeout" and err["type"] == "timeout_error"
    assert err["retryable"] is True and len(err["atp"]["attempts"]) == 4


async def test_stream_falls_back_before_the_first_byte(pair):
    first, second, *_ = pair
    first.default = Script(status=503)
    second.enqueue(Script(text="from the second upstream"))
    body = {**CHAT, "stream": True}
    resp = await call("POST", "/v1/chat/completions", json=body, key=pair.key)
    assert resp.status == 200
    assert resp.headers["x-atp-provider"] == "secondary"
    events = resp.sse()
    assert events[-1] == b"[DONE]"
    text = "".join(
        (c["choices"][0]["delta"].get("content") or "")
        for c in map(orjson.loads, events[:-1])
        if c["choices"]
    )
    assert text == "from the second upstream"
    assert chat_requests(first) == 2


async def test_stream_does_not_fall_back_after_its_first_chunk(pair):
    first, second, *_ = pair
    first.enqueue(Script(text="one two three four five six", break_after=3))
    body = {**CHAT, "stream": True}
    resp = await call("POST", "/v1/chat/completions", json=body, key=pair.key)
    assert resp.status == 200 and resp.headers["x-atp-provider"] == "primary"
    events = resp.sse()
    assert b"[DONE]" not in events
    assert orjson.loads(events[-1])["error"]["retryable"] is True
    assert chat_requests(first) == 1 and chat_requests(second) == 0
    # The break after the first chunk still counts against the deployment.
    seen = observed.peek(str(pair.a.id))
    assert seen.failures == 1 and seen.in_flight == 0 and seen.first_byte_ewma_ms is not None


async def test_open_breaker_skips_the_deployment(pair, breakers):
    first, second, a, _ = pair
    first.default = Script(status=500)
    # Two failing requests: the primary's third failed call opens its breaker.
    for _ in range(2):
        resp = await call("POST", "/v1/chat/completions", json=CHAT, key=pair.key)
        assert resp.status == 200 and resp.headers["x-atp-provider"] == "secondary"
    assert breakers.peek(str(a.id)) == OPEN
    # The third failed call opened it, and no retry followed on an open breaker.
    calls = chat_requests(first)
    assert calls == 3
    resp = await call("POST", "/v1/chat/completions", json=CHAT, key=pair.key)
    assert resp.status == 200 and resp.headers["x-atp-provider"] == "secondary"
    assert chat_requests(first) == calls  # not even tried


async def test_all_breakers_open_gives_503_with_time_to_half_open(pair, breakers, clock):
    first, second, a, b = pair
    for dep in (a, b):
        for _ in range(3):
            await breakers.record(str(dep.id), ok=False)
    clock.now += 4
    resp = await call("POST", "/v1/chat/completions", json=CHAT, key=pair.key)
    assert resp.status == 503
    err = error_of(resp)
    assert err["code"] == "circuit_open" and err["retryable"] is True
    assert err["retry_after"] == pytest.approx(6.0)
    assert [x["skipped"] for x in err["atp"]["attempts"]] == ["circuit_open", "circuit_open"]
    assert chat_requests(first) == 0 and chat_requests(second) == 0
    stream = await call("POST", "/v1/chat/completions", json={**CHAT, "stream": True}, key=pair.key)
    assert stream.status == 503 and error_of(stream)["code"] == "circuit_open"


async def test_half_open_probe_success_closes_the_breaker(pair, breakers, clock):
    first, second, a, _ = pair
    for _ in range(3):
        await breakers.record(str(a.id), ok=False)
    clock.now += 10
    resp = await call("POST", "/v1/chat/completions", json=CHAT, key=pair.key)
    assert resp.status == 200 and resp.headers["x-atp-provider"] == "primary"
    assert breakers.peek(str(a.id)) == CLOSED


async def test_failed_probe_is_not_retried_and_reopens(pair, breakers, clock):
    first, second, a, _ = pair
    for _ in range(3):
        await breakers.record(str(a.id), ok=False)
    clock.now += 10
    first.enqueue(Script(status=503))
    resp = await call("POST", "/v1/chat/completions", json=CHAT, key=pair.key)
    assert resp.status == 200 and resp.headers["x-atp-provider"] == "secondary"
    assert chat_requests(first) == 1
    assert breakers.peek(str(a.id)) == OPEN


async def test_outcomes_feed_the_observed_statistics(pair):
    first, second, a, b = pair
    first.enqueue(Script(status=503))
    await call("POST", "/v1/chat/completions", json=CHAT, key=pair.key)
    body = {**CHAT, "stream": True}
    await call("POST", "/v1/chat/completions", json=body, key=pair.key)
    seen = observed.peek(str(a.id))
    assert seen.calls == 3 and seen.failures == 1 and seen.in_flight == 0
    assert seen.latency_ewma_ms > 0 and seen.p95_ms > 0
    assert seen.first_byte_ewma_ms is not None
    assert observed.snapshot()[str(a.id)]["calls"] == 3


# -- the step called directly, with an injected clock and sleep ---------------------------


async def _candidates() -> list[DeploymentInfo]:
    snap = await holder.get()
    return sorted(snap.models["gpt-x"], key=lambda d: -d.weight)


def _injected(clock: Clock, slept: list[float], **kw) -> RetryPolicy:
    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    return RetryPolicy(clock=clock, sleep=sleep, random=lambda: 0.5, **kw)


async def test_retry_waits_follow_the_policy_exactly(pair):
    first, second, *_ = pair
    first.enqueue(Script(status=503), Script(status=500), Script(status=429))
    clock, slept = Clock(), []
    overrides = execute.Overrides(retry=_injected(clock, slept, max_attempts=4))
    ctx = RequestContext(request_id="r1", endpoint="chat.completions", requested_model="gpt-x")
    result = await execute.chat(ctx, await _candidates(), dict(CHAT), overrides)
    assert result.response["choices"]
    assert slept == pytest.approx([0.1, 0.2, 0.4])
    assert [a["try"] for a in ctx.attempts] == [1, 2, 3]


async def test_upstream_retry_after_is_waited(pair):
    first, *_ = pair
    first.enqueue(Script(status=429, retry_after=2))
    clock, slept = Clock(), []
    overrides = execute.Overrides(retry=_injected(clock, slept))
    ctx = RequestContext(request_id="r2", endpoint="chat.completions", requested_model="gpt-x")
    await execute.chat(ctx, await _candidates(), dict(CHAT), overrides)
    assert slept == [2.0]
    assert ctx.deployment.provider_name == "primary"


async def test_backoff_longer_than_the_budget_falls_back_at_once(pair):
    first, second, *_ = pair
    first.enqueue(Script(status=503))
    clock, slept = Clock(), []
    policy = _injected(clock, slept, initial_backoff=5.0)
    overrides = execute.Overrides(retry=policy, budget=3.0)
    ctx = RequestContext(request_id="r3", endpoint="chat.completions", requested_model="gpt-x")
    await execute.chat(ctx, await _candidates(), dict(CHAT), overrides)
    assert slept == []
    assert ctx.deployment.provider_name == "secondary"


async def test_an_exhausted_budget_stops_further_fallbacks(pair):
    first, second, *_ = pair
    first.default = Script(status=503)
    clock, slept = Clock(), []

    async def slow_sleep(seconds: float) -> None:
        # The wait, and then a retry that took a second of the budget itself.
        slept.append(seconds)
        clock.now += seconds + 1.0

    policy = RetryPolicy(clock=clock, sleep=slow_sleep, random=lambda: 0.5, initial_backoff=1.0)
    overrides = execute.Overrides(retry=policy, budget=1.2)
    ctx = RequestContext(request_id="r4", endpoint="chat.completions", requested_model="gpt-x")
    with pytest.raises(execute.UpstreamError) as info:
        await execute.chat(ctx, await _candidates(), dict(CHAT), overrides)
    assert slept == [1.0]
    err = info.value
    assert err.status == 504 and err.retryable and "latency budget" in err.message
    assert chat_requests(first) == 2 and chat_requests(second) == 0


async def test_route_timeout_overrides_replace_the_providers(pair):
    first, second, *_ = pair
    first.default = Script(delay=3)
    second.default = Script(delay=3)
    overrides = execute.Overrides.from_route({"max_attempts": 1}, {"first_byte": 0.2, "connect": 1})
    ctx = RequestContext(request_id="r5", endpoint="chat.completions", requested_model="gpt-x")
    with pytest.raises(execute.UpstreamError) as info:
        await execute.chat(ctx, await _candidates(), dict(CHAT), overrides)
    assert info.value.status == 504
    assert [a["latency_ms"] < 1500 for a in ctx.attempts] == [True, True]


def test_route_overrides_are_validated():
    with pytest.raises(ValueError):
        execute.Overrides.from_route(None, {"first_byte": -1})
    with pytest.raises(ValueError):
        execute.Overrides.from_route(None, {"read": 5})
    with pytest.raises(ValueError):
        execute.Overrides.from_route({"max_attempts": 0}, None)
    assert execute.Overrides.from_route({}, {}) == execute.Overrides()


# -- load balancing ---------------------------------------------------------------------------


def _dep(name: str, weight: int = 1) -> DeploymentInfo:
    return DeploymentInfo(
        id=f"lb-{name}",
        public_name="m",
        aliases=(),
        provider_id=name,
        provider_name=name,
        target=Target(
            provider_id=name, provider_name=name, kind="simulator", base_url="", upstream_model="m"
        ),
        prices=Prices(input=Decimal(0), output=Decimal(0)),
        capabilities=frozenset(),
        context_window=1000,
        weight=weight,
        region="",
        quality=0.5,
        created=0,
    )


@pytest.fixture
def fresh_stats():
    observed.reset()
    yield
    observed.reset()


def test_weighted_order_spreads_first_choices_by_weight(fresh_stats):
    import random

    rng = random.Random(7).random
    deps = [_dep("a", 3), _dep("b", 1)]
    firsts = [balance.weighted_order(deps, rng=rng)[0].provider_name for _ in range(4000)]
    share = firsts.count("a") / len(firsts)
    assert 0.72 < share < 0.78  # 3 / (3 + 1)
    assert sorted(d.provider_name for d in balance.weighted_order(deps, rng=rng)) == ["a", "b"]


def test_least_in_flight_order_prefers_the_idlest(fresh_stats):
    deps = [_dep("a"), _dep("b"), _dep("c")]
    for _ in range(3):
        observed.get("lb-a").started()
    observed.get("lb-b").started()
    order = balance.order(deps, balance.LEAST_IN_FLIGHT)
    assert [d.provider_name for d in order] == ["c", "b", "a"]


def test_lowest_latency_order_prefers_the_fastest_and_measures_the_unmeasured(fresh_stats):
    deps = [_dep("slow"), _dep("fast"), _dep("new")]
    for name, ms in (("slow", 900.0), ("fast", 120.0)):
        stats = observed.get(f"lb-{name}")
        stats.started()
        stats.finished(ms, ok=True)
    order = balance.order(deps, balance.LOWEST_LATENCY)
    assert [d.provider_name for d in order] == ["new", "fast", "slow"]


def test_open_breakers_go_last_in_every_order(fresh_stats, breakers):
    deps = [_dep("a", 1_000_000), _dep("b", 1)]
    breakers._record("lb-a", False, False)
    breakers._record("lb-a", False, False)
    breakers._record("lb-a", False, False)
    for strategy in balance.STRATEGIES:
        assert balance.order(deps, strategy)[0].provider_name == "b"


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError):
        balance.order([_dep("a")], "round_robin")


def test_overrides_for_a_route_are_built_once_and_bad_settings_fall_back_to_defaults():
    from apps.routing.snapshot import RouteInfo

    route = RouteInfo(name="r", retry={"max_attempts": 3}, timeouts={"total": 30})
    first = execute.overrides_for(route)
    assert first.retry.max_attempts == 3 and first.timeouts == {"total": 30.0}
    assert execute.overrides_for(route) is first
    assert execute.overrides_for(route, budget=2.5).budget == 2.5
    broken = RouteInfo(name="bad", retry={"max_attempts": "lots"})
    assert execute.overrides_for(broken) == execute.NO_OVERRIDES
    assert execute.overrides_for(None) == execute.NO_OVERRIDES
