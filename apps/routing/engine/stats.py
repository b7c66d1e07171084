"""Observed latency and error rate per deployment, in process: the scorer's default source.

`DeploymentStatsTracker` is a `StatsProvider` (call it with a deployment id). Latency is
an exponentially weighted moving average (alpha 0.2: the last ten calls carry most of the
weight) and a p95 over the last 128 calls; the error rate is an EWMA of failures.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from apps.routing.engine.scoring import DeploymentStats

ALPHA = 0.2
WINDOW = 128


@dataclass(slots=True)
class _Series:
    ewma_ms: float
    error_rate: float
    samples: deque = field(default_factory=lambda: deque(maxlen=WINDOW))
    cached: DeploymentStats | None = None


class DeploymentStatsTracker:
    """EWMA and p95 latency and error rate per deployment id."""

    def __init__(self) -> None:
        self._series: dict[str, _Series] = {}

    def record(self, deployment_id: str, *, latency_ms: float, success: bool) -> None:
        series = self._series.get(deployment_id)
        failed = 0.0 if success else 1.0
        if series is None:
            series = self._series[deployment_id] = _Series(latency_ms, failed)
        else:
            series.ewma_ms += ALPHA * (latency_ms - series.ewma_ms)
            series.error_rate += ALPHA * (failed - series.error_rate)
        series.samples.append(latency_ms)
        series.cached = None

    def __call__(self, deployment_id: str) -> DeploymentStats | None:
        series = self._series.get(deployment_id)
        if series is None:
            return None
        if series.cached is None:
            ordered = sorted(series.samples)
            p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
            series.cached = DeploymentStats(series.ewma_ms, p95, series.error_rate)
        return series.cached
