"""The scorer's view of observed deployment behaviour: latency EWMA and p95, error rate.

The numbers are the ones the execute step records for every upstream call
(apps.routing.resilience.stats, in process); this module only presents them as the
engine's `DeploymentStats`, cached until the deployment's next recorded call, so a
decision over 200 candidates allocates nothing for deployments that saw no new traffic.
"""

from __future__ import annotations

from apps.routing.engine.scoring import DeploymentStats
from apps.routing.resilience import stats as observed


class ObservedStats:
    """A `StatsProvider` (call it with a deployment id) over the execute step's stats."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[int, DeploymentStats]] = {}

    def record(self, deployment_id: str, *, latency_ms: float, success: bool) -> None:
        """Record one call (simulations and benchmarks; the data plane records in execute)."""
        seen = observed.get(deployment_id)
        seen.started()
        seen.finished(latency_ms, ok=success)

    def __call__(self, deployment_id: str) -> DeploymentStats | None:
        seen = observed.peek(deployment_id)
        if seen is None or seen.latency_ewma_ms is None:
            return None
        cached = self._cache.get(deployment_id)
        if cached is not None and cached[0] == seen.calls:
            return cached[1]
        view = DeploymentStats(
            ewma_latency_ms=seen.latency_ewma_ms,
            p95_latency_ms=seen.p95_ms or seen.latency_ewma_ms,
            error_rate=seen.error_rate,
        )
        self._cache[deployment_id] = (seen.calls, view)
        return view


observed_stats = ObservedStats()
