"""Prometheus metrics at GET /metrics: requests, tokens, cost, circuit breakers, cache.

Figures are per process (each gateway process is scraped on its own, as Prometheus does
with multi-process servers): request counters are kept by the settle step; circuit breaker
states are the ones this process last saw (they are shared through Redis, so every
process converges within ATP_BREAKER_SYNC_SECONDS); response-cache counters are the
route totals (Redis-wide when Redis is configured).

Access: with ATP_METRICS_TOKEN set, scrapers send `Authorization: Bearer <token>`, and a
missing or wrong token (whatever bytes it holds) gets 401; without it, only loopback
addresses and signed-in staff may read the page (403 for others).
"""

from __future__ import annotations

import hmac
from collections import Counter
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

# (endpoint, route, model, status) -> count; plus tokens and cost by (route, model).
requests = Counter()
tokens_in = Counter()
tokens_out = Counter()
cost_usd = Counter()

_STATES = ("closed", "half_open", "open")
_LOOPBACK = frozenset({"127.0.0.1", "::1"})


def observe(row: dict[str, Any]) -> None:
    """Count one settled request (called by settle; a few dictionary increments)."""
    route_model = (row["route"], row["model"])
    requests[(row["endpoint"], *route_model, row["status"])] += 1
    tokens_in[route_model] += row["input_tokens"]
    tokens_out[route_model] += row["output_tokens"]
    cost_usd[route_model] += float(row["cost_usd"] or 0)


class GatewayCollector:
    def collect(self) -> Iterator[Metric]:
        total = CounterMetricFamily(
            "atp_requests",
            "Requests settled by this process.",
            labels=["endpoint", "route", "model", "status"],
        )
        for labels, value in list(requests.items()):
            total.add_metric(list(labels), value)
        yield total
        for name, help_text, data in (
            ("atp_input_tokens", "Prompt tokens.", tokens_in),
            ("atp_output_tokens", "Completion tokens.", tokens_out),
            ("atp_cost_usd", "Cost in US dollars.", cost_usd),
        ):
            family = CounterMetricFamily(name, help_text, labels=["route", "model"])
            for labels, value in list(data.items()):
                family.add_metric(list(labels), value)
            yield family
        yield from _breakers()
        yield from _cache()
        yield from _records()
        yield from _limits()


def _deployment_names() -> dict[str, tuple[str, str]]:
    from apps.routing.snapshot import holder

    snap = holder._snapshot
    if snap is None:
        return {}
    return {d.id: (d.public_name, d.provider_name) for d in snap.deployments}


def _breakers() -> Iterator[Metric]:
    from apps.routing.resilience import stats
    from apps.routing.resilience.breaker import states

    names = _deployment_names()
    state = GaugeMetricFamily(
        "atp_circuit_state",
        "Circuit breaker per deployment: 1 for its current state.",
        labels=["deployment", "model", "provider", "state"],
    )
    failure_rate = GaugeMetricFamily(
        "atp_circuit_failure_rate",
        "Failure rate in the breaker's window.",
        labels=["deployment", "model", "provider"],
    )
    for dep_id, info in states().items():
        model, provider = names.get(dep_id, ("", ""))
        for name in _STATES:
            state.add_metric([dep_id, model, provider, name], 1.0 if info["state"] == name else 0.0)
        failure_rate.add_metric([dep_id, model, provider], info["failure_rate"])
    yield state
    yield failure_rate
    latency = GaugeMetricFamily(
        "atp_upstream_latency_ewma_ms",
        "Observed upstream latency (EWMA) per deployment.",
        labels=["deployment", "model", "provider"],
    )
    in_flight = GaugeMetricFamily(
        "atp_upstream_in_flight",
        "Upstream calls in flight.",
        labels=["deployment", "model", "provider"],
    )
    for dep_id, seen in stats.snapshot().items():
        model, provider = names.get(dep_id, ("", ""))
        if seen["latency_ewma_ms"] is not None:
            latency.add_metric([dep_id, model, provider], seen["latency_ewma_ms"])
        in_flight.add_metric([dep_id, model, provider], seen["in_flight"])
    yield latency
    yield in_flight


def _cache() -> Iterator[Metric]:
    from apps.routing import cache

    try:
        routes = cache.cache_stats()
    except Exception:  # an unreachable Redis leaves the cache figures out, not the page
        routes = {}
    lookups = CounterMetricFamily(
        "atp_cache_lookups", "Response cache look-ups by outcome.", labels=["route", "outcome"]
    )
    stores = CounterMetricFamily("atp_cache_stores", "Answers stored.", labels=["route"])
    hit_rate = GaugeMetricFamily("atp_cache_hit_rate", "Hits per look-up.", labels=["route"])
    for route, row in routes.items():
        for outcome, key in (
            ("hit", "hits"),
            ("semantic_hit", "semantic_hits"),
            ("miss", "misses"),
        ):
            lookups.add_metric([route, outcome], row.get(key, 0))
        stores.add_metric([route], row.get("stores", 0))
        if row.get("hit_rate") is not None:
            hit_rate.add_metric([route], row["hit_rate"])
    yield lookups
    yield stores
    yield hit_rate


