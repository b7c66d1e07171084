"""Read-side queries over routing data, shared by the admin, the REST API and the console."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from django.db.models import Avg, Count, Q

from apps.routing.models import Feedback, RequestLog


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
