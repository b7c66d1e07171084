"""Load balancing across the deployments of one model: the order in which to try them.

Every function takes the candidate deployments and returns all of them, best first; the
rest serve as fallbacks in that order.
- `weighted_order`: traffic spreads in proportion to `weight` (Efraimidis-Spirakis: sort by
  u^(1/w), a weighted random permutation in one pass).
- `least_in_flight_order`: fewest calls this process has open to the deployment first.
- `lowest_latency_order`: lowest observed latency (EWMA) first; deployments with no
  observation yet go first, so each gets measured.
Ties in the last two are broken by the weighted order, so equal deployments still share
traffic by weight. Deployments whose breaker this process last saw open go last in every
order (they are skipped at call time unless half-open by then).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from apps.routing.resilience import stats as observed
from apps.routing.resilience.breaker import OPEN, breaker_state
from apps.routing.snapshot import DeploymentInfo

WEIGHTED = "weighted"
LEAST_IN_FLIGHT = "least_inflight"  # the names of Route.Strategy
LOWEST_LATENCY = "lowest_latency"
STRATEGIES = (WEIGHTED, LEAST_IN_FLIGHT, LOWEST_LATENCY)

Random = Callable[[], float]


def _weighted_keys(deployments: Sequence[DeploymentInfo], rng: Random) -> list[float]:
    return [rng() ** (1.0 / max(d.weight, 1)) for d in deployments]


def _open_last(ordered: list[DeploymentInfo]) -> list[DeploymentInfo]:
    closed = [d for d in ordered if breaker_state(d.id) != OPEN]
    if len(closed) == len(ordered):
        return ordered
    return closed + [d for d in ordered if breaker_state(d.id) == OPEN]


def weighted_order(
    deployments: Sequence[DeploymentInfo], *, rng: Random = random.random
) -> list[DeploymentInfo]:
    if len(deployments) <= 1:
        return list(deployments)
    keys = _weighted_keys(deployments, rng)
    order = sorted(range(len(deployments)), key=keys.__getitem__, reverse=True)
    return _open_last([deployments[i] for i in order])


def least_in_flight_order(
    deployments: Sequence[DeploymentInfo], *, rng: Random = random.random
) -> list[DeploymentInfo]:
    if len(deployments) <= 1:
        return list(deployments)
    keys = _weighted_keys(deployments, rng)

    def in_flight(i: int) -> int:
        stats = observed.peek(deployments[i].id)
        return stats.in_flight if stats is not None else 0

    order = sorted(range(len(deployments)), key=lambda i: (in_flight(i), -keys[i]))
    return _open_last([deployments[i] for i in order])


def lowest_latency_order(
    deployments: Sequence[DeploymentInfo], *, rng: Random = random.random
) -> list[DeploymentInfo]:
    if len(deployments) <= 1:
        return list(deployments)
    keys = _weighted_keys(deployments, rng)

    def latency(i: int) -> float:
        stats = observed.peek(deployments[i].id)
        if stats is None or stats.latency_ewma_ms is None:
            return -1.0  # unmeasured: try it so it gets measured
        return stats.latency_ewma_ms

    order = sorted(range(len(deployments)), key=lambda i: (latency(i), -keys[i]))
    return _open_last([deployments[i] for i in order])


_ORDERS = {
    WEIGHTED: weighted_order,
    LEAST_IN_FLIGHT: least_in_flight_order,
    LOWEST_LATENCY: lowest_latency_order,
}


def order(
    deployments: Sequence[DeploymentInfo],
    strategy: str = WEIGHTED,
    *,
    rng: Random = random.random,
) -> list[DeploymentInfo]:
    """The try order for `strategy` (one of STRATEGIES)."""
    try:
        fn = _ORDERS[strategy]
    except KeyError:
        raise ValueError(f"unknown load-balancing strategy {strategy!r}") from None
    return fn(deployments, rng=rng)
