"""Step: turn the requested model or route into the deployments to try, and explain why.

A request's `model` is either a route (`auto`, `atp/fast`, `atp/balanced`, `atp/high`,
one an admin defined, or a route named like a model, which puts the route's fallbacks,
retries, timeouts and cache in front of that model) or a model name (public name or alias
of a listed deployment: its deployments, load balanced by weight). A route's candidates go
through the routing engine (apps.routing.engine), which filters, scores, classifies the
task and lets the learned statistics choose. Everything planned is within the request's
reach (apps.routing.pipeline.reach).

Learning happens after the answer (apps.routing.pipeline.learning).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from apps.policies.engine import Decision
from apps.routing.engine.hints import RoutingRequest, explicit_hints, parse_hints
from apps.routing.engine.router import RouteConfig, RoutingEngine, get_engine
from apps.routing.engine.scoring import RouteDecision, estimate_cost, region_matches
from apps.routing.engine.stats import observed_stats
from apps.routing.pipeline.context import RequestContext
from apps.routing.pipeline.ensemble import ConsensusSpec, parse_consensus
from apps.routing.pipeline.execute import NO_OVERRIDES, Overrides, overrides_for
from apps.routing.pipeline.govern import PolicyDenied
from apps.routing.pipeline.reach import Reach, narrow, reach_for, requested_regions
from apps.routing.pipeline.route import candidates, may_use_route
from apps.routing.resilience import breaker
from apps.routing.resilience import stats as observed
from apps.routing.route_services import FILTER_KEYS
from apps.routing.snapshot import DeploymentInfo, KeyInfo, RouteInfo, Snapshot
from atp_site.lib import tracing
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


def _pool(snapshot: Snapshot, route: RouteInfo, reach: Reach) -> list[DeploymentInfo]:
    if route.candidates:
        listed = [dep for name in route.candidates for dep in snapshot.models.get(name, ())]
    else:
        # A route in front of a model starts from that model's deployments (listed or
        # not); any other route from every deployment.
        base = snapshot.models.get(route.wraps, ()) if route.wraps else snapshot.deployments
        flt = {k: v for k, v in (route.candidate_filter or {}).items() if k in FILTER_KEYS}
        listed = [dep for dep in base if _matches(dep, flt)] if flt else list(base)
    # Two candidate names may name one deployment (a name and its alias): keep it once.
    return reach.filter({dep.id: dep for dep in listed}.values())


def route_pool(
    snapshot: Snapshot, route: RouteInfo, key: KeyInfo, *, capability: str = "chat"
) -> list[DeploymentInfo]:
    """The deployments a route may choose from for this key, in the route's order.

    Computed once per snapshot, route, key allow-list and capability: nothing it depends
    on changes until the configuration does, which builds a new snapshot. The request's
    regions are applied by the engine, which explains what they removed.
    """
    cache_key = (route.name, key.allowed_models, capability)
    pool = snapshot.pools.get(cache_key)
    if pool is None:
        reach = reach_for(snapshot, key, capability=capability)
        pool = snapshot.pools[cache_key] = _pool(snapshot, route, reach)
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
    pool: list[DeploymentInfo] | None = None,
    policy: Any = None,
) -> RouteDecision:
    """Rank a route's candidates for one request (no provider is called). `pool` replaces
    the route's own candidates (a bare model name ranked like a route)."""
    if pool is None:
        if not may_use_route(key, route):
            raise PermissionDenied(
                f"This API key is not allowed to use the model or route '{route.name}'.",
                code="model_not_allowed",
                param="model",
            )
        pool = route_pool(snapshot, route, key, capability=capability)
    # The pool holds only what the key may reach, so the engine need not filter by key.
    return (engine or get_engine()).decide(
        pool,
        request,
        _route_config(route),
        health=_healthy,
        stats=observed_stats,
        inflight=_in_flight,
        policy=policy,
    )


async def refresh_learning(snapshot: Snapshot, model: str) -> None:
    """Before planning a routed request: bring shared learned statistics up to date (no
    network call while they are fresh)."""
    if model in snapshot.routes:
        await get_engine().refresh()


