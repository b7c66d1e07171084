"""What one process counts per time bucket, and how buckets from many processes merge.

A sample is a flat mapping of counter name to number: merging samples from several processes
(or several seconds) is adding them key by key. Latencies are counted in fixed histogram
buckets, so a percentile read from merged buckets is the percentile of every request counted,
which averaging per-process percentiles would not give.

Keys (labels are bounded: route, model and tenant names or ids, never key, user or request):

    n, err, in, out, usd            requests, errors, tokens in and out, cost in USD
    look, hit                       response-cache look-ups and hits
    lat:<i>, ttft:<i>               latency and time-to-first-token histogram buckets
    route:<name>, model:<name>      requests per route and per model
    t:<tenant id>, tusd:<tenant id> requests and cost per tenant
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from typing import Any

Sample = dict[str, float]

# Upper bounds (milliseconds) of the histogram buckets; a last bucket holds everything above.
BOUNDS_MS: tuple[int, ...] = (
    5,
    10,
    25,
    50,
    75,
    100,
    150,
    250,
    400,
    600,
    1000,
    1500,
    2500,
    4000,
    6000,
    10000,
    15000,
    30000,
    60000,
)
LAT_KEYS = tuple(f"lat:{i}" for i in range(len(BOUNDS_MS) + 1))
TTFT_KEYS = tuple(f"ttft:{i}" for i in range(len(BOUNDS_MS) + 1))

CACHE_HITS = frozenset({"hit", "semantic_hit"})
CACHE_LOOKUPS = frozenset({"hit", "semantic_hit", "miss"})


def bucket_of(ms: float) -> int:
    """Index of the histogram bucket counting a duration of `ms` milliseconds."""
    return bisect_left(BOUNDS_MS, ms)


# Label keys by label value, made once: rows repeat a few routes, models and tenants.
_keys: dict[tuple[str, Any], tuple[str, ...]] = {}


def _label_keys(kind: str, value: Any) -> tuple[str, ...]:
    found = _keys.get((kind, value))
    if found is None:
        tenant = kind == "tenant"
        found = (f"t:{value}", f"tusd:{value}") if tenant else (f"{kind}:{value}",)
        if len(_keys) < 100_000:  # labels are bounded; this bounds the cache regardless
            _keys[(kind, value)] = found
    return found


def add_row(sample: Sample, row: Mapping[str, Any]) -> None:
    """Count one settled request-log row (as apps.routing.pipeline.settle builds it).

    Called for every request, in the write-behind flush: kept to a few dictionary updates.
    """
    get = sample.get
    sample["n"] = get("n", 0) + 1
    if row["status"] == "error":
        sample["err"] = get("err", 0) + 1
    sample["in"] = get("in", 0) + (row["input_tokens"] or 0)
    sample["out"] = get("out", 0) + (row["output_tokens"] or 0)
    cost = row["cost_usd"]
    cost = float(cost) if cost else 0.0
    if cost:
        sample["usd"] = get("usd", 0) + cost
    cache = row.get("cache")
    if cache and cache in CACHE_LOOKUPS:
        sample["look"] = get("look", 0) + 1
        if cache in CACHE_HITS:
            sample["hit"] = get("hit", 0) + 1
    latency = row.get("latency_ms")
    if latency is not None:
        key = LAT_KEYS[bisect_left(BOUNDS_MS, latency)]
        sample[key] = get(key, 0) + 1
    ttft = row.get("ttft_ms")
    if ttft is not None:
        key = TTFT_KEYS[bisect_left(BOUNDS_MS, ttft)]
        sample[key] = get(key, 0) + 1
    route = row.get("route")
    if route:
        (key,) = _label_keys("route", route)
        sample[key] = get(key, 0) + 1
    model = row.get("model")
    if model:
        (key,) = _label_keys("model", model)
        sample[key] = get(key, 0) + 1
    tenant = row.get("tenant_id")
    if tenant is not None:
        count_key, cost_key = _label_keys("tenant", tenant)
        sample[count_key] = get(count_key, 0) + 1
        sample[cost_key] = get(cost_key, 0) + cost


def merge(samples: Iterable[Mapping[str, float]]) -> Sample:
    """The sum of `samples`, key by key."""
    total: Sample = {}
    for sample in samples:
        for key, value in sample.items():
            total[key] = total.get(key, 0) + value
    return total


def histogram(sample: Mapping[str, float], prefix: str = "lat") -> list[float]:
    """The bucket counts of one histogram (`lat` or `ttft`) of a sample."""
    return [sample.get(f"{prefix}:{i}", 0) for i in range(len(BOUNDS_MS) + 1)]


def percentile(counts: list[float], q: float) -> float | None:
    """The `q` quantile (0..1) of a bucketed histogram, interpolated inside its bucket, in ms.

    None when the histogram is empty. Values above the last bound read as that bound.
    """
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0.0
    for i, count in enumerate(counts):
        if count and seen + count >= rank:
            if i >= len(BOUNDS_MS):
                return float(BOUNDS_MS[-1])
            lower = BOUNDS_MS[i - 1] if i else 0
            upper = BOUNDS_MS[i]
            return lower + (upper - lower) * ((rank - seen) / count)
        seen += count
    return float(BOUNDS_MS[-1])


def labelled(sample: Mapping[str, float], prefix: str) -> dict[str, float]:
    """The counters of one label (`route`, `model`, `t`, `tusd`) by label value."""
    start = f"{prefix}:"
    return {k[len(start) :]: v for k, v in sample.items() if k.startswith(start)}
