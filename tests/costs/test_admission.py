"""Admission without the data plane: reservations, headers, periods and Redis failures."""

from __future__ import annotations

import dataclasses
import socket
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from apps.costs import admission
from apps.costs import limits as L
from apps.costs.counters import RedisCounters
from apps.costs.pricing import Prices


def _rule(kind: str, limit: int, level: str = "key") -> L.Rule:
    # Unique counters: with REDIS_URL set they live in the shared Redis.
    return L.Rule(kind, f"{kind}:test-{uuid.uuid4().hex}:{level}", limit, level, f"{level} 'x'")


def _budget(limit_usd: str, action: str = "block", period: str = "daily") -> L.BudgetRule:
    return L.BudgetRule(
        id=uuid.uuid4().hex,
        name="b",
        level="tenant",
        label="tenant 'x'",
        limit=L.usd_to_units(Decimal(limit_usd)),
        limit_usd=Decimal(limit_usd),
        period=period,
        tz="UTC",
        action=action,
        downgrade_to="cheap",
        thresholds=(50.0, 100.0),
    )


@pytest.fixture(autouse=True)
def _fresh():
    admission.set_counters(None)
    yield
    admission.set_counters(None)


def test_the_ask_is_the_most_expensive_candidate_at_max_output():
    cheap = Prices(Decimal("1"), Decimal("2"))
    dear = Prices(Decimal("10"), Decimal("30"), reasoning=Decimal("60"))
    ask = admission.ask_for(100, 50, [cheap, dear])
    assert ask.tokens == 150
    # 100 x $10/M + 50 x $60/M (reasoning bills above output) = $0.004
    assert ask.cost_units == L.usd_to_units(Decimal("0.004"))


def test_reset_times_read_like_openais():
    assert admission._duration(20) == "20ms"
    assert admission._duration(1000) == "1s"
    assert admission._duration(42_118) == "42.118s"
    assert admission._duration(360_000) == "6m0s"
    assert admission._duration(3_723_000) == "1h2m3s"


def test_periods_follow_the_calendar_in_the_time_zone():
    paris = ZoneInfo("Europe/Paris")
    now = datetime(2026, 3, 29, 12, 0, tzinfo=paris).timestamp()  # the day clocks go forward
    start, end = L.period_bounds("daily", "Europe/Paris", now)
    assert datetime.fromtimestamp(start, paris) == datetime(2026, 3, 29, tzinfo=paris)
    assert end - start == 23 * 3600  # a 23-hour day
    start, end = L.period_bounds("weekly", "UTC", datetime(2026, 12, 3, 9, tzinfo=UTC).timestamp())
    assert datetime.fromtimestamp(start, UTC) == datetime(2026, 11, 30, tzinfo=UTC)  # a Monday
    start, end = L.period_bounds(
        "monthly", "UTC", datetime(2026, 12, 31, 23, tzinfo=UTC).timestamp()
    )
    assert datetime.fromtimestamp(end, UTC) == datetime(2027, 1, 1, tzinfo=UTC)
    assert L.period_bounds("total", "UTC", 1e9) == (0.0, None)


async def test_the_tightest_rule_fills_the_headers_and_refusal_names_it():
    limits = L.KeyLimits(rules=(_rule("requests", 5, "tenant"), _rule("requests", 2, "key")))
    first = await admission.admit(limits, "r1", admission.Ask())
    headers = dict(first.headers)
    assert headers[b"x-ratelimit-limit-requests"] == b"2"
    assert headers[b"x-ratelimit-remaining-requests"] == b"1"
    await admission.admit(limits, "r2", admission.Ask())
    with pytest.raises(admission.RateLimited) as caught:
        await admission.admit(limits, "r3", admission.Ask())
    err = caught.value
    assert "of the key 'x'" in err.message and err.details == {"limit": "requests", "level": "key"}
    assert 0 < err.retry_after <= 60


async def test_a_spent_budget_blocks_downgrades_or_lets_through():
    ask = admission.Ask(tokens=10, cost_units=L.usd_to_units(Decimal("0.6")))
    spent = _budget("1")
    blocking = L.KeyLimits(budgets=(spent,))
    await admission.admit(blocking, "a", ask)
    with pytest.raises(admission.BudgetExceeded) as caught:
        await admission.admit(blocking, "b", ask)
    assert (b"x-should-retry", b"false") in caught.value.headers
    assert caught.value.retry_after > 0
    downgrading = L.KeyLimits(budgets=(dataclasses.replace(spent, action="downgrade"),))
    down = await admission.admit(downgrading, "c", ask)
    assert isinstance(down, admission.Downgrade) and down.model == "cheap"
    alerting = L.KeyLimits(budgets=(dataclasses.replace(spent, action="alert"),))
    assert isinstance(await admission.admit(alerting, "d", ask), admission.Admission)


def _dead_redis() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"  # nothing listens there


async def test_redis_unreachable_fails_open_with_a_local_approximation(settings):
    settings.REDIS_URL = _dead_redis()
    settings.ATP_RATE_LIMITS_ON_REDIS_ERROR = "open"
    admission.set_counters(RedisCounters())
    limits = L.KeyLimits(rules=(_rule("requests", 1),))
    first = await admission.admit(limits, "r1", admission.Ask())
    assert isinstance(first, admission.Admission)
    with pytest.raises(admission.RateLimited):  # this process still counts
        await admission.admit(limits, "r2", admission.Ask())
    admission.settle(first, tokens_used=0, cost=Decimal(0))


async def test_redis_unreachable_fails_closed_when_asked(settings):
    settings.REDIS_URL = _dead_redis()
    settings.ATP_BUDGETS_ON_REDIS_ERROR = "closed"
    admission.set_counters(RedisCounters())
    with pytest.raises(admission.LimitsUnavailable) as caught:
        await admission.admit(L.KeyLimits(budgets=(_budget("1"),)), "r1", admission.Ask())
    assert caught.value.status == 503 and caught.value.retryable
