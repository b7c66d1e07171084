"""Retry policy: which upstream failures are retried, and how long to wait before each retry.

Waits grow exponentially (100 ms, 200 ms, 400 ms, ... by default) with +/-25% jitter so
that callers failing together do not retry together, capped at 30 s and by the request's
remaining latency budget. The clock, the sleep and the random source are injectable so
tests can assert exact waits without waiting.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from atp_site.lib.errors import ATPError

# Upstream statuses that say the request itself is wrong or ATP may not make it: retrying
# the same bytes cannot help (https://www.rfc-editor.org/rfc/rfc9110#name-client-error-4xx).
NEVER_RETRIED_UPSTREAM_STATUSES = frozenset({400, 401, 403, 404, 405, 409, 413, 415, 422})
# Error codes that are refusals rather than failures.
NEVER_RETRIED_CODES = frozenset(
    {"content_filter", "content_policy_violation", "upstream_auth_error", "upstream_bad_request"}
)


def is_retryable(err: ATPError) -> bool:
    """Timeouts, 5xx, 429 and connection failures are; client errors, auth failures and
    content-policy refusals are not, whatever flag the adapter set."""
    if not err.retryable:
        return False
    if err.code in NEVER_RETRIED_CODES:
        return False
    upstream = getattr(err, "upstream_status", None)
    return upstream not in NEVER_RETRIED_UPSTREAM_STATUSES


def is_deployment_fault(err: ATPError) -> bool:
    """True when the failure is the deployment's, not the caller's: worth a fallback to
    another deployment and counted by its circuit breaker. Retryable failures are, and so
    are non-retryable server-side answers (ATP's upstream credential refused, the model
    unknown upstream: 502). A 4xx is the caller's request and goes back to the caller."""
    return is_retryable(err) or err.status >= 500


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often to try one deployment and how long to wait between tries.

    `max_attempts` counts tries in total (2: one call and one retry). Delays are in
    seconds; `jitter` is the +/- fraction applied to each computed delay.
    """

    max_attempts: int = 2
    initial_backoff: float = 0.1
    multiplier: float = 2.0
    max_backoff: float = 30.0
    jitter: float = 0.25
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)
    sleep: Callable[[float], Awaitable[None]] = field(default=_sleep, compare=False)
    random: Callable[[], float] = field(default=random.random, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < 0:
            raise ValueError("backoff must not be negative")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    @classmethod
    def from_settings(cls, **injected: Any) -> RetryPolicy:
        """The project default (ATP_RETRY_*)."""
        return cls(
            max_attempts=settings.ATP_RETRY_MAX_ATTEMPTS,
            initial_backoff=settings.ATP_RETRY_INITIAL_BACKOFF_MS / 1000,
            multiplier=settings.ATP_RETRY_MULTIPLIER,
            max_backoff=settings.ATP_RETRY_MAX_BACKOFF_MS / 1000,
            jitter=settings.ATP_RETRY_JITTER,
            **injected,
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None, **injected: Any) -> RetryPolicy:
        """A route's `retry` object (max_attempts, initial_backoff_ms, multiplier,
        max_backoff_ms, jitter); missing keys take the ATP_RETRY_* defaults."""
        base = cls.from_settings(**injected)
        if not config:
            return base
        unknown = set(config) - {
            "max_attempts",
            "initial_backoff_ms",
            "multiplier",
            "max_backoff_ms",
            "jitter",
        }
        if unknown:
            raise ValueError(f"unknown retry settings: {', '.join(sorted(unknown))}")

        def number(key: str, default: float) -> float:
            value = config.get(key)
            if value is None:
                return default
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"retry.{key} must be a number")
            return float(value)

        max_attempts = number("max_attempts", base.max_attempts)
        if max_attempts != int(max_attempts):
            raise ValueError("retry.max_attempts must be a whole number")
        return cls(
            max_attempts=int(max_attempts),
            initial_backoff=number("initial_backoff_ms", base.initial_backoff * 1000) / 1000,
            multiplier=number("multiplier", base.multiplier),
            max_backoff=number("max_backoff_ms", base.max_backoff * 1000) / 1000,
            jitter=number("jitter", base.jitter),
            clock=base.clock,
            sleep=base.sleep,
            random=base.random,
        )

    def backoff(self, retry: int) -> float:
        """The jittered wait before retry number `retry` (1 for the first retry)."""
        base = min(self.max_backoff, self.initial_backoff * self.multiplier ** (retry - 1))
        spread = 1.0 + self.jitter * (2.0 * self.random() - 1.0)
        return min(self.max_backoff, base * spread)

    def delay(
        self, retry: int, *, remaining: float, retry_after: float | None = None
    ) -> float | None:
        """How long to wait before retry number `retry`, or None when it must not happen.

        No retry past `max_attempts`; none when the wait would reach the end of the
        request's budget (`remaining` seconds), since a retry then has no time to answer;
        an upstream's `retry_after` is honoured (waited at least) when it fits within both
        the budget and `max_backoff`, and otherwise means "try another deployment".
        """
        if retry >= self.max_attempts:
            return None
        wait = self.backoff(retry)
        if retry_after is not None:
            if retry_after > self.max_backoff:
                return None
            wait = max(wait, retry_after)
        if wait >= remaining:
            return None
        return wait
