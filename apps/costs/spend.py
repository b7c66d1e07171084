"""Reads of spend and usage for the console and the management API, from the rollups.

Every selector takes the `user` reading (None for an internal caller) and sees only the
rollups of the tenants that user may view (apps.tenants.permissions: `costs.view_usagerollup`
globally, or `tenants.view_tenant` on the tenant), so a tenant the user may not see simply
has no spend. Amounts are Decimals in USD; times are UTC.

The rollups (apps.costs.rollups) are rebuilt every few minutes, so the current hour may lag
the ledger by that much. Hourly rollups answer any range; daily ones answer ranges whose
bounds are midnights (UTC) faster, and `usage_grain` picks between them.

Measures of every row: requests, cached_requests (answered from the response cache),
input_tokens, output_tokens, cached_input_tokens, cost_usd (what was charged),
baseline_cost_usd (the same tokens on the tenant's baseline model), savings_usd
(baseline - cost, negative when the routed traffic cost more) and cache_savings_usd (what
cache hits would have cost upstream).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import F, Min, QuerySet, Sum
from django.db.models.functions import TruncDay
from django.utils import timezone

from apps.costs.forecast import HORIZON_DAYS, Forecast, forecast_daily
from apps.costs.models import SpendAnomaly, UsageRollup
from apps.costs.rollups import DAY, HOUR, floor_day, floor_hour
from apps.tenants import permissions

HOURLY = UsageRollup.Grain.HOUR
DAILY = UsageRollup.Grain.DAY

# What `group_by` may name, and the rollup field behind each (day and hour are time buckets).
GROUPS = ("tenant", "project", "key", "model", "provider", "route", "day", "hour")
GROUP_FIELDS = {
    "tenant": "tenant_id",
    "project": "project_id",
    "key": "api_key_id",
    "model": "model",
    "provider": "provider_id",
    "route": "route",
}
SUMS = (
    "requests",
    "cached_requests",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cost_usd",
    "baseline_cost_usd",
    "cache_savings_usd",
)
# Every measure of a row, in the order the API and CSV show them.
MEASURES = (*SUMS[:6], "baseline_cost_usd", "savings_usd", "cache_savings_usd")
ZERO = Decimal(0)
USD = Decimal("0.00000001")

# A series is zero-filled bucket by bucket: more points than this is a mistake in the range.
MAX_SERIES_POINTS = 10_000
# Periods the savings report shows when no start is given.
DEFAULT_PERIODS = {"day": 30, "week": 12, "month": 12}
PERIODS = tuple(DEFAULT_PERIODS)
# Days of history a forecast is fitted on: thirteen weeks follow recent growth without
# forgetting the weekly pattern.
FORECAST_HISTORY_DAYS = 91


class RangeTooLong(ValueError):
    """A series or report would have more points than MAX_SERIES_POINTS."""


@dataclass(frozen=True, slots=True)
class UsageFilters:
    """What to read: [start, end) in UTC and exact matches on the rollup's dimensions.

    An hour (or a day, on daily rollups) is included when it overlaps [start, end).
    `provider_ids` is a set of ids (a provider name may match several); an empty tuple
    matches nothing.
    """

    start: datetime | None = None
    end: datetime | None = None
    tenant_id: uuid.UUID | None = None
    project_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    model: str | None = None
    provider_ids: tuple[uuid.UUID, ...] | None = None
    route: str | None = None


def usage_scope(*, user: Any) -> QuerySet[UsageRollup]:
    """Every rollup row `user` may view."""
    return permissions.restrict(UsageRollup.objects.all(), user, "view")


def usage_grain(filters: UsageFilters, group_by: Sequence[str] = ()) -> str:
    """The rollup grain that answers exactly: daily unless grouping by hour or a bound is
    not a midnight (UTC)."""
    if "hour" in group_by:
        return HOURLY
    for bound in (filters.start, filters.end):
        if bound is not None and bound != floor_day(bound):
            return HOURLY
    return DAILY


def usage_rollups(*, user: Any, filters: UsageFilters, grain: str) -> QuerySet[UsageRollup]:
    """The `grain` rollup rows `user` may view that match `filters`."""
    rows = usage_scope(user=user).filter(grain=grain)
    if filters.start is not None:
        floor = floor_hour if grain == HOURLY else floor_day
        rows = rows.filter(bucket_start__gte=floor(filters.start))
    if filters.end is not None:
        rows = rows.filter(bucket_start__lt=filters.end)
    exact = {
        "tenant_id": filters.tenant_id,
        "project_id": filters.project_id,
        "api_key_id": filters.api_key_id,
        "model": filters.model,
        "route": filters.route,
    }
    rows = rows.filter(**{name: value for name, value in exact.items() if value is not None})
    if filters.provider_ids is not None:
        rows = rows.filter(provider_id__in=filters.provider_ids)
    return rows


def _sums() -> dict[str, Sum]:
    # Aliased: an annotation may not take the name of a model field.
    return {f"sum_{name}": Sum(name) for name in SUMS}


def _measures(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {name: row.get(f"sum_{name}") or 0 for name in SUMS}
    for name in ("cost_usd", "baseline_cost_usd", "cache_savings_usd"):
        out[name] = Decimal(out[name]).quantize(USD)
    out["savings_usd"] = out["baseline_cost_usd"] - out["cost_usd"]
    return {name: out[name] for name in MEASURES}


def _names(rows: list[dict[str, Any]], group_by: Sequence[str]) -> dict[str, dict]:
    """Readable names of the ids in `rows`: tenant slugs, project slugs, key and provider
    names (one query per kind)."""
    from apps.providers.selectors import provider_list
    from apps.tenants.selectors import api_key_list, project_list, tenant_list

    sources = {
        "tenant": (tenant_list, "slug"),
        "project": (project_list, "slug"),
        "key": (api_key_list, "name"),
        "provider": (provider_list, "name"),
    }
    names: dict[str, dict] = {}
    for group, (selector, label) in sources.items():
        if group not in group_by:
            continue
        ids = {row[GROUP_FIELDS[group]] for row in rows} - {None}
        names[group] = dict(selector().filter(pk__in=ids).values_list("pk", label)) if ids else {}
    return names


def usage_columns(group_by: Sequence[str]) -> list[str]:
    """The columns of `usage_rows(group_by=...)`'s rows, in order (for CSV headers)."""
    labels = {
        "tenant": ["tenant_id", "tenant"],
        "project": ["project_id", "project"],
        "key": ["api_key_id", "api_key"],
        "provider": ["provider_id", "provider"],
    }
    columns = [c for g in dict.fromkeys(group_by) for c in labels.get(g, [g])]
    return [*columns, *MEASURES]


