"""The console WebSocket's topics (the design document's admin API), who may subscribe to
each, and which part of the overview's figures it carries.

Every topic is decided by the viewer's scope (atp_site.console.live.figures.viewer_scope),
which asks apps.tenants.permissions, the same selectors as the console's pages:

    system.metrics    every tenant's request log (global traffic figures)
    system.alerts     every tenant's request log (circuits, providers down, error rate)
    providers.health  providers (view)
    costs.realtime    the request log of at least one tenant (spend of the tenants seen)
    requests.stream   the request log of at least one tenant (requests of the tenants seen)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from atp_site.console.live.figures import ViewerScope


@dataclass(frozen=True)
class Topic:
    name: str
    description: str
    allowed: Callable[[ViewerScope], bool]
    # The key of figures_for()'s result this topic carries (None: pushed as requests settle).
    figures_key: str | None


SYSTEM_METRICS = "system.metrics"
SYSTEM_ALERTS = "system.alerts"
PROVIDERS_HEALTH = "providers.health"
COSTS_REALTIME = "costs.realtime"
REQUESTS_STREAM = "requests.stream"

TOPICS: dict[str, Topic] = {
    topic.name: topic
    for topic in (
        Topic(
            SYSTEM_METRICS,
            "Requests per second, latency, time to first token, errors, tokens, cache, "
            "busiest routes and models, across every process.",
            lambda scope: scope.traffic,
            "traffic",
        ),
        Topic(
            SYSTEM_ALERTS,
            "Open circuits, providers down, a high error rate, records that cannot be kept.",
            lambda scope: scope.traffic,
            "alerts",
        ),
        Topic(
            PROVIDERS_HEALTH,
            "Each provider's latest health check and its deployments' circuits.",
            lambda scope: scope.providers,
            "providers",
        ),
        Topic(
            COSTS_REALTIME,
            "Spend and requests in the last hour, per tenant the viewer may see.",
            lambda scope: scope.tenants,
            "costs",
        ),
        Topic(
            REQUESTS_STREAM,
            "Each settled request of the tenants the viewer may see, as it is recorded.",
            lambda scope: scope.tenants,
            None,
        ),
    )
}


def topic_allowed(name: str, scope: ViewerScope) -> bool:
    topic = TOPICS.get(name)
    return topic is not None and topic.allowed(scope)
