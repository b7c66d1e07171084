"""Step: resolve the requested model to the deployments that may serve it, in try order.

A model name (public name or alias of a listed deployment) resolves to its listed
deployments that the request may reach (apps.routing.pipeline.reach: the key's
allow-list, the request's regions, the capability), in the load-balancing order of
ATP_LOAD_BALANCING (weighted by default; least in-flight or lowest latency), open circuits
last; the rest serve as fallbacks. Routes (a route named like a model included) go through
plan.py and the engine.
"""

from __future__ import annotations

from apps.routing.pipeline.reach import Reach, allowed_names, may_use
from apps.routing.resilience import balance
from apps.routing.snapshot import DeploymentInfo, KeyInfo, RouteInfo, Snapshot
from atp_site.lib.errors import InvalidRequest, NotFound, PermissionDenied
from atp_site.lib.hot_settings import hot


def candidates(snapshot: Snapshot, key: KeyInfo, model: str, reach: Reach) -> list[DeploymentInfo]:
    """The listed deployments of `model` the request may reach, in try order."""
    deployments = snapshot.listed.get(model)
    if not deployments:
        raise NotFound(
            f"The model '{model}' does not exist or you do not have access to it.",
            param="model",
        )
    if not key.may_use(model) and not any(key.may_use(d.public_name) for d in deployments):
        raise _not_allowed(model)
    reachable = reach.filter(deployments)
    if not reachable:
        raise _why_unreachable(snapshot, key, model, deployments, reach)
    return balance.order(reachable, hot.ATP_LOAD_BALANCING)


def _not_allowed(model: str) -> PermissionDenied:
    return PermissionDenied(
        f"This API key is not allowed to use the model '{model}'.",
        code="model_not_allowed",
        param="model",
    )


def _why_unreachable(
    snapshot: Snapshot,
    key: KeyInfo,
    model: str,
    deployments: list[DeploymentInfo],
    reach: Reach,
) -> Exception:
    allowed = allowed_names(snapshot, key)
    permitted = [d for d in deployments if may_use(d, allowed)]
    if not permitted:
        return _not_allowed(model)
    capability = reach.capability
    if not any(not d.capabilities or capability in d.capabilities for d in permitted):
        return InvalidRequest(
            f"The model '{model}' does not support {capability}.",
            param="model",
            code="unsupported_model",
        )
    return InvalidRequest(
        f"No deployment of '{model}' is in the requested region(s) {', '.join(reach.regions)}.",
        param="atp.region",
        code="no_candidate",
    )


def visible_models(snapshot: Snapshot, key: KeyInfo) -> list[tuple[str, DeploymentInfo]]:
    """Every listed name the key may call, with one deployment that serves it."""
    out = []
    for name in snapshot.public_names:
        deployments = snapshot.listed[name]
        if key.may_use(name) or any(key.may_use(d.public_name) for d in deployments):
            out.append((name, deployments[0]))
    return out


def may_use_route(key: KeyInfo, route: RouteInfo) -> bool:
    return key.allowed_models is None or route.name in key.allowed_models


def visible_routes(snapshot: Snapshot, key: KeyInfo) -> list[RouteInfo]:
    """Routes the key may call that /v1/models does not already show as a model (a route in
    front of a listed model appears once, as that model)."""
    return [
        route
        for name, route in sorted(snapshot.routes.items())
        if name not in snapshot.listed and may_use_route(key, route)
    ]