@tracing.traced("atp.route")
def plan_chat(
    snapshot: Snapshot,
    ctx: RequestContext,
    model: str,
    body: dict[str, Any],
    headers: dict[bytes, bytes],
) -> Plan:
    """The deployments to try for a chat request, with the decision recorded on `ctx`.

    Every deployment in the plan (candidates, fallbacks, challengers) is one the request
    may reach (`ctx.reach`), and the execute step calls nothing else.
    """
    key = ctx.key
    assert key is not None
    hints = explicit_hints(body, headers)  # for every request, routed or not: 400 if bad
    atp = body.get("atp")
    consensus = parse_consensus(atp.get("consensus")) if isinstance(atp, dict) else None
    route = snapshot.routes.get(model)
    gov = ctx.governance
    governed = gov is not None and gov.constrains
    if route is None:
        reach = reach_for(snapshot, key, regions=requested_regions(body, headers, key))
        cands = candidates(snapshot, key, model, reach)
        if governed:
            reach = narrow(snapshot, reach, gov)
            cands = reach.filter(cands)
            if not cands:
                raise gov.unavailable(model)
        ctx.reach = reach
        reasoning = [f"model {model} named by the request"]
        if gov is not None and gov.decision is not None and gov.decision.max_cost_usd:
            cands = _within_cost_cap(body, headers, key, hints, cands, gov.decision, reasoning)
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
            "reasoning": reasoning,
        }
        return Plan(cands)
    request = parse_hints(body, headers, key, explicit=hints)
    ctx.prompt_tokens = request.prompt_tokens
    reach = reach_for(snapshot, key, regions=request.regions)
    policy = None
    if gov is not None and gov.decision is not None:
        cap = gov.decision.max_cost_usd
        if cap is not None and (request.max_cost_usd is None or cap < request.max_cost_usd):
            request.max_cost_usd = cap
    if governed:
        reach = narrow(snapshot, reach, gov)
        policy = gov.deployment_reason
    ctx.reach = reach
    decision = decide(snapshot, key, route, request, policy=policy)
    cands = decision.deployments
    if route.fallbacks:
        have = {dep.id for dep in cands}
        for name in route.fallbacks:
            for dep in reach.filter(snapshot.models.get(name, ())):
                if dep.id not in have:
                    have.add(dep.id)
                    cands.append(dep)
    budget = request.latency_slo_ms / 1000 if request.latency_slo_ms else None
    overrides = overrides_for(route, budget=budget)
    ctx.route = route.name
    ctx.route_decision = decision
    ctx.decision = decision.to_dict(limit=5)
    ctx.task_cluster = decision.task_cluster
    challengers = (
        reach.mirror_targets(snapshot.models.get(route.challenger, ()), request.preferred_regions)
        if route.challenger and route.challenger_share > 0
        else []
    )
    return Plan(cands, route, decision, request, overrides, consensus, challengers)


def _within_cost_cap(
    body: dict[str, Any],
    headers: dict[bytes, bytes],
    key: KeyInfo,
    hints: Any,
    cands: list[DeploymentInfo],
    decision: Decision,
    reasoning: list[str],
) -> list[DeploymentInfo]:
    """A policy's cost cap on a request naming its model: the deployments whose estimated
    cost (the prompt and the expected output at their prices, as routing estimates it)
    fits, or a 403 naming the policy."""
    cap = decision.max_cost_usd
    request = parse_hints(body, headers, key, explicit=hints)
    costs = [(dep, estimate_cost(dep, request)) for dep in cands]
    kept = [dep for dep, cost in costs if cost <= cap]
    if not kept:
        cheapest = min(cost for _, cost in costs)
        raise PolicyDenied(
            f"The request would cost an estimated ${cheapest:.6f} on '{cands[0].public_name}', "
            f"above the cost cap of ${cap:g} set by the policy '{decision.max_cost_policy}'."
        )
    if len(kept) < len(cands):
        dropped = sorted({dep.public_name for dep, cost in costs if cost > cap})
        reasoning.append(f"excluded {', '.join(dropped)}: estimated cost above ${cap:g}")
    return kept
