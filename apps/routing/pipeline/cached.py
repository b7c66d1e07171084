"""Step: the route's response cache, shared by every edge that speaks chat.

`look_up` decides the cache policy for the request and returns a hit when there is one
(recording miss or bypass on the context otherwise); `settle_hit` accounts for an answer
served from the cache (it costs nothing and is logged as a hit); `store` keeps a fresh
answer in the background. The edges only shape the answer in their own protocol.
"""

from __future__ import annotations

from typing import Any

from apps.costs.pricing import format_usd
from apps.providers.adapters.base import Usage
from apps.routing import cache
from apps.routing.pipeline.context import RequestContext
from apps.routing.pipeline.settle import ZERO, settle
from apps.routing.snapshot import RouteInfo, Snapshot
from atp_site.lib import tracing

Headers = list[tuple[bytes, bytes]]


@tracing.traced("atp.cache")
async def look_up(
    snapshot: Snapshot,
    ctx: RequestContext,
    route: RouteInfo | None,
    body: dict[str, Any],
    headers: dict,
) -> tuple[cache.CachePolicy | None, cache.CacheHit | None]:
    """The cache policy of this request on `route`, and the cached answer if any.

    An answer produced by a model this request may not reach (another key of the tenant
    may use more models, or other regions) is not served: it counts as a miss.
    """
    if route is None:
        return None, None
    policy = cache.policy_for(route, body, headers)
    if policy.lookup:
        hit = await cache.lookup(policy, ctx.key.tenant_id, route.name, body)
        if hit is not None and _reachable(snapshot, ctx, hit.model):
            return policy, hit
    if policy.enabled:
        ctx.cache = "miss" if policy.lookup else "bypass"
    return policy, None


def _reachable(snapshot: Snapshot, ctx: RequestContext, model: str) -> bool:
    reach = ctx.reach
    if reach is None:
        return True
    return any(dep.id in reach.ids for dep in snapshot.models.get(model, ()))


def miss_headers(policy: cache.CachePolicy | None) -> Headers:
    return cache.response_headers(policy, None) if policy is not None else []


def settle_hit(
    snapshot: Snapshot, ctx: RequestContext, hit: cache.CacheHit, policy: cache.CachePolicy
) -> tuple[Usage, Headers]:
    """Log a cached answer (no cost) and return its usage and response headers."""
    ctx.cache = hit.kind
    deps = snapshot.models.get(hit.model)
    ctx.deployment = deps[0] if deps else None
    usage = Usage.from_openai(hit.response.get("usage")) or Usage()
    settle(ctx, http_status=200, usage=usage, cost=ZERO)
    return usage, [
        (b"x-atp-model", hit.model.encode()),
        (b"x-atp-provider", hit.provider.encode()),
        (b"x-atp-route", ctx.route.encode()),
        (b"x-atp-cost-usd", format_usd(ZERO).encode()),
        *cache.response_headers(policy, hit),
    ]


def store(
    ctx: RequestContext,
    route: RouteInfo,
    policy: cache.CachePolicy | None,
    body: dict[str, Any],
    response: dict[str, Any],
    cost: Any,
) -> None:
    """Keep a fresh chat.completion for later requests (background; never raises)."""
    if policy is None or not policy.store:
        return
    cache.store_later(
        policy,
        ctx.key.tenant_id,
        route.name,
        body,
        response,
        model=ctx.deployment.public_name,
        provider=ctx.deployment.provider_name,
        cost=cost,
    )