def _records() -> Iterator[Metric]:
    """Write-behind queues: rows waiting, spilled, replayed, set aside or dropped."""
    from apps.routing.writebehind import QUEUES
    from atp_site.lib import spill

    queued = GaugeMetricFamily(
        "atp_writebehind_queued_rows", "Rows waiting in memory.", labels=["queue"]
    )
    for name, queue in QUEUES.items():
        queued.add_metric([name], len(queue))
    yield queued
    for name, help_text, data in (
        ("atp_writebehind_spilled_rows", "Rows spilled while the database was away.", "spilled"),
        ("atp_writebehind_replayed_rows", "Spilled rows written on replay.", "replayed"),
        (
            "atp_writebehind_dead_lettered_rows",
            "Rows the database refused, set aside in the dead-letter file.",
            "dead_lettered",
        ),
        (
            "atp_writebehind_dropped_rows",
            "Rows not recorded: spill full with ATP_SPILL_FULL=proceed.",
            "dropped",
        ),
        (
            "atp_writebehind_unreadable_lines",
            "Spilled lines no configured key decrypts (or torn by a crash), set aside.",
            "undecryptable",
        ),
    ):
        family = CounterMetricFamily(name, help_text, labels=["queue"])
        for queue_name, value in list(getattr(spill.stats, data).items()):
            family.add_metric([queue_name], value)
        yield family
    yield CounterMetricFamily(
        "atp_writebehind_refused_requests",
        "Requests refused with 503 because the spill file was full.",
        value=spill.stats.refused_requests,
    )
    state = spill.state
    yield GaugeMetricFamily(
        "atp_writebehind_spill_bytes", "Bytes of spilled rows waiting.", value=state.spill_bytes
    )
    yield GaugeMetricFamily(
        "atp_writebehind_dead_letter_bytes",
        "Bytes of dead-lettered rows.",
        value=state.dead_letter_bytes,
    )
    yield GaugeMetricFamily(
        "atp_writebehind_refusing",
        "1 while new /v1 requests are refused because records could not be kept.",
        value=1.0 if state.refusing else 0.0,
    )


def _limits() -> Iterator[Metric]:
    """Rate limits, budgets and overload control (apps.costs)."""
    from apps.costs import admission
    from apps.costs.overload import gate

    stats = admission.stats
    refused = CounterMetricFamily(
        "atp_limit_rejections",
        "Requests refused by a rate limit or budget (limit: requests, tokens, concurrent, "
        "cost or budget; level: key, project, tenant or plan).",
        labels=["limit", "level"],
    )
    for labels, value in list(stats.refused.items()):
        refused.add_metric(list(labels), value)
    yield refused
    yield CounterMetricFamily(
        "atp_budget_downgrades",
        "Requests moved to a cheaper model by a spent budget.",
        value=stats.downgraded,
    )
    yield CounterMetricFamily(
        "atp_limits_redis_errors",
        "Admissions that could not reach Redis (then failed open or closed per setting).",
        value=stats.redis_errors,
    )
    yield CounterMetricFamily(
        "atp_limits_settle_errors", "Settlements given up after retries.", value=stats.settle_errors
    )
    yield CounterMetricFamily(
        "atp_overload_shed", "Requests refused by overload control.", value=gate.shed
    )
    yield GaugeMetricFamily(
        "atp_in_flight", "/v1 requests this process holds now.", value=gate.in_flight
    )


registry = CollectorRegistry(auto_describe=False)
registry.register(GatewayCollector())


def _token_matches(request: HttpRequest, token: str) -> bool:
    given = request.headers.get("Authorization", "")
    if not given.startswith("Bearer "):
        return False
    # Compared as bytes: compare_digest refuses str holding anything but ASCII, and a
    # header may hold any byte.
    return hmac.compare_digest(
        given[7:].encode("utf-8", "surrogatepass"), token.encode("utf-8", "surrogatepass")
    )


def _staff_or_loopback(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return True
    return request.META.get("REMOTE_ADDR") in _LOOPBACK


def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.ATP_METRICS_TOKEN
    if token and not _token_matches(request, token):
        response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if not token and not _staff_or_loopback(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
