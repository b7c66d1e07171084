"""The overview's figures for one viewer, merged from every gateway process.

`merged_window()` reads the store (one round trip per resolution) and merges the processes'
buckets; percentiles are read from the merged histograms. `figures_for(viewer)` narrows them
to what the viewer may see, through apps.tenants.permissions like every console page:

- global traffic (rates, latency, errors, tokens, cache, busiest routes and models, alerts):
  viewers who may see every tenant's request log;
- per-tenant requests and spend: the tenants whose request log the viewer may see;
- providers, their health and circuits: viewers who may see providers;
- recent errors: those of the tenants the viewer may see.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from atp_site.console.live import samples
from atp_site.console.live.store import MINUTE, SECOND, get_store

WINDOW_SECONDS = 60
# The newest seconds are still being counted (flush interval + publication): left out.
SETTLING_SECONDS = 2
HOUR_MINUTES = 60
TOP = 5
ERROR_RATE_ALERT = 0.05
ERROR_RATE_MIN_REQUESTS = 20
CACHE_SECONDS = 1.0
# A minute bucket older than this many minutes gets no more rows (publisher.LATE_SECONDS).
CLOSED_AFTER_MINUTES = 3


@dataclass(frozen=True)
class ViewerScope:
    """What one viewer may see on the overview (from apps.tenants.permissions)."""

    all_tenants: bool
    tenant_ids: frozenset[str]
    providers: bool
    # May see the runs of the periodic jobs: their failures join the alerts.
    jobs: bool = False

    @property
    def traffic(self) -> bool:
        return self.all_tenants

    @property
    def tenants(self) -> bool:
        return self.all_tenants or bool(self.tenant_ids)

    def sees_tenant(self, tenant_id: str | None) -> bool:
        if self.all_tenants:
            return True
        return tenant_id is not None and str(tenant_id) in self.tenant_ids


def viewer_scope(user: Any) -> ViewerScope:
    """The viewer's scope (database reads: call it off the event loop)."""
    from apps.audit.models import ScheduledRun
    from apps.providers.models import Provider
    from apps.routing.models import RequestLog
    from apps.tenants import permissions

    allowed = permissions.tenant_ids(user, RequestLog, "view")
    return ViewerScope(
        all_tenants=allowed is None,
        tenant_ids=frozenset(str(t) for t in allowed or ()),
        providers=permissions.may(user, Provider, "view"),
        jobs=permissions.may(user, ScheduledRun, "view"),
    )


# --- merged across processes ------------------------------------------------------------------


def merged_window(now: float | None = None, store: Any = None) -> dict[str, Any]:
    """Every process's buckets of the last minute (per second) and hour (per minute), merged."""
    store = store or get_store()
    now = time.time() if now is None else now
    end = int(now) - SETTLING_SECONDS
    seconds = list(range(end - WINDOW_SECONDS, end))
    this_minute = int(now) - int(now) % MINUTE
    minutes = [this_minute - MINUTE * i for i in range(HOUR_MINUTES - 1, -1, -1)]
    by_second = store.read(SECOND, seconds)
    # Minutes no late row can reach any more are read and added up once, then reused.
    closed = [m for m in minutes if m < this_minute - CLOSED_AFTER_MINUTES * MINUTE]
    closed_sum, closed_processes = _closed_minutes(store, closed)
    by_minute = store.read(MINUTE, [m for m in minutes if m not in set(closed)])
    processes = {p for found in by_second.values() for p in found}
    processes |= {p for found in by_minute.values() for p in found}
    per_second = [samples.merge(by_second.get(s, {}).values()) for s in seconds]
    hour = samples.merge([closed_sum, *(s for found in by_minute.values() for s in found.values())])
    return {
        "now": now,
        "seconds": seconds,
        "per_second": per_second,
        "minute": samples.merge(per_second),
        "hour": hour,
        "processes": len(processes),
        "hour_processes": len(processes | closed_processes),
        "errors": store.errors(),
    }


_closed: dict[str, Any] = {"store": None, "minutes": None, "sum": {}, "processes": set()}
_closed_lock = threading.Lock()


