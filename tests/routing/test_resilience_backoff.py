"""Retry policy: exact backoff timing with an injected clock, jitter bounds, budget cap,
retry_after, and which failures are never retried."""

from __future__ import annotations

import pytest

from apps.providers.adapters.base import Target, error_from_status
from apps.providers.adapters.openai import OpenAIAdapter
from apps.providers.exceptions import UpstreamError, UpstreamTimeout
from apps.routing.resilience.backoff import RetryPolicy, is_deployment_fault, is_retryable

TARGET = Target(
    provider_id="p", provider_name="up", kind="openai", base_url="http://127.0.0.1:9/v1",
    upstream_model="m",
)  # fmt: skip


def policy(**kw) -> RetryPolicy:
    return RetryPolicy(**{"max_attempts": 10, "random": lambda: 0.5, **kw})


def test_backoff_doubles_from_100ms_without_jitter_at_the_midpoint():
    p = policy()
    assert [p.backoff(n) for n in range(1, 6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6])


def test_backoff_is_capped_at_30_seconds():
    p = policy(max_attempts=20)
    assert p.backoff(9) == pytest.approx(25.6)
    assert p.backoff(10) == pytest.approx(30.0)
    assert p.backoff(15) == pytest.approx(30.0)
    # Jitter never pushes a capped wait past the cap.
    assert policy(random=lambda: 0.999999).backoff(15) == pytest.approx(30.0)


@pytest.mark.parametrize(("u", "factor"), [(0.0, 0.75), (0.25, 0.875), (0.75, 1.125), (1.0, 1.25)])
def test_jitter_spreads_by_plus_minus_25_percent(u, factor):
    assert policy(random=lambda: u).backoff(3) == pytest.approx(0.4 * factor)


def test_jitter_stays_within_bounds_with_a_real_random_source():
    p = RetryPolicy(max_attempts=5)
    waits = [p.backoff(2) for _ in range(2000)]
    assert min(waits) >= 0.15 and max(waits) <= 0.25
    assert max(waits) - min(waits) > 0.05  # it does spread


def test_delay_stops_at_max_attempts():
    p = policy(max_attempts=2)
    assert p.delay(1, remaining=10) == pytest.approx(0.1)
    assert p.delay(2, remaining=10) is None


def test_delay_never_reaches_the_remaining_budget():
    p = policy()
    assert p.delay(3, remaining=0.5) == pytest.approx(0.4)
    assert p.delay(3, remaining=0.4) is None
    assert p.delay(1, remaining=0.05) is None


def test_retry_after_is_honoured_when_it_fits_the_budget():
    p = policy()
    assert p.delay(1, remaining=10, retry_after=2.5) == pytest.approx(2.5)
    # Never sooner than the computed backoff.
    assert p.delay(4, remaining=10, retry_after=0.0) == pytest.approx(0.8)
    # Longer than the remaining budget, or than the backoff ceiling: go elsewhere instead.
    assert p.delay(1, remaining=2.0, retry_after=2.5) is None
    assert p.delay(1, remaining=100, retry_after=31) is None


async def test_injected_clock_and_sleep_give_exact_waits_without_waiting():
    now = [1000.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    p = RetryPolicy(max_attempts=4, clock=lambda: now[0], sleep=sleep, random=lambda: 0.5)
    deadline = now[0] + 1.0
    tries = 1
    while (wait := p.delay(tries, remaining=deadline - p.clock())) is not None:
        await p.sleep(wait)
        tries += 1
    assert slept == pytest.approx([0.1, 0.2, 0.4])
    assert now[0] == pytest.approx(1000.7)


def test_from_config_reads_route_retry_keys_over_the_defaults(settings):
    settings.ATP_RETRY_MAX_ATTEMPTS = 2
    p = RetryPolicy.from_config(
        {"max_attempts": 4, "initial_backoff_ms": 50, "multiplier": 3, "max_backoff_ms": 1000}
    )
    assert (p.max_attempts, p.initial_backoff, p.multiplier, p.max_backoff, p.jitter) == (
        4,
        0.05,
        3.0,
        1.0,
        0.25,
    )
    assert RetryPolicy.from_config({}) == RetryPolicy()
    assert RetryPolicy.from_config(None).max_attempts == 2


@pytest.mark.parametrize(
    "config",
    [{"max_attempts": 0}, {"max_attempts": 1.5}, {"jitter": 1.5}, {"multiplier": "x"}, {"x": 1}],
)
def test_from_config_refuses_bad_values(config):
    with pytest.raises(ValueError):
        RetryPolicy.from_config(config)


def upstream(status: int, retry_after: float | None = None) -> UpstreamError:
    return error_from_status(
        OpenAIAdapter(), TARGET, status, {"error": {"message": "x"}}, retry_after
    )


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 529, 408])
def test_server_errors_rate_limits_and_timeouts_are_retried(status):
    err = upstream(status)
    assert is_retryable(err) and is_deployment_fault(err)


def test_timeouts_and_connection_errors_are_retried():
    assert is_retryable(UpstreamTimeout("slow"))
    assert is_retryable(UpstreamError("cannot be reached", code="upstream_unreachable"))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_client_and_auth_errors_are_never_retried(status):
    assert not is_retryable(upstream(status))


def test_auth_failure_is_a_deployment_fault_but_a_bad_request_is_the_callers():
    assert is_deployment_fault(upstream(401))  # ATP's credential: try another deployment
    assert not is_deployment_fault(upstream(400))
    assert not is_deployment_fault(upstream(413))


def test_content_policy_refusal_is_never_retried_even_if_flagged_retryable():
    refusal = UpstreamError("blocked", status=400, code="content_filter", retryable=True)
    assert not is_retryable(refusal)
    assert not is_deployment_fault(refusal)
    flagged = UpstreamError("odd", retryable=True, upstream_status=401)
    assert not is_retryable(flagged)
