"""What this process observed of each deployment: latency, time to first byte, errors, load.

Kept in process memory and never shared: the numbers steer load balancing, which each
process does for its own traffic, and sharing them would cost a Redis round trip per
request for little gain (the router's learned, shared statistics live elsewhere).
Latency is an exponentially weighted moving average (alpha 0.2: the last ~10 calls weigh
most) plus a p95 over the last 128 calls kept in a ring buffer; the error rate is an
EWMA of failures (alpha 0.1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

LATENCY_ALPHA = 0.2
ERROR_ALPHA = 0.1
RING_SIZE = 128


@dataclass(slots=True)
class DeploymentStats:
    """Running numbers for one deployment; every method is O(1) except `p95_ms`."""

    latency_ewma_ms: float | None = None
    first_byte_ewma_ms: float | None = None
    error_rate: float = 0.0
    in_flight: int = 0
    calls: int = 0
    failures: int = 0
    _ring: list[float] | None = None
    _next: int = 0
    _p95: float | None = None

    def started(self) -> None:
        self.in_flight += 1

    def first_byte(self, ms: float) -> None:
        prev = self.first_byte_ewma_ms
        self.first_byte_ewma_ms = ms if prev is None else prev + LATENCY_ALPHA * (ms - prev)

    def finished(self, ms: float | None, *, ok: bool) -> None:
        """One call ended; `ms` is None when it ended without a meaningful duration
        (cancelled by the caller, refused as a bad request)."""
        self.in_flight = max(0, self.in_flight - 1)
        if ms is None:
            return
        self.calls += 1
        if not ok:
            self.failures += 1
        self.error_rate += ERROR_ALPHA * ((0.0 if ok else 1.0) - self.error_rate)
        if not ok:
            return
        prev = self.latency_ewma_ms
        self.latency_ewma_ms = ms if prev is None else prev + LATENCY_ALPHA * (ms - prev)
        ring = self._ring
        if ring is None:
            ring = self._ring = []
        if len(ring) < RING_SIZE:
            ring.append(ms)
        else:
            ring[self._next] = ms
            self._next = (self._next + 1) % RING_SIZE
        self._p95 = None

    @property
    def p95_ms(self) -> float | None:
        if self._p95 is None and self._ring:
            ordered = sorted(self._ring)
            # Nearest-rank percentile.
            self._p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
        return self._p95

    def as_dict(self) -> dict[str, Any]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 1)

        return {
            "latency_ewma_ms": rounded(self.latency_ewma_ms),
            "latency_p95_ms": rounded(self.p95_ms),
            "first_byte_ewma_ms": rounded(self.first_byte_ewma_ms),
            "error_rate": round(self.error_rate, 4),
            "in_flight": self.in_flight,
            "calls": self.calls,
            "failures": self.failures,
        }


_stats: dict[str, DeploymentStats] = {}


def get(deployment_id: str) -> DeploymentStats:
    """The deployment's running numbers, created on first use."""
    stats = _stats.get(deployment_id)
    if stats is None:
        stats = _stats[deployment_id] = DeploymentStats()
    return stats


def peek(deployment_id: str) -> DeploymentStats | None:
    return _stats.get(deployment_id)


def snapshot() -> dict[str, dict[str, Any]]:
    """Every deployment this process called, by id (console, metrics)."""
    return {key: stats.as_dict() for key, stats in _stats.items()}


def reset() -> None:
    _stats.clear()
