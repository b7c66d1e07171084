"""Step: turn the requested model or route into the deployments to try, and explain why.

A request's `model` is either a model name (public name or alias: its deployments, load
balanced by weight) or a route (`auto`, `atp/fast`, `atp/balanced`, `atp/high` or one an
admin defined): the route's candidates go through the routing engine
(apps.routing.engine), which filters, scores, classifies the task and lets the learned
statistics choose. A model name wins over a route of the same name.

Learning happens after the answer (apps.routing.pipeline.learning).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from apps.routing.engine.hints import RoutingRequest, explicit_hints, parse_hints
from apps.routing.engine.router import RouteConfig, RoutingEngine, get_engine
from apps.routing.engine.scoring import RouteDecision, region_matches
from apps.routing.engine.stats import observed_stats
from apps.routing.pipeline.context import RequestContext
from apps.routing.pipeline.ensemble import ConsensusSpec, parse_consensus
from apps.routing.pipeline.execute import NO_OVERRIDES, Overrides, overrides_for
from apps.routing.pipeline.route import allowed_for_route, candidates, may_use_route
from apps.routing.resilience import breaker
from apps.routing.resilience import stats as observed
from apps.routing.route_services import FILTER_KEYS
from apps.routing.snapshot import DeploymentInfo, KeyInfo, RouteInfo, Snapshot
from atp_site.lib.errors import ATPError, InvalidRequest, PermissionDenied

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Plan:
    cands: list[DeploymentInfo]
    route: RouteInfo | None = None
    decision: RouteDecision | None = None
    request: RoutingRequest | None = None
    overrides: Overrides = NO_OVERRIDES
    consensus: ConsensusSpec | None = None
    challengers: list[DeploymentInfo] = field(default_factory=list)


class NoCandidates(ATPError):
    status = 503
    type = "service_unavailable"
    code = "no_candidates"


def _matches(dep: DeploymentInfo, flt: dict[str, Any]) -> bool:
    caps = flt.get("capabilities")
    if caps and not set(caps) <= dep.capabilities:
        return False
    regions = flt.get("regions")
    if regions and not region_matches(dep.region, regions):
        return False
    providers = flt.get("providers")
    if providers and dep.provider_name not in providers:
        return False
    min_quality = flt.get("min_quality")
    if min_quality is not None and dep.quality < float(min_quality):
        return False
    max_in = flt.get("max_input_price")
    if max_in is not None and float(dep.prices.input) > float(max_in):
        return False
    max_out = flt.get("max_output_price")
    return max_out is None or float(dep.prices.output) <= float(max_out)


def _pool(
    snapshot: Snapshot, route: RouteInfo, allowed: frozenset[str] | None, capability: str
) -> list[DeploymentInfo]:
    if route.candidates:
        listed = [dep for name in route.candidates for dep in snapshot.models.get(name, ())]
    else:
        flt = {k: v for k, v in (route.candidate_filter or {}).items() if k in FILTER_KEYS}
        listed = [dep for dep in snapshot.deployments if _matches(dep, flt)]
    seen: set[str] = set()
    pool = []
    for dep in listed:
        if dep.id in seen:
            continue
        seen.add(dep.id)
        if dep.capabilities and capability not in dep.capabilities:
            continue
        if allowed is not None and dep.public_name not in allowed:
            continue
        pool.append(dep)
    return pool


def route_pool(
    snapshot: Snapshot, route: RouteInfo, key: KeyInfo, *, capability: str = "chat"
) -> list[DeploymentInfo]:
    """The deployments a route may choose from for this key, in the route's order.

    Computed once per snapshot, route, key allow-list and capability: nothing it depends
    on changes until the configuration does, which builds a new snapshot.
    """
    allowed = allowed_for_route(snapshot, key)
    cache_key = (route.name, allowed, capability)
    pool = snapshot.pools.get(cache_key)
    if pool is None:
        pool = snapshot.pools[cache_key] = _pool(snapshot, route, allowed, capability)
    if not pool:
        raise NoCandidates(
            f"The route '{route.name}' has no model that this API key may use for {capability}.",
            param="model",
        )
    return pool


def _healthy(dep: DeploymentInfo) -> bool:
    # Open breakers are skipped; half-open ones stay in so their probes can run.
    return breaker.breaker_state(dep.id) != "open"


def _in_flight(dep: DeploymentInfo) -> int:
    seen = observed.peek(dep.id)
    return seen.in_flight if seen else 0


def _route_config(route: RouteInfo) -> RouteConfig:
    """The engine's view of a route, made once per RouteInfo (routes live in the snapshot)."""
    config = _route_configs.get(id(route))
    if config is None or config[0] is not route:
        if len(_route_configs) >= 1024:
            _route_configs.clear()
        config = _route_configs[id(route)] = (route, RouteConfig.from_model(route))
    return config[1]


