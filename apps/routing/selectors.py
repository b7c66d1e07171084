"""Read-side queries over routing data, shared by the admin, the REST API and the console."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime
from typing import Any

from django.db.models import Avg, Count, Q, QuerySet

from apps.routing.models import Feedback, RequestLog, Route

logger = logging.getLogger(__name__)


def _stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    count = len(rows)
    ok = [r for r in rows if r["status"] == RequestLog.Status.SUCCESS]
    latencies = sorted(r["latency_ms"] for r in ok if r["latency_ms"] is not None)
    costs = [float(r["cost_usd"]) for r in ok]
    return {
        "requests": count,
        "success_rate": round(len(ok) / count, 4) if count else None,
        "avg_latency_ms": round(sum(latencies) / len(latencies), 1) if latencies else None,
        "p95_latency_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
        if latencies
        else None,
        "avg_cost_usd": round(sum(costs) / len(costs), 8) if costs else None,
        "total_cost_usd": round(sum(costs), 8),
    }


def challenger_comparison(
    *, route: str | None = None, since: datetime | None = None, limit: int = 5000
) -> list[dict[str, Any]]:
    """Per route and model pair: the champion's outcomes beside its challenger's.

    Only requests that were mirrored are compared, so both sides answered the same prompts.
    """
    shadows = RequestLog.objects.exclude(shadow_of="")
    if route:
        shadows = shadows.filter(route=route)
    if since:
        shadows = shadows.filter(created_at__gte=since)
    fields = ("request_id", "route", "model", "status", "latency_ms", "cost_usd", "decision")
    shadow_rows = list(shadows.order_by("-created_at").values(*fields, "shadow_of")[:limit])
    champion_ids = {r["shadow_of"] for r in shadow_rows}
    champions = {
        r["request_id"]: r
        for r in RequestLog.objects.filter(request_id__in=champion_ids, shadow_of="").values(
            *fields
        )
    }
    scores = defaultdict(list)
    for fb in Feedback.objects.filter(request_id__in=champion_ids).values("request_id", "score"):
        scores[fb["request_id"]].append(fb["score"])

    pairs: dict[tuple[str, str, str], dict[str, list]] = defaultdict(
        lambda: {"champion": [], "challenger": [], "agreement": [], "feedback": []}
    )
    for shadow in shadow_rows:
        champ = champions.get(shadow["shadow_of"])
        if champ is None:
            continue
        key = (shadow["route"], champ["model"], shadow["model"])
        pair = pairs[key]
        pair["champion"].append(champ)
        pair["challenger"].append(shadow)
        agreement = (shadow["decision"] or {}).get("agreement")
        if agreement is not None:
            pair["agreement"].append(agreement)
        pair["feedback"].extend(scores.get(champ["request_id"], ()))
    out = []
    for (route_name, champion, challenger), pair in sorted(pairs.items()):
        agreement = pair["agreement"]
        out.append(
            {
                "route": route_name,
                "champion": champion,
                "challenger": challenger,
                "champion_stats": _stats(pair["champion"]),
                "challenger_stats": _stats(pair["challenger"]),
                "agreement": round(sum(agreement) / len(agreement), 4) if agreement else None,
                "champion_feedback": round(sum(pair["feedback"]) / len(pair["feedback"]), 4)
                if pair["feedback"]
                else None,
            }
        )
    return out


def route_usage(*, since: datetime | None = None) -> list[dict[str, Any]]:
    """Per route and model: how often it was chosen and how it went (champion traffic only)."""
    rows = RequestLog.objects.filter(shadow_of="").exclude(route="")
    if since:
        rows = rows.filter(created_at__gte=since)
    return list(
        rows.values("route", "model")
        .annotate(
            requests=Count("id"),
            errors=Count("id", filter=~Q(status=RequestLog.Status.SUCCESS)),
            avg_latency_ms=Avg("latency_ms"),
            avg_cost_usd=Avg("cost_usd"),
            cache_hits=Count("id", filter=Q(cache__in=["hit", "semantic_hit"])),
        )
        .order_by("route", "-requests")
    )


def decision_for(request_id: str) -> dict[str, Any] | None:
    """The stored RouteDecision of one request, for the console's request page."""
    return (
        RequestLog.objects.filter(request_id=request_id, shadow_of="")
        .values("route", "model", "decision", "task_cluster", "cache")
        .first()
    )


# --- the console's request log and routes ------------------------------------------------

# What a request log list row shows; the wide columns (decision, error text) stay behind.
REQUESTLOG_LIST_FIELDS = (
    "id",
    "request_id",
    "created_at",
    "endpoint",
    "tenant_id",
    "api_key_id",
    "model",
    "requested_model",
    "route",
    "status",
    "http_status",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "latency_ms",
    "ttft_ms",
    "cache",
    "stream",
    "shadow_of",
)

# Columns the request log's search box matches exactly, each with an index led by it.
REQUESTLOG_SEARCH_FIELDS = ("request_id", "model", "route", "end_user")


def requestlog_list() -> QuerySet[RequestLog]:
    """The request log for the console's list: narrow rows, newest first; callers scope it
    with apps.tenants.permissions.restrict."""
    return RequestLog.objects.only(*REQUESTLOG_LIST_FIELDS)