def _closed_minutes(store: Any, minutes: list[int]) -> tuple[samples.Sample, set[str]]:
    """The sum of closed minute buckets: read from the store when the hour moved on (once
    a minute), else this process's copy."""
    key = (minutes[0], minutes[-1]) if minutes else None
    with _closed_lock:
        if _closed["store"] is store and _closed["minutes"] == key:
            return _closed["sum"], _closed["processes"]
    found = store.read(MINUTE, minutes) if minutes else {}
    total = samples.merge(s for by_process in found.values() for s in by_process.values())
    processes = {p for by_process in found.values() for p in by_process}
    with _closed_lock:
        _closed.update(store=store, minutes=key, sum=total, processes=processes)
    return total, processes


_cache: dict[str, Any] = {"at": 0.0, "value": None}
_cache_lock = threading.Lock()


def merged_cached() -> dict[str, Any]:
    """merged_window(), shared by every page and socket of this process for a second."""
    now = time.monotonic()
    with _cache_lock:
        if _cache["value"] is not None and now - _cache["at"] < CACHE_SECONDS:
            return _cache["value"]
    value = merged_window()
    with _cache_lock:
        _cache.update(at=now, value=value)
    return value


def clear_cache(*, closed: bool = True) -> None:
    """Forget the shared figures (and, with `closed`, the sum of closed minutes)."""
    with _cache_lock:
        _cache.update(at=0.0, value=None)
    if not closed:
        return
    with _closed_lock:
        _closed.update(store=None, minutes=None, sum={}, processes=set())


# --- figures ----------------------------------------------------------------------------------


