"""Step: resolve the requested model to the deployments that may serve it, in try order.

A model name (public name or alias) resolves to its deployments, filtered by what the
key may use and what the request needs, in the load-balancing order of
ATP_LOAD_BALANCING (weighted by default; least in-flight or lowest latency), open
circuits last; the rest serve as fallbacks. Routes go through plan.py and the engine.
"""

from __future__ import annotations

from apps.routing.resilience import balance
from apps.routing.snapshot import DeploymentInfo, KeyInfo, RouteInfo, Snapshot
from atp_site.lib.errors import InvalidRequest, NotFound, PermissionDenied
from atp_site.lib.hot_settings import hot


def candidates(
    snapshot: Snapshot, key: KeyInfo, model: str, *, capability: str = "chat"
) -> list[DeploymentInfo]:
    deployments = snapshot.models.get(model)
    if not deployments:
        raise NotFound(
            f"The model '{model}' does not exist or you do not have access to it.",
            param="model",
        )
    allowed = [d for d in deployments if key.may_use(d.public_name) or key.may_use(model)]
    if not allowed:
        raise PermissionDenied(
            f"This API key is not allowed to use the model '{model}'.",
            code="model_not_allowed",
            param="model",
        )
    capable = [d for d in allowed if not d.capabilities or capability in d.capabilities]
    if not capable:
        raise InvalidRequest(
            f"The model '{model}' does not support {capability}.",
            param="model",
            code="unsupported_model",
        )
    return balance.order(capable, hot.ATP_LOAD_BALANCING)


def visible_models(snapshot: Snapshot, key: KeyInfo) -> list[tuple[str, DeploymentInfo]]:
    """Every name the key may call, with one deployment that serves it."""
    out = []
    for name in snapshot.public_names:
        deployments = snapshot.models[name]
        if key.may_use(name) or any(key.may_use(d.public_name) for d in deployments):
            out.append((name, deployments[0]))
    return out


def may_use_route(key: KeyInfo, route: RouteInfo) -> bool:
    return key.allowed_models is None or route.name in key.allowed_models


def allowed_for_route(snapshot: Snapshot, key: KeyInfo) -> frozenset[str] | None:
    """The model names a key restricts a route to; None when it may use every model.

    A key's allow-list may name routes and models: the models named bound what any route
    may choose for that key; a list naming only routes leaves the choice open.
    """
    if key.allowed_models is None:
        return None
    models = frozenset(m for m in key.allowed_models if m not in snapshot.routes)
    return models or None


def visible_routes(snapshot: Snapshot, key: KeyInfo) -> list[RouteInfo]:
    return [
        route
        for name, route in sorted(snapshot.routes.items())
        if name not in snapshot.models and may_use_route(key, route)
    ]