_route_configs: dict[int, tuple[RouteInfo, RouteConfig]] = {}


def decide(
    snapshot: Snapshot,
    key: KeyInfo,
    route: RouteInfo,
    request: RoutingRequest,
    *,
    capability: str = "chat",
    engine: RoutingEngine | None = None,
) -> RouteDecision:
    """Rank a route's candidates for one request (no provider is called)."""
    if not may_use_route(key, route):
        raise PermissionDenied(
            f"This API key is not allowed to use the route '{route.name}'.",
            code="model_not_allowed",
            param="model",
        )
    pool = route_pool(snapshot, route, key, capability=capability)
    return (engine or get_engine()).decide(
        pool,
        request,
        _route_config(route),
        health=_healthy,
        stats=observed_stats,
        key=key,
        inflight=_in_flight,
    )


async def refresh_learning(snapshot: Snapshot, model: str) -> None:
    """Before planning a routed request: bring shared learned statistics up to date (no
    network call while they are fresh)."""
    if model not in snapshot.models and model in snapshot.routes:
        await get_engine().refresh()


def plan_chat(
    snapshot: Snapshot,
    ctx: RequestContext,
    model: str,
    body: dict[str, Any],
    headers: dict[bytes, bytes],
) -> Plan:
    """The deployments to try for a chat request, with the decision recorded on `ctx`."""
    key = ctx.key
    assert key is not None
    hints = explicit_hints(body, headers)  # for every request, routed or not: 400 if bad
    atp = body.get("atp")
    consensus = parse_consensus(atp.get("consensus")) if isinstance(atp, dict) else None
    route = None if model in snapshot.models else snapshot.routes.get(model)
    if route is None:
        cands = candidates(snapshot, key, model)
        if consensus is not None:
            raise InvalidRequest(
                "Consensus asks several models, so 'model' must name a route (for example "
                "'auto'), not a single model.",
                param="atp.consensus",
            )
        ctx.decision = {
            "route": "",
            "strategy": "requested",
            "model": cands[0].public_name,
            "provider": cands[0].provider_name,
            "reasoning": [f"model {model} named by the request"],
        }
        return Plan(cands)
    request = parse_hints(body, headers, key, explicit=hints)
    decision = decide(snapshot, key, route, request)
    cands = decision.deployments
    if route.fallbacks:
        have = {dep.id for dep in cands}
        allowed = allowed_for_route(snapshot, key)
        for name in route.fallbacks:
            for dep in snapshot.models.get(name, ()):
                if dep.id not in have and (allowed is None or dep.public_name in allowed):
                    have.add(dep.id)
                    cands.append(dep)
    budget = request.latency_slo_ms / 1000 if request.latency_slo_ms else None
    overrides = overrides_for(route, budget=budget)
    ctx.route = route.name
    ctx.route_decision = decision
    ctx.decision = decision.to_dict(limit=5)
    ctx.task_cluster = decision.task_cluster
    challengers = list(snapshot.models.get(route.challenger, ())) if route.challenger else []
    return Plan(cands, route, decision, request, overrides, consensus, challengers)