def _rate(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _ms(value: float | None) -> int | None:
    return round(value) if value is not None else None


def _top(counts: dict[str, float]) -> list[dict[str, Any]]:
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
    return [{"name": name, "requests": int(count)} for name, count in ranked]


def traffic(merged: dict[str, Any]) -> dict[str, Any]:
    """Rates, latency, errors and the per-second series of the last minute (every tenant)."""
    minute = merged["minute"]
    hour = merged["hour"]
    lat = samples.histogram(minute, "lat")
    ttft = samples.histogram(minute, "ttft")
    series: dict[str, list] = {"t": merged["seconds"], "rps": [], "p50": [], "p95": []}
    for sample in merged["per_second"]:
        counts = samples.histogram(sample, "lat")
        series["rps"].append(int(sample.get("n", 0)))
        series["p50"].append(_ms(samples.percentile(counts, 0.5)))
        series["p95"].append(_ms(samples.percentile(counts, 0.95)))
    requests = minute.get("n", 0)
    return {
        "processes": merged["processes"],
        "requests_per_second": round(requests / WINDOW_SECONDS, 2),
        "requests_minute": int(requests),
        "errors_minute": int(minute.get("err", 0)),
        "error_rate": _rate(minute.get("err", 0), requests),
        "latency_p50_ms": _ms(samples.percentile(lat, 0.5)),
        "latency_p95_ms": _ms(samples.percentile(lat, 0.95)),
        "ttft_p50_ms": _ms(samples.percentile(ttft, 0.5)),
        "ttft_p95_ms": _ms(samples.percentile(ttft, 0.95)),
        "requests_hour": int(hour.get("n", 0)),
        "tokens_in_hour": int(hour.get("in", 0)),
        "tokens_out_hour": int(hour.get("out", 0)),
        "cache_hit_rate": _rate(hour.get("hit", 0), hour.get("look", 0)),
        "routes": _top(samples.labelled(hour, "route")),
        "models": _top(samples.labelled(hour, "model")),
        "series": series,
    }


def _tenant_names(ids: set[str]) -> dict[str, str]:
    from apps.tenants.models import Tenant

    valid = []
    for tenant_id in ids:
        try:
            valid.append(uuid.UUID(tenant_id))
        except ValueError:
            continue
    return {
        str(pk): name for pk, name in Tenant.objects.filter(pk__in=valid).values_list("pk", "name")
    }


def costs(merged: dict[str, Any], scope: ViewerScope) -> dict[str, Any]:
    """Spend and requests in the last hour, in total and per tenant the viewer may see."""
    hour = merged["hour"]
    spend = samples.labelled(hour, "tusd")
    counts = samples.labelled(hour, "t")
    visible = {t for t in set(spend) | set(counts) if scope.sees_tenant(t)}
    names = _tenant_names(visible)
    tenants = sorted(
        (
            {
                "id": t,
                "name": names.get(t, t),
                "requests_hour": int(counts.get(t, 0)),
                "spend_hour_usd": round(spend.get(t, 0.0), 6),
            }
            for t in visible
        ),
        key=lambda row: (-row["spend_hour_usd"], -row["requests_hour"], row["name"]),
    )
    if scope.all_tenants:
        total_spend = hour.get("usd", 0.0)
        total_requests = hour.get("n", 0)
    else:
        total_spend = sum(row["spend_hour_usd"] for row in tenants)
        total_requests = sum(row["requests_hour"] for row in tenants)
    return {
        "spend_hour_usd": round(total_spend, 6),
        "requests_hour": int(total_requests),
        "tenants": tenants[:20],
    }


def providers() -> list[dict[str, Any]]:
    """Providers with their latest health check and their deployments' circuits (shared
    through Redis when configured, so every process's breakers show)."""
    from apps.providers.selectors import deployment_list, provider_list_with_health
    from apps.routing.resilience.breaker import get_breakers

    known = get_breakers().states()
    circuits: dict[str, list[dict[str, Any]]] = {}
    for dep in deployment_list():
        breaker = known.get(str(dep.id))
        circuits.setdefault(str(dep.provider_id), []).append(
            {
                "model": dep.public_name,
                "state": (state := breaker.state if breaker is not None else "closed"),
                "badge": state.replace("_", "-"),
            }
        )
    rows = []
    for provider in provider_list_with_health().order_by("name"):
        rows.append(
            {
                "id": str(provider.id),
                "name": provider.name,
                "enabled": provider.enabled,
                "health": provider.health_status or "unknown",
                "latency_ms": provider.health_latency_ms,
                "checked_at": _iso(provider.health_checked_at),
                "circuits": circuits.get(str(provider.id), []),
            }
        )
    return rows


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def errors(merged: dict[str, Any], scope: ViewerScope) -> list[dict[str, Any]]:
    return [e for e in merged["errors"] if scope.sees_tenant(e.get("tenant_id"))][:10]


def alerts(traffic_figures: dict[str, Any], provider_rows: list[dict[str, Any]]) -> list[dict]:
    """What needs attention now: open circuits, providers down, a high error rate, records
    that cannot be kept."""
    from atp_site.lib import spill

    found = []
    for provider in provider_rows:
        if provider["enabled"] and provider["health"] == "down":
            found.append({"level": "bad", "text": f"Provider {provider['name']} is down."})
        for circuit in provider["circuits"]:
            if circuit["state"] == "open":
                found.append({"level": "bad", "text": f"Circuit open for {circuit['model']}."})
    rate = traffic_figures.get("error_rate")
    busy = traffic_figures["requests_minute"] >= ERROR_RATE_MIN_REQUESTS
    if rate is not None and busy and rate >= ERROR_RATE_ALERT:
        found.append(
            {"level": "warn", "text": f"{rate:.0%} of requests failed in the last minute."}
        )
    if spill.state.refusing:
        found.append(
            {"level": "bad", "text": "Requests are refused: their records cannot be kept."}
        )
    return found


def figures_for(scope: ViewerScope, merged: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the overview shows to a viewer with `scope` (database reads: sync)."""
    merged = merged if merged is not None else merged_cached()
    out: dict[str, Any] = {
        "at": datetime.fromtimestamp(merged["now"], UTC).isoformat(),
        "scope": {"traffic": scope.traffic, "tenants": scope.tenants, "providers": scope.providers},
    }
    # Alerts about providers and circuits only for viewers who may see providers.
    provider_rows = providers() if scope.providers else []
    if scope.traffic:
        out["traffic"] = traffic(merged)
        out["alerts"] = alerts(out["traffic"], provider_rows)
        if scope.jobs:
            from apps.audit.scheduled import duty_alerts

            out["alerts"] += duty_alerts()
    if scope.tenants:
        out["costs"] = costs(merged, scope)
        out["errors"] = errors(merged, scope)
    if scope.providers:
        out["providers"] = provider_rows
    return out
