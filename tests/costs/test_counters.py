"""The limit counters: the same semantics in memory and in Redis (one Lua script each)."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from apps.costs.counters import (
    BUDGET,
    SLOTS,
    WINDOW,
    MemoryCounters,
    RedisCounters,
    item,
    settle_op,
)

REDIS_URL = os.environ.get("REDIS_URL", "")


@pytest.fixture(params=["memory", "redis"])
def counters(request, settings):
    if request.param == "memory":
        return MemoryCounters()
    if not REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL)")
    settings.REDIS_URL = REDIS_URL
    return RedisCounters()


def k(name: str) -> str:
    return f"atp-test:lim:{uuid.uuid4().hex}:{name}"


async def test_window_admits_up_to_its_limit_then_refuses_with_the_reset(counters):
    key = k("rpm")
    for n in range(3):
        verdict = await counters.admit(f"r{n}", [item(WINDOW, key, 3, 1, 60_000)], 1000)
        assert verdict.allowed and verdict.used == [n]
    verdict = await counters.admit("r3", [item(WINDOW, key, 3, 1, 60_000)], 1000)
    assert not verdict.allowed and verdict.refused == 0 and verdict.used == [3]
    assert 0 < verdict.reset_ms[0] <= 60_000


async def test_one_refusal_applies_nothing(counters):
    rpm, tpm = k("rpm"), k("tpm")
    items = [item(WINDOW, rpm, 10, 1, 60_000), item(WINDOW, tpm, 100, 150, 60_000)]
    verdict = await counters.admit("r", items, 1000)
    assert not verdict.allowed and verdict.refused == 1
    again = await counters.admit("r2", [item(WINDOW, rpm, 10, 1, 60_000)], 1000)
    assert again.used == [0], "the refused request must not have counted"


async def test_window_correction_moves_tokens_and_never_goes_below_zero(counters):
    tpm = k("tpm")
    await counters.admit("r", [item(WINDOW, tpm, 1000, 600, 60_000)], 1000)
    assert await counters.settle([settle_op(WINDOW, tpm, "r", -500)]) == [100]
    after = await counters.settle([settle_op(WINDOW, tpm, "r", -400)])
    assert after[0] <= 0
    verdict = await counters.admit("r2", [item(WINDOW, tpm, 1000, 1, 60_000)], 1000)
    assert verdict.used == [0]


async def test_slots_are_released_on_settle_and_expire_when_never_settled(counters):
    key = k("conc")
    assert (await counters.admit("a", [item(SLOTS, key, 2, 1, 0)], 60_000)).allowed
    assert (await counters.admit("b", [item(SLOTS, key, 2, 1, 0)], 200)).allowed
    refused = await counters.admit("c", [item(SLOTS, key, 2, 1, 0)], 60_000)
    assert not refused.allowed and refused.used == [2]
    await counters.settle([settle_op(SLOTS, key, "a", 0)])
    assert (await counters.admit("c", [item(SLOTS, key, 2, 1, 0)], 60_000)).allowed
    await asyncio.sleep(0.3)  # "b" came from a process that died: its slot expires
    assert (await counters.admit("d", [item(SLOTS, key, 2, 1, 0)], 60_000)).allowed


async def test_budget_reserves_settles_and_releases(counters):
    key = k("budget")
    seed = 300
    budget = item(BUDGET, key, 1200, 400, 86_400_000, seed)
    first = await counters.admit("a", [budget], 60_000)
    assert first.allowed and first.used == [300]
    second = await counters.admit("b", [budget], 60_000)
    assert second.allowed and second.used == [700]  # spent 300 + reserved 400
    third = await counters.admit("c", [budget], 60_000)
    assert not third.allowed and third.used == [1100]
    # "a" cost 100 of its 400: the rest is released.
    assert await counters.settle([settle_op(BUDGET, key, "a", 100, 400)]) == [400]
    if isinstance(counters, MemoryCounters):
        assert counters.spend(key) == (400, 400)
    fourth = await counters.admit("c", [budget], 60_000)
    assert fourth.allowed and fourth.used == [800]  # 400 spent + 400 held by "b"


async def test_budget_reservation_of_a_dead_process_expires(counters):
    key = k("budget")
    budget = item(BUDGET, key, 1000, 900, 86_400_000, 0)
    assert (await counters.admit("dies", [budget], 200)).allowed
    assert not (await counters.admit("waits", [budget], 60_000)).allowed
    await asyncio.sleep(0.3)
    assert (await counters.admit("waits", [budget], 60_000)).allowed


async def test_a_budget_that_only_alerts_never_refuses_but_counts(counters):
    key = k("budget")
    budget = item(BUDGET, key, -1, 700, 86_400_000, 0)
    assert (await counters.admit("a", [budget], 60_000)).allowed
    verdict = await counters.admit("b", [budget], 60_000)
    assert verdict.allowed and verdict.used == [700]
    assert await counters.settle([settle_op(BUDGET, key, "a", 700, 700)]) == [700]


async def test_many_concurrent_admissions_never_overspend(counters):
    key = k("budget")
    budget = item(BUDGET, key, 10_000, 300, 86_400_000, 0)
    verdicts = await asyncio.gather(
        *(counters.admit(f"r{i}", [budget], 60_000) for i in range(100))
    )
    admitted = [i for i, v in enumerate(verdicts) if v.allowed]
    assert len(admitted) == 33  # 33 x 300 = 9,900; one more would pass 10,000
    results = await counters.settle([settle_op(BUDGET, key, f"r{i}", 300, 300) for i in admitted])
    assert results[-1] == 9_900


async def test_large_amounts_stay_exact(counters):
    key = k("budget")
    limit = 5_000_000_000_000_123  # $50 million and a fraction, in 1e-8 USD units
    budget = item(BUDGET, key, limit, 4_999_999_999_999_999, 0, 123)
    verdict = await counters.admit("a", [budget], 60_000)
    assert verdict.allowed and verdict.used == [123]
    assert await counters.settle(
        [settle_op(BUDGET, key, "a", 4_999_999_999_999_999, 4_999_999_999_999_999)]
    ) == [5_000_000_000_000_122]
