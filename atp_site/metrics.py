"""Prometheus metrics at GET /metrics: requests, latency and time-to-first-token
histograms, tokens, cost, failed attempts and fallbacks, circuit breakers, cache, records,
limits.

Figures are per process unless ATP_METRICS_DIR is set, when a scrape of any worker process
answers for all the workers of its instance (see "Instances with several worker processes"
below; Prometheus sums across instances): request counters are kept by the settle step; circuit breaker
states are the ones this process last saw (they are shared through Redis, so every
process converges within ATP_BREAKER_SYNC_SECONDS); response-cache counters are the
route totals (Redis-wide when Redis is configured).

Access: with ATP_METRICS_TOKEN set, scrapers send `Authorization: Bearer <token>`, and a
missing or wrong token (whatever bytes it holds) gets 401; without it, only loopback
addresses and signed-in staff may read the page (403 for others).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator
from itertools import accumulate
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

# (endpoint, route, model, status) -> count; plus tokens and cost by (route, model).
requests = Counter()
tokens_in = Counter()
tokens_out = Counter()
cost_usd = Counter()
# Histograms by (endpoint, route, model): a count per bucket, the +Inf count, then the sum.
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
durations: dict[tuple, list] = {}
first_tokens: dict[tuple, list] = {}
# Upstream attempts that failed or were skipped before the answer (or the error):
# (model, provider, status) where status is the HTTP status or the reason for a skip; and
# requests answered by another deployment than the first one tried, by (route, model).
failed_attempts = Counter()
fallbacks = Counter()

logger = logging.getLogger(__name__)

_STATES = ("closed", "half_open", "open")
_LOOPBACK = frozenset({"127.0.0.1", "::1"})


def _observe_seconds(data: dict[tuple, list], key: tuple, seconds: float) -> None:
    counts = data.get(key)
    if counts is None:
        counts = data[key] = [0] * (len(SECONDS_BUCKETS) + 1) + [0.0]
    counts[bisect_left(SECONDS_BUCKETS, seconds)] += 1
    counts[-1] += seconds


def observe(row: dict[str, Any]) -> None:
    """Count one settled request (called by settle; a few dictionary increments)."""
    route_model = (row["route"], row["model"])
    endpoint = row["endpoint"]
    requests[(endpoint, *route_model, row["status"])] += 1
    tokens_in[route_model] += row["input_tokens"]
    tokens_out[route_model] += row["output_tokens"]
    cost_usd[route_model] += float(row["cost_usd"] or 0)
    key = (endpoint, *route_model)
    _observe_seconds(durations, key, row["latency_ms"] / 1000)
    if row["ttft_ms"] is not None:
        _observe_seconds(first_tokens, key, row["ttft_ms"] / 1000)
    decision = row["decision"]
    if decision and "attempts" in decision:
        for attempt in decision["attempts"]:
            reason = attempt.get("skipped") or str(attempt.get("status", ""))
            failed_attempts[(attempt["deployment"], attempt["provider"], reason)] += 1
        if row["status"] == "success":
            fallbacks[route_model] += 1


def _histogram(name: str, help_text: str, data: dict[tuple, list]) -> Metric:
    family = HistogramMetricFamily(name, help_text, labels=["endpoint", "route", "model"])
    bounds = [*(repr(b) for b in SECONDS_BUCKETS), "+Inf"]
    for labels, counts in list(data.items()):
        counts = list(counts)
        cumulative = list(accumulate(counts[:-1]))
        family.add_metric(list(labels), list(zip(bounds, cumulative, strict=True)), counts[-1])
    return family


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
        yield _histogram(
            "atp_request_duration_seconds",
            "Time from a request's arrival to its last byte.",
            durations,
        )
        yield _histogram(
            "atp_time_to_first_token_seconds",
            "Time from a streamed request's arrival to its first token.",
            first_tokens,
        )
        failed = CounterMetricFamily(
            "atp_upstream_failed_attempts",
            "Upstream attempts that failed (status: the HTTP status) or were skipped "
            "(status: circuit_open, not_allowed) before the answer or the error.",
            labels=["model", "provider", "status"],
        )
        for labels, value in list(failed_attempts.items()):
            failed.add_metric(list(labels), value)
        yield failed
        fell_back = CounterMetricFamily(
            "atp_fallbacks",
            "Requests answered after at least one failed or skipped attempt.",
            labels=["route", "model"],
        )
        for labels, value in list(fallbacks.items()):
            fell_back.add_metric(list(labels), value)
        yield fell_back
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
    from apps.costs.overload import TIERS, gate

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
        "atp_overload_shed",
        "Requests refused with 503 because the in-flight window was full.",
        value=gate.shed,
    )
    tiers = CounterMetricFamily(
        "atp_overload_tier_refusals",
        "Requests refused with 429 because their service tier's share of the window was in use.",
        labels=["tier"],
    )
    for priority, value in sorted(gate.shed_by_tier.items()):
        tiers.add_metric([TIERS.get(priority, str(priority))], value)
    yield tiers
    yield GaugeMetricFamily(
        "atp_in_flight", "/v1 requests this process holds now.", value=gate.in_flight
    )
    yield GaugeMetricFamily(
        "atp_overload_window",
        "The in-flight window overload control admits up to now.",
        value=gate.capacity(),
    )
    yield GaugeMetricFamily(
        "atp_event_loop_lag_seconds",
        "How late the event loop ran at the overload controller's last tick.",
        value=gate.lag,
    )


registry = CollectorRegistry(auto_describe=False)
registry.register(GatewayCollector())


# --- Instances with several worker processes (ATP_METRICS_DIR) --------------------------
# Each worker process writes its figures to <ATP_METRICS_DIR>/<pid>.json every
# ATP_METRICS_WRITE_SECONDS and when it stops; a scrape of any worker answers for the whole
# instance: its own figures as they are now plus every other worker's last file. The hot
# path keeps its dictionary increments (prometheus_client's memory-mapped multiprocess
# values cost a lock and a write per increment, and take no custom collectors).
#
# Counters and histograms are summed over every file, a stopped worker's included (as
# Prometheus' multiprocess mode keeps them), so the instance's totals never go back. Gauges
# come from running workers only: summed (rows queued, requests in flight), or the largest
# value for those every worker reads from the same place (breaker states and the cache's
# Redis-wide totals, which would otherwise count once per worker) and for the event loop's
# lag (the most loaded worker's).
_LARGEST = frozenset({
    "atp_circuit_state", "atp_circuit_failure_rate", "atp_upstream_latency_ewma_ms",
    "atp_cache_lookups", "atp_cache_stores", "atp_cache_hit_rate", "atp_writebehind_refusing",
    "atp_event_loop_lag_seconds",  # the most loaded worker's
})  # fmt: skip


def _families() -> list[list]:
    return [
        [m.name, m.type, m.documentation, [[x.name, x.labels, x.value] for x in m.samples]]
        for m in registry.collect()
    ]


def write_process_file(directory: str | os.PathLike) -> None:
    """Write this process's figures for the other workers' scrapes (atomically)."""
    path = Path(directory) / f"{os.getpid()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps({"pid": os.getpid(), "families": _families()}))
    os.replace(tmp, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _other_processes(directory: str | os.PathLike) -> Iterator[tuple[bool, list]]:
    own = os.getpid()
    for path in Path(directory).glob("*.json"):
        try:
            data = orjson.loads(path.read_bytes())
            pid = int(data["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a file being replaced, or not one of ours
        if pid != own:
            yield _alive(pid), data["families"]


def merged(directory: str | os.PathLike) -> list[Metric]:
    """The instance's metrics: this process's live figures and every other worker's file."""
    families: dict[str, tuple[str, str, dict]] = {}

    def add(family: list, alive: bool) -> None:
        name, kind, doc, samples = family
        if kind == "gauge" and not alive:
            return
        entry = families.setdefault(name, (kind, doc, {}))
        values = entry[2]
        same = name in _LARGEST
        for sample_name, labels, value in samples:
            key = (sample_name, tuple(sorted(labels.items())))
            if key in values:
                values[key] = max(values[key], value) if same else values[key] + value
            else:
                values[key] = value

    for family in _families():
        add(family, True)
    for alive, others in _other_processes(directory):
        for family in others:
            add(family, alive)
    out = []
    for name, (kind, doc, values) in families.items():
        metric = Metric(name, doc, kind)
        for (sample_name, labels), value in values.items():
            metric.add_sample(sample_name, dict(labels), value)
        out.append(metric)
    return out


class _Merged:
    def __init__(self, directory: str) -> None:
        self.directory = directory

    def collect(self) -> Iterator[Metric]:
        return iter(merged(self.directory))


async def share_forever() -> None:
    """Write this process's file every ATP_METRICS_WRITE_SECONDS (started at start-up when
    ATP_METRICS_DIR is set; the last write happens at shutdown)."""
    directory = settings.ATP_METRICS_DIR
    while True:
        try:
            await asyncio.to_thread(write_process_file, directory)
        except OSError:
            logger.warning("metrics: could not write to %s", directory, exc_info=True)
        await asyncio.sleep(settings.ATP_METRICS_WRITE_SECONDS)


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
    source = registry
    if settings.ATP_METRICS_DIR:
        source = CollectorRegistry(auto_describe=False)
        source.register(_Merged(settings.ATP_METRICS_DIR))
    return HttpResponse(generate_latest(source), content_type=CONTENT_TYPE_LATEST)