def requestlog_search_q(queryset: QuerySet[RequestLog], term: str) -> Q:
    """Rows whose request id, model, route or end user is exactly `term`.

    Exact matches only: a substring search reads every one of a million rows. The columns
    the term occurs in are found first with one cheap index probe each, so the final query
    filters on those columns alone and keeps to the index that also serves the sort.
    """
    term = term.strip()[:256]
    matched = [f for f in REQUESTLOG_SEARCH_FIELDS if queryset.filter(**{f: term}).exists()]
    if not matched:
        return Q(pk__in=[])
    q = Q()
    for name in matched:
        q |= Q(**{name: term})
    return q


def requestlog_detail(*, queryset: QuerySet[RequestLog], pk: int) -> RequestLog:
    return queryset.get(pk=pk)


def requestlog_related(log: RequestLog) -> dict[str, Any]:
    """Names of what a request log row points at (plain ids, no constraint: may be gone)."""
    from apps.providers.models import ModelDeployment, Provider
    from apps.tenants.models import ApiKey, Tenant

    def one(model: Any, pk: Any) -> Any:
        return model.objects.filter(pk=pk).first() if pk is not None else None

    return {
        "tenant": one(Tenant, log.tenant_id),
        "api_key": one(ApiKey, log.api_key_id),
        "provider": one(Provider, log.provider_id),
        "deployment": one(ModelDeployment, log.deployment_id),
    }


def requestlog_exchange(log: RequestLog) -> Any:
    """The stored exchange (encrypted bodies) of a request, if its tenant keeps bodies."""
    from apps.audit.models import StoredExchange

    if log.tenant_id is None:
        return None
    return (
        StoredExchange.objects.filter(request_id=log.request_id, tenant_id=log.tenant_id)
        .order_by("created_at")
        .first()
    )


def requestlog_shadows(log: RequestLog) -> QuerySet[RequestLog]:
    """A champion request's mirrored challenger calls."""
    if log.shadow_of:
        return RequestLog.objects.none()
    # exclude() spells out the partial index's condition so the planner uses it.
    return (
        RequestLog.objects.exclude(shadow_of="")
        .filter(shadow_of=log.request_id)
        .only(*REQUESTLOG_LIST_FIELDS)
    )


def route_list() -> QuerySet[Route]:
    return Route.objects.all()


def builtin_routes_not_overridden() -> list[Any]:
    """The built-in routes no Route row overrides (a disabled override hides one)."""
    from apps.routing.snapshot import BUILTIN_ROUTES

    taken = set(Route.objects.filter(name__in=list(BUILTIN_ROUTES)).values_list("name", flat=True))
    return [info for name, info in BUILTIN_ROUTES.items() if name not in taken]


def route_learned(name: str) -> dict[str, Any]:
    """What a route learned: task clusters with their arms, and champion against challenger."""
    from apps.routing.engine.learning import learned_summary

    clusters = learned_summary(name)
    return {
        "clusters": clusters,
        "pulls": sum(c["pulls"] for c in clusters),
        "challenger": challenger_comparison(route=name, limit=2000),
    }


def route_try(
    *, route_name: str, prompt: str, hints: dict[str, Any], key_id: str = "", max_tokens=None
) -> dict[str, Any]:
    """The ranking `POST /v1/route` would give for a prompt and hints: the same hint parsing
    and engine decision, in process, with nothing sent upstream.

    `key_id` ranks as that API key would (its allowed models, its tenant's preferences);
    empty ranks with a neutral key that may use every model. Raises
    atp_site.lib.errors.ATPError (InvalidRequest naming the bad hint as `atp.<name>`,
    NotFound, PermissionDenied, no candidates) as the endpoint would answer it.
    """
    from asgiref.sync import async_to_sync

    from apps.routing.engine.hints import parse_hints
    from apps.routing.engine.router import get_engine
    from apps.routing.pipeline.plan import decide
    from apps.routing.snapshot import KeyInfo, build_snapshot
    from atp_site.lib import config_version
    from atp_site.lib.errors import NotFound

    # A fresh snapshot: the console sees a change the moment it is committed.
    snapshot = build_snapshot(config_version.current())
    route = snapshot.routes.get(route_name)
    if route is None:
        raise NotFound(f"The route '{route_name}' is not enabled.", param="model")
    key = next((k for k in snapshot.keys.values() if k.id == key_id), None) if key_id else None
    if key is None:
        key = KeyInfo(
            id="",
            tenant_id="",
            tenant_slug="",
            name="neutral",
            allowed_models=None,
            expires_at=None,
            revoked=False,
            tenant_active=True,
        )
    body: dict[str, Any] = {
        "model": route_name,
        "messages": [{"role": "user", "content": prompt}],
    }
    if hints:
        body["atp"] = hints
    if max_tokens:
        body["max_tokens"] = max_tokens
    request = parse_hints(body, {}, key)
    engine = get_engine()
    try:
        async_to_sync(engine.refresh)()
    except Exception:  # shared statistics unreachable: rank with what this process knows
        logger.warning("route try-it: shared learned statistics could not be refreshed")
    decision = decide(snapshot, key, route, request)
    out = decision.to_dict(limit=50, detail=True)
    return {"route": route_name, "decision": out, "recommendations": out["ranking"]}