def usage_rows(
    *, user: Any, filters: UsageFilters, group_by: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Usage summed per group: one dict per distinct combination of `group_by` (names from
    GROUPS), the group's columns first, then MEASURES.

    Columns per group: tenant -> `tenant_id`, `tenant` (slug); project -> `project_id`,
    `project` (slug); key -> `api_key_id`, `api_key` (name); model -> `model`; provider ->
    `provider_id`, `provider` (name); route -> `route`; day -> `day` (a date); hour ->
    `hour` (an aware datetime). Rows come in time order, then by cost, highest first.
    Without `group_by`, one row holds the totals (zeros when nothing matched).
    """
    unknown = [g for g in group_by if g not in GROUPS]
    if unknown:
        raise ValueError(f"unknown group {unknown[0]!r}")
    group_by = list(dict.fromkeys(group_by))
    grain = usage_grain(filters, group_by)
    rollups = usage_rollups(user=user, filters=filters, grain=grain)
    if not group_by:
        return [_measures(rollups.aggregate(**_sums()))]
    times: dict[str, Any] = {}
    if "day" in group_by:
        times["day"] = (
            TruncDay("bucket_start", tzinfo=UTC) if grain == HOURLY else F("bucket_start")
        )
    if "hour" in group_by:
        times["hour"] = F("bucket_start")
    fields = [GROUP_FIELDS[g] for g in group_by if g in GROUP_FIELDS]
    rows = list(
        rollups.annotate(**times)
        .values(*fields, *times)
        .annotate(**_sums())
        .order_by(*times, "-sum_cost_usd", *fields)
    )
    names = _names(rows, group_by)
    out = []
    for row in rows:
        item: dict[str, Any] = {}
        for group in group_by:
            if group == "day":
                item["day"] = row["day"].astimezone(UTC).date()
            elif group == "hour":
                item["hour"] = row["hour"].astimezone(UTC)
            elif group in names:
                value = row[GROUP_FIELDS[group]]
                item[GROUP_FIELDS[group]] = value
                label = "api_key" if group == "key" else group
                item[label] = names[group].get(value)
            else:
                item[group] = row[GROUP_FIELDS[group]]
        item.update(_measures(row))
        out.append(item)
    return out


def usage_totals(*, user: Any, filters: UsageFilters) -> dict[str, Any]:
    """The MEASURES of everything matching `filters`, plus `cache_hit_rate` (cached
    requests over requests, None without requests)."""
    totals = usage_rows(user=user, filters=filters)[0]
    requests = totals["requests"]
    totals["cache_hit_rate"] = totals["cached_requests"] / requests if requests else None
    return totals


def spend_top(
    *, user: Any, filters: UsageFilters, by: str, limit: int | None = 10
) -> list[dict[str, Any]]:
    """The `limit` biggest spenders by `by` (tenant, project, key, model, provider or
    route), highest cost first, each a `usage_rows` row; `limit=None` gives them all
    (cost per route: `spend_top(..., by="route", limit=None)`)."""
    if by not in GROUP_FIELDS:
        raise ValueError(f"cannot rank by {by!r}")
    rows = usage_rows(user=user, filters=filters, group_by=[by])
    return rows if limit is None else rows[:limit]


def window_gain_share(savings: Decimal, percent: Decimal | None) -> Decimal:
    """The gain share of `savings` taken as one period, by the rule of SavingsPeriod: the
    tenant's share of the savings when they are positive, else nothing."""
    if not percent or savings <= 0:
        return ZERO
    return (savings * Decimal(percent) / 100).quantize(USD)


def spend_by_tenant(*, user: Any, filters: UsageFilters) -> list[dict[str, Any]]:
    """Spend per tenant, highest first, each with its gain share over the whole window."""
    from apps.tenants.selectors import tenant_list

    rows = spend_top(user=user, filters=filters, by="tenant", limit=None)
    ids = {row["tenant_id"] for row in rows} - {None}
    shares = (
        dict(tenant_list().filter(pk__in=ids).values_list("pk", "gain_share_percent"))
        if ids
        else {}
    )
    for row in rows:
        row["gain_share_usd"] = window_gain_share(row["savings_usd"], shares.get(row["tenant_id"]))
    return rows


def _buckets(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    if (end - start) / step > MAX_SERIES_POINTS:
        raise RangeTooLong(f"more than {MAX_SERIES_POINTS} points")
    out = []
    bucket = start
    while bucket < end:
        out.append(bucket)
        bucket += step
    return out


def spend_series(*, user: Any, filters: UsageFilters, grain: str = DAILY) -> list[dict[str, Any]]:
    """Measures per hour or per day (`grain`) from filters.start to filters.end (both
    required), every bucket present (zeros where nothing was spent), oldest first. Each row
    has `bucket` (an aware datetime, the bucket's start) then MEASURES. Daily buckets are
    UTC days; the bounds are widened to whole buckets."""
    if filters.start is None or filters.end is None:
        raise ValueError("a series needs a start and an end")
    floor, step = (floor_hour, HOUR) if grain == HOURLY else (floor_day, DAY)
    buckets = _buckets(floor(filters.start), filters.end, step)
    rows = (
        usage_rollups(user=user, filters=filters, grain=grain)
        .values("bucket_start")
        .annotate(**_sums())
        .order_by("bucket_start")
    )
    found = {row["bucket_start"].astimezone(UTC): _measures(row) for row in rows}
    empty = _measures({})
    return [{"bucket": b, **found.get(b, empty)} for b in buckets]


def cache_savings(*, user: Any, filters: UsageFilters) -> dict[str, Any]:
    """What the response cache did: `requests`, `cached_requests`, `cache_hit_rate` and
    `cache_savings_usd` (what the replayed answers would have cost upstream)."""
    totals = usage_totals(user=user, filters=filters)
    return {
        name: totals[name]
        for name in ("requests", "cached_requests", "cache_hit_rate", "cache_savings_usd")
    }


# --- savings and gain share -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SavingsPeriod:
    """One period's spend against the baseline, and the gain share it earns.

    savings = baseline - cost (negative when the routed traffic cost more than the baseline
    would have); gain share = max(savings, 0) * gain_share_percent / 100: a period that
    saved nothing owes nothing and does not offset another.
    """

    start: datetime
    end: datetime
    requests: int
    cost_usd: Decimal
    baseline_cost_usd: Decimal
    savings_usd: Decimal
    cache_savings_usd: Decimal
    gain_share_usd: Decimal


@dataclass(frozen=True, slots=True)
class SavingsReport:
    """A tenant's savings per period (UTC days, ISO weeks from Monday, or calendar months)
    and their totals (the total gain share is the sum of the periods')."""

    tenant: Any
    baseline_model: str
    gain_share_percent: Decimal
    period: str
    periods: list[SavingsPeriod] = field(default_factory=list)
    totals: SavingsPeriod | None = None


def period_floor(moment: datetime, period: str) -> datetime:
    """The start of the `period` (day, week or month) holding `moment`, in UTC."""
    day = floor_day(moment)
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def _period_next(start: datetime, period: str) -> datetime:
    try:
        if period == "day":
            return start + DAY
        if period == "week":
            return start + timedelta(days=7)
        year, month = divmod(start.month, 12)
        return start.replace(year=start.year + year, month=month + 1)
    except (OverflowError, ValueError):
        return datetime.max.replace(tzinfo=UTC)


def _period_back(start: datetime, period: str, count: int) -> datetime:
    """The start of the period `count` periods before the one starting at `start`."""
    if period == "month":
        index = start.year * 12 + start.month - 1 - count
        return start.replace(year=max(1, index // 12), month=index % 12 + 1)
    days = count * (7 if period == "week" else 1)
    return start - timedelta(days=min(days, (start - datetime.min.replace(tzinfo=UTC)).days))


def savings_by_period(
    *,
    user: Any,
    tenant: Any,
    period: str = "month",
    start: datetime | None = None,
    end: datetime | None = None,
    now: datetime | None = None,
) -> SavingsReport:
    """`tenant`'s cost, baseline, savings, cache savings and gain share per `period` from
    the period holding `start` up to `end` (exclusive; default: now). Without `start`, the
    last DEFAULT_PERIODS[period] periods up to `end`, the current one included. A user who
    may not see the tenant's spend gets zeros."""
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}")
    end = end or now or timezone.now()
    last = period_floor(end - timedelta(microseconds=1), period)
    first = (
        period_floor(start, period)
        if start is not None
        else _period_back(last, period, DEFAULT_PERIODS[period] - 1)
    )
    starts = []
    bucket = first
    while bucket < end:
        starts.append(bucket)
        if len(starts) > MAX_SERIES_POINTS:
            raise RangeTooLong(f"more than {MAX_SERIES_POINTS} periods")
        bucket = _period_next(bucket, period)
    daily = (
        usage_rollups(
            user=user,
            filters=UsageFilters(start=first, end=end, tenant_id=tenant.pk),
            grain=DAILY,
        )
        .values("bucket_start")
        .annotate(**_sums())
        .order_by("bucket_start")
    )
    sums: dict[datetime, dict[str, Any]] = {}
    for row in daily:
        key = period_floor(row["bucket_start"], period)
        into = sums.setdefault(key, dict.fromkeys(SUMS, 0))
        for name in SUMS:
            into[name] += row[f"sum_{name}"] or 0
    share = Decimal(tenant.gain_share_percent)
    periods = []
    for begin in starts:
        measures = _measures({f"sum_{k}": v for k, v in sums.get(begin, {}).items()})
        savings = measures["savings_usd"]
        periods.append(
            SavingsPeriod(
                start=begin,
                end=min(_period_next(begin, period), end),
                requests=measures["requests"],
                cost_usd=measures["cost_usd"],
                baseline_cost_usd=measures["baseline_cost_usd"],
                savings_usd=savings,
                cache_savings_usd=measures["cache_savings_usd"],
                gain_share_usd=(max(savings, ZERO) * share / 100).quantize(USD),
            )
        )
    totals = SavingsPeriod(
        start=first,
        end=end,
        requests=sum(p.requests for p in periods),
        cost_usd=sum((p.cost_usd for p in periods), ZERO),
        baseline_cost_usd=sum((p.baseline_cost_usd for p in periods), ZERO),
        savings_usd=sum((p.savings_usd for p in periods), ZERO),
        cache_savings_usd=sum((p.cache_savings_usd for p in periods), ZERO),
        gain_share_usd=sum((p.gain_share_usd for p in periods), ZERO),
    )
    return SavingsReport(
        tenant=tenant,
        baseline_model=tenant.baseline_model,
        gain_share_percent=share,
        period=period,
        periods=periods,
        totals=totals,
    )


# --- forecast -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TenantForecast:
    """A tenant's spend forecast (apps.costs.forecast) and the history it was fitted on:
    the complete UTC days from `history_start` (its first day with spend, at most
    FORECAST_HISTORY_DAYS ago) to yesterday."""

    tenant: Any
    history_start: date | None
    history: list[Decimal]
    forecast: Forecast


def spend_forecast(
    *, user: Any, tenant: Any, today: date | None = None, horizon: int = HORIZON_DAYS
) -> TenantForecast:
    """`tenant`'s spend forecast for the `horizon` days from today, fitted on its daily
    rollups (today, still running, is left out of the fit)."""
    today = today or timezone.now().astimezone(UTC).date()
    end = datetime(today.year, today.month, today.day, tzinfo=UTC)
    earliest = end - timedelta(days=FORECAST_HISTORY_DAYS)
    rows = usage_rollups(user=user, filters=UsageFilters(end=end, tenant_id=tenant.pk), grain=DAILY)
    first = rows.aggregate(first=Min("bucket_start"))["first"]
    if first is None:
        return TenantForecast(
            tenant=tenant,
            history_start=None,
            history=[],
            forecast=forecast_daily([], start=today, horizon=horizon),
        )
    start = max(floor_day(first), earliest)
    spent = {
        row["bucket_start"].astimezone(UTC): row["total"] or ZERO
        for row in rows.filter(bucket_start__gte=start)
        .values("bucket_start")
        .annotate(total=Sum("cost_usd"))
        .order_by()
    }
    history = [Decimal(spent.get(day, ZERO)) for day in _buckets(start, end, DAY)]
    return TenantForecast(
        tenant=tenant,
        history_start=start.date(),
        history=history,
        forecast=forecast_daily([float(v) for v in history], start=start.date(), horizon=horizon),
    )


# --- anomalies ------------------------------------------------------------------------------


def spend_anomaly_list(*, user: Any, tenant: Any = None) -> QuerySet[SpendAnomaly]:
    """Recorded spend anomalies, newest hour first, of the tenants whose spend `user` may
    view (optionally of one tenant)."""
    anomalies = SpendAnomaly.objects.select_related("tenant")
    allowed = permissions.tenant_ids(user, UsageRollup, "view")
    if allowed is not None:
        anomalies = anomalies.filter(tenant_id__in=allowed)
    if tenant is not None:
        anomalies = anomalies.filter(tenant=tenant)
    return anomalies.order_by("-hour_start")
