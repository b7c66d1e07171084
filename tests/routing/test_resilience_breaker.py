"""Circuit breakers: transitions with an injected clock, in memory and through Redis, and
one breaker state seen by two separate processes on one Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from apps.routing.resilience.breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    BreakerConfig,
    MemoryBreakers,
    RedisBreakers,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIG = BreakerConfig(
    window=10.0, min_requests=4, failure_rate=0.5, cooldown=5.0, half_open_probes=1,
    sync_interval=0.0,
)  # fmt: skip

needs_redis = pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis (REDIS_URL)")


class Clock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(params=["memory", pytest.param("redis", marks=[pytest.mark.redis, needs_redis])])
def make(request):
    made = []

    def build(config: BreakerConfig = CONFIG, clock: Clock | None = None, prefix: str = ""):
        clock = clock or Clock()
        if request.param == "memory":
            breakers = MemoryBreakers(config, clock=clock)
        else:
            prefix = prefix or f"atp-test-{uuid.uuid4().hex[:8]}:breaker:"
            breakers = RedisBreakers(config, clock=clock, monotonic=clock, prefix=prefix)
        made.append(breakers)
        return breakers, clock

    yield build
    for breakers in made:
        breakers.reset_sync()


async def fail(breakers, key: str, times: int) -> None:
    for _ in range(times):
        await breakers.record(key, ok=False)


async def succeed(breakers, key: str, times: int) -> None:
    for _ in range(times):
        await breakers.record(key, ok=True)


async def test_closed_breaker_admits_and_stays_closed_below_the_minimum_requests(make):
    breakers, _ = make()
    await fail(breakers, "d1", 3)
    assert (await breakers.allow("d1")).allowed
    assert breakers.states()["d1"].state == CLOSED


async def test_closed_opens_when_the_failure_rate_crosses_the_threshold(make):
    breakers, _ = make()
    await succeed(breakers, "d1", 2)
    await fail(breakers, "d1", 1)
    assert breakers.states()["d1"].state == CLOSED  # 1 of 3: under the minimum anyway
    await fail(breakers, "d1", 1)  # 2 of 4 failed: 50%
    decision = await breakers.allow("d1")
    assert not decision.allowed
    assert decision.retry_after == pytest.approx(5.0)
    state = breakers.states()["d1"]
    assert state.state == OPEN and state.failures == 2 and state.requests == 4


async def test_a_low_failure_rate_keeps_it_closed(make):
    breakers, _ = make()
    await succeed(breakers, "d1", 7)
    await fail(breakers, "d1", 3)  # 30%
    assert (await breakers.allow("d1")).allowed
    assert breakers.states()["d1"].failure_rate == pytest.approx(0.3)


async def test_old_outcomes_leave_the_rolling_window(make):
    breakers, clock = make()
    await fail(breakers, "d1", 3)
    clock.advance(11)  # the window is 10 s
    await fail(breakers, "d1", 1)
    assert (await breakers.allow("d1")).allowed
    assert breakers.states()["d1"].failures == 1


async def test_open_goes_half_open_after_the_cooldown_and_admits_one_probe(make):
    breakers, clock = make()
    await fail(breakers, "d1", 4)
    clock.advance(4.9)
    assert not (await breakers.allow("d1")).allowed
    clock.advance(0.2)
    probe = await breakers.allow("d1")
    assert probe.allowed and probe.probe
    assert breakers.states()["d1"].state == HALF_OPEN
    # The single probe slot is taken: the next call is refused.
    assert not (await breakers.allow("d1")).allowed


async def test_half_open_closes_on_a_probe_success(make):
    breakers, clock = make()
    await fail(breakers, "d1", 4)
    clock.advance(5)
    assert (await breakers.allow("d1")).probe
    await breakers.record("d1", ok=True, probe=True)
    state = breakers.states()["d1"]
    assert state.state == CLOSED and state.requests == 0  # a fresh window
    decision = await breakers.allow("d1")
    assert decision.allowed and not decision.probe


async def test_half_open_reopens_on_a_probe_failure(make):
    breakers, clock = make()
    await fail(breakers, "d1", 4)
    clock.advance(5)
    assert (await breakers.allow("d1")).probe
    await breakers.record("d1", ok=False, probe=True)
    decision = await breakers.allow("d1")
    assert not decision.allowed and decision.retry_after == pytest.approx(5.0)
    assert breakers.states()["d1"].state == OPEN


async def test_a_probe_that_never_reports_frees_its_slot_after_its_lease(make):
    breakers, clock = make()
    await fail(breakers, "d1", 4)
    clock.advance(5)
    assert (await breakers.allow("d1")).probe
    clock.advance(5)  # the lease is one cool-down
    assert (await breakers.allow("d1")).probe


async def test_health_nudge_makes_an_open_breaker_probe_now(make):
    breakers, _ = make()
    await fail(breakers, "d1", 4)
    assert not (await breakers.allow("d1")).allowed
    breakers.nudge_sync("d1")
    assert (await breakers.allow("d1")).probe


async def test_breakers_are_independent_per_deployment(make):
    breakers, _ = make()
    await fail(breakers, "d1", 4)
    assert not (await breakers.allow("d1")).allowed
    assert (await breakers.allow("d2")).allowed


async def test_sync_failures_from_health_checks_count(make):
    breakers, _ = make()
    for _ in range(4):
        breakers.record_sync("d1", ok=False)
    assert not (await breakers.allow("d1")).allowed


@pytest.mark.redis
@needs_redis
async def test_redis_successes_are_batched_and_sent_with_the_periodic_sync():
    clock = Clock()
    prefix = f"atp-test-{uuid.uuid4().hex[:8]}:breaker:"
    config = BreakerConfig(window=10, min_requests=4, failure_rate=0.5, cooldown=5, sync_interval=1)
    mine = RedisBreakers(config, clock=clock, monotonic=clock, prefix=prefix)
    other = RedisBreakers(config, clock=clock, monotonic=clock, prefix=prefix)
    try:
        assert (await mine.allow("d1")).allowed  # first sight: one read
        await succeed(mine, "d1", 5)
        assert other.states().get("d1") is None or other.states()["d1"].successes == 0
        clock.advance(1)
        await succeed(mine, "d1", 1)  # the interval passed: one round trip carries all six
        assert other.states()["d1"].successes == 6
        # A failure is sent at once, and the other process sees the breaker open at once.
        await fail(other, "d1", 6)
        assert other.states()["d1"].state == OPEN
        assert not (await other.allow("d1")).allowed
    finally:
        mine.reset_sync()


@pytest.mark.redis
@needs_redis
async def test_redis_requests_arriving_together_share_one_periodic_sync():
    """When the interval passes under load, one request re-reads the state; the others in
    flight decide from the state last seen instead of each asking Redis (a stampede of 64
    concurrent re-reads once stalled requests for over a second at 64 connections)."""
    import asyncio

    clock = Clock()
    prefix = f"atp-test-{uuid.uuid4().hex[:8]}:breaker:"
    config = BreakerConfig(window=10, min_requests=4, failure_rate=0.5, cooldown=5, sync_interval=1)
    breakers = RedisBreakers(config, clock=clock, monotonic=clock, prefix=prefix)
    calls = []
    real_eval = breakers._eval

    async def counted(op, key, **kwargs):
        calls.append(op)
        return await real_eval(op, key, **kwargs)

    breakers._eval = counted
    try:
        # A process that has never seen the key: every caller waits for the one read.
        decisions = await asyncio.gather(*(breakers.allow("d1") for _ in range(64)))
        assert all(d.allowed for d in decisions) and calls == ["sync"]
        await asyncio.gather(*(breakers.record("d1", ok=True) for _ in range(10)))
        assert calls == ["sync"]  # successes are counted locally within the interval
        clock.advance(1)
        decisions = await asyncio.gather(
            *(breakers.allow("d1") for _ in range(64)),
            *(breakers.record("d1", ok=True) for _ in range(64)),
        )
        assert all(d.allowed for d in decisions[:64])
        assert calls == ["sync", "sync"]
        # That one re-read carried the successes counted so far; the rest go with the next.
        clock.advance(1)
        await breakers.allow("d1")
        assert calls == ["sync", "sync", "sync"]
        assert breakers.states()["d1"].successes == 74
    finally:
        breakers.reset_sync()


async def test_memory_breaker_decisions_do_no_io_when_closed():
    breakers = MemoryBreakers(CONFIG, clock=Clock())
    assert breakers.peek("unknown") == CLOSED
    assert (await breakers.allow("unknown")).allowed
    assert breakers.states() == {}


CROSS_PROCESS = textwrap.dedent(
    """
    import asyncio, sys
    import django
    django.setup()
    from apps.routing.resilience.breaker import BreakerConfig, RedisBreakers

    prefix, action = sys.argv[1], sys.argv[2]
    config = BreakerConfig(window=30, min_requests=4, failure_rate=0.5, cooldown=60,
                           sync_interval=0)
    breakers = RedisBreakers(config, prefix=prefix)

    async def main():
        if action == "fail":
            for _ in range(4):
                await breakers.record("dep-x", ok=False)
        decision = await breakers.allow("dep-x")
        state = breakers.states()["dep-x"]
        print(state.state, decision.allowed, state.failures)

    asyncio.run(main())
    """
)


def run_process(prefix: str, action: str) -> str:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "atp_site.settings"}
    result = subprocess.run(
        [sys.executable, "-c", CROSS_PROCESS, prefix, action],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.redis
@needs_redis
def test_two_processes_on_one_redis_share_one_breaker():
    prefix = f"atp-test-{uuid.uuid4().hex[:8]}:breaker:"
    try:
        assert run_process(prefix, "fail") == "open False 4"
        # A second, separate process that never saw a failure finds the breaker open.
        assert run_process(prefix, "check") == "open False 4"
    finally:
        RedisBreakers(CONFIG, prefix=prefix).reset_sync()


async def test_memory_breaker_keeps_only_the_windows_buckets():
    clock = Clock()
    breakers = MemoryBreakers(CONFIG, clock=clock)
    for _ in range(200):
        await breakers.record("d1", ok=True)
        clock.advance(CONFIG.bucket_width)
    assert len(breakers._circuits["d1"].buckets) <= 10
    # The current (empty) bucket and the nine before it.
    assert breakers.states()["d1"].successes == 9
