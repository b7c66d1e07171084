"""Hourly and daily rollups of the usage ledger, with baseline cost and cache savings.

A bucket (one hour or one UTC day) is always rebuilt whole: its rows are computed from the
source, then the old rows are deleted and the new ones inserted in one transaction. Running
again gives the same rows, and a run that dies half-way leaves every bucket either old or
new, so any run may be repeated or resumed.

Which hours to rebuild:
- the current hour and the RECENT_HOURS - 1 before it, on every run (cheap, and covers
  rows whose transaction committed after a higher id was already read);
- every hour holding a ledger row with an id above the cursor (RollupCursor): rows that
  arrived late, however late (a spill file replayed after an outage, say).
The cursor moves to the highest ledger id seen once those hours are rebuilt. Days are
rebuilt from their hourly rows whenever one of their hours is.

Each hourly row carries three sums beside the ledger's own:
- `cost_usd`: what was charged (the ledger's cost);
- `baseline_cost_usd`: what the same tokens would have cost on the tenant's baseline model
  (`Tenant.baseline_model`, priced at its lowest-priced deployment, so savings are never
  overstated). A tenant without one, or whose baseline model has no deployment, has a
  baseline equal to its cost: no savings are claimed for it;
- `cache_savings_usd`: for answers replayed from the response cache (which cost nothing),
  what the tokens would have cost at the serving deployment's prices.
Prices are those in force at the hour's start: the deployment's price history
(PriceVersion) when it has one, else its current prices. Tokens are summed per group
before pricing, so a sum may differ from per-request pricing by the rounding of 1e-8 USD
per request.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count, F, IntegerField, Max, Sum, Value
from django.db.models.functions import Greatest, TruncHour
from django.utils import timezone

from apps.costs.models import PriceVersion, RollupCursor, UsageRecord, UsageRollup
from apps.costs.pricing import Prices, cost_usd
from apps.providers.adapters.base import Usage

logger = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
CURSOR = "ledger"
# Hours rebuilt on every run whatever the cursor says: the current one and two before it.
RECENT_HOURS = 3
# New ledger ids one run takes on: a first run over a long ledger (or a large replay)
# catches up over several runs instead of holding the embedded process's database thread.
MAX_RECORDS_PER_RUN = 200_000

# What a rollup row is grouped by, and the sums it carries.
DIMENSIONS = ("tenant_id", "project_id", "api_key_id", "model", "provider_id", "route")
MEASURES = (
    "requests",
    "cached_requests",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cost_usd",
    "baseline_cost_usd",
    "cache_savings_usd",
)
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class RollupRun:
    """What one run rebuilt: hourly and daily buckets, rows written, the cursor after it."""

    hours: int
    days: int
    rows: int
    last_record_id: int

    def as_dict(self) -> dict[str, int]:
        return {
            "hours": self.hours,
            "days": self.days,
            "rows": self.rows,
            "last_record_id": self.last_record_id,
        }


def floor_hour(moment: datetime) -> datetime:
    """The start of the UTC hour holding `moment`."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def floor_day(moment: datetime) -> datetime:
    """The start (midnight UTC) of the UTC day holding `moment`."""
    return floor_hour(moment).replace(hour=0)


# --- prices ---------------------------------------------------------------------------------


def _prices(row: Any) -> Prices:
    return Prices(
        input=row.input_price,
        output=row.output_price,
        cached_input=row.cached_input_price,
        cache_write=row.cache_write_price,
        reasoning=row.reasoning_price,
    )


class PriceBook:
    """Deployment prices in force at a moment and each tenant's baseline model, read once
    per run (a few small tables) so pricing a bucket costs no query."""

    def __init__(self) -> None:
        from apps.providers.models import ModelDeployment
        from apps.tenants.models import Tenant

        self._deployments = list(ModelDeployment.objects.order_by("pk"))
        self._by_id = {d.pk: d for d in self._deployments}
        self._versions: dict[Any, list[tuple[datetime, Prices]]] = defaultdict(list)
        for version in PriceVersion.objects.order_by("deployment_id", "effective_from"):
            self._versions[version.deployment_id].append((version.effective_from, _prices(version)))
        self._baseline_model = dict(
            Tenant.objects.exclude(baseline_model="").values_list("pk", "baseline_model")
        )
        self._baseline_deployment: dict[str, Any] = {}

    def prices(self, deployment_id: Any, at: datetime) -> Prices | None:
        """The deployment's prices at `at`: the latest version started by then (the first
        version, for a moment before any), else its current prices; None when it is gone."""
        versions = self._versions.get(deployment_id)
        if versions:
            chosen = versions[0][1]
            for start, prices in versions:
                if start > at:
                    break
                chosen = prices
            return chosen
        deployment = self._by_id.get(deployment_id)
        return _prices(deployment) if deployment is not None else None

    def baseline(self, tenant_id: Any, at: datetime) -> Prices | None:
        """The prices of the tenant's baseline model at `at`, or None without one."""
        name = self._baseline_model.get(tenant_id)
        if not name:
            return None
        if name not in self._baseline_deployment:
            self._baseline_deployment[name] = self._cheapest(name)
            if self._baseline_deployment[name] is None:
                logger.warning("baseline model %r has no deployment: no savings measured", name)
        deployment = self._baseline_deployment[name]
        return self.prices(deployment.pk, at) if deployment is not None else None

    def _cheapest(self, name: str) -> Any:
        named = [d for d in self._deployments if d.public_name == name] or [
            d for d in self._deployments if name in (d.aliases or [])
        ]
        if not named:
            return None
        enabled = [d for d in named if d.enabled] or named
        return min(enabled, key=lambda d: d.input_price + d.output_price)


# --- buckets --------------------------------------------------------------------------------


def _usage(group: dict[str, Any]) -> Usage:
    """The group's tokens as one Usage whose cost is the sum of its requests' costs (the
    per-request clamps of pricing.cost_usd are applied in SQL before summing)."""
    cached = group["cached_input"] or 0
    written = group["cache_write"] or 0
    reasoning = group["reasoning"] or 0
    return Usage(
        input_tokens=(group["uncached"] or 0) + cached + written,
        output_tokens=(group["visible_output"] or 0) + reasoning,
        cached_input_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=reasoning,
    )


def _not_below_zero(expression: Any) -> Greatest:
    return Greatest(expression, Value(0), output_field=IntegerField())


def hour_rows(hour_start: datetime, book: PriceBook) -> list[UsageRollup]:
    """The hourly rollup rows of one hour, computed from the ledger (not saved)."""
    groups = (
        UsageRecord.objects.filter(created_at__gte=hour_start, created_at__lt=hour_start + HOUR)
        .values(*DIMENSIONS, "deployment_id", "cached")
        .annotate(
            n=Count("pk"),
            input=Sum("input_tokens"),
            output=Sum("output_tokens"),
            cached_input=Sum("cached_input_tokens"),
            cache_write=Sum("cache_write_tokens"),
            reasoning=Sum("reasoning_tokens"),
            uncached=Sum(
                _not_below_zero(
                    F("input_tokens") - F("cached_input_tokens") - F("cache_write_tokens")
                )
            ),
            visible_output=Sum(_not_below_zero(F("output_tokens") - F("reasoning_tokens"))),
            cost=Sum("cost_usd"),
        )
        .order_by()
    )
    rows: dict[tuple, UsageRollup] = {}
    for group in groups:
        key = tuple(group[name] for name in DIMENSIONS)
        row = rows.get(key)
        if row is None:
            row = rows[key] = UsageRollup(
                grain=UsageRollup.Grain.HOUR,
                bucket_start=hour_start,
                **dict(zip(DIMENSIONS, key, strict=True)),
                cost_usd=ZERO,
                baseline_cost_usd=ZERO,
                cache_savings_usd=ZERO,
            )
        usage = _usage(group)
        cost = group["cost"] or ZERO
        baseline = book.baseline(group["tenant_id"], hour_start)
        row.requests += group["n"]
        row.input_tokens += group["input"] or 0
        row.output_tokens += group["output"] or 0
        row.cached_input_tokens += group["cached_input"] or 0
        row.cost_usd += cost
        row.baseline_cost_usd += cost_usd(usage, baseline) if baseline is not None else cost
        if group["cached"]:
            row.cached_requests += group["n"]
            served = book.prices(group["deployment_id"], hour_start)
            if served is not None:
                row.cache_savings_usd += cost_usd(usage, served)
    return list(rows.values())


def day_rows(day_start: datetime) -> list[UsageRollup]:
    """The daily rollup rows of one UTC day, summed from its hourly rows (not saved)."""
    groups = (
        UsageRollup.objects.filter(
            grain=UsageRollup.Grain.HOUR,
            bucket_start__gte=day_start,
            bucket_start__lt=day_start + DAY,
        )
        .values(*DIMENSIONS)
        .annotate(**{f"sum_{name}": Sum(name) for name in MEASURES})
        .order_by()
    )
    return [
        UsageRollup(
            grain=UsageRollup.Grain.DAY,
            bucket_start=day_start,
            **{name: group[name] for name in DIMENSIONS},
            **{name: group[f"sum_{name}"] or 0 for name in MEASURES},
        )
        for group in groups
    ]


def _replace(grain: str, bucket_start: datetime, rows: list[UsageRollup]) -> None:
    """Swap a bucket's rows for `rows` in one transaction.

    Locking the cursor row first makes two runs (an overlapping beat, a manual rebuild)
    replace a bucket one after the other: interleaved, both deletes could run before
    either insert and the bucket would be counted twice.
    """
    with transaction.atomic():
        list(RollupCursor.objects.select_for_update().filter(name=CURSOR))
        UsageRollup.objects.filter(grain=grain, bucket_start=bucket_start).delete()
        UsageRollup.objects.bulk_create(rows, batch_size=1000)


def rollup_hours(hours: Iterable[datetime], *, book: PriceBook | None = None) -> RollupRun:
    """Rebuild the given hours (each floored to its hour) and the days holding them."""
    RollupCursor.objects.get_or_create(name=CURSOR)
    book = book or PriceBook()
    starts = sorted({floor_hour(h) for h in hours})
    written = 0
    for start in starts:
        rows = hour_rows(start, book)
        _replace(UsageRollup.Grain.HOUR, start, rows)
        written += len(rows)
    days = sorted({floor_day(h) for h in starts})
    for day in days:
        rows = day_rows(day)
        _replace(UsageRollup.Grain.DAY, day, rows)
        written += len(rows)
    cursor = RollupCursor.objects.get(name=CURSOR).last_record_id
    return RollupRun(hours=len(starts), days=len(days), rows=written, last_record_id=cursor)


def _hours_with_records(after_id: int, through_id: int) -> set[datetime]:
    hours = (
        UsageRecord.objects.filter(pk__gt=after_id, pk__lte=through_id)
        .annotate(hour=TruncHour("created_at", tzinfo=UTC))
        .values_list("hour", flat=True)
        .distinct()
        .order_by()
    )
    return set(hours)


def rollup_run(
    *,
    now: datetime | None = None,
    recent_hours: int = RECENT_HOURS,
    max_records: int = MAX_RECORDS_PER_RUN,
) -> RollupRun:
    """One pass of the rollup job: the recent hours, the hours of ledger rows that arrived
    since the last pass (up to `max_records` ids past the cursor), and their days; then the
    cursor moves on (see the module doc)."""
    now = now or timezone.now()
    cursor, _ = RollupCursor.objects.get_or_create(name=CURSOR)
    seen = cursor.last_record_id
    # The id of the max_records-th row past the cursor (ids have gaps: a PostgreSQL
    # sequence skips what rolled-back inserts took), else the newest.
    nth = (
        UsageRecord.objects.filter(pk__gt=seen)
        .order_by("pk")
        .values_list("pk", flat=True)[max_records - 1 : max_records]
    )
    top = next(iter(nth), None) or UsageRecord.objects.aggregate(top=Max("pk"))["top"] or 0
    current = floor_hour(now)
    hours = {current - k * HOUR for k in range(recent_hours)}
    if top > seen:
        hours |= _hours_with_records(seen, top)
    run = rollup_hours(hours)
    # Only forward: a slower, older run finishing last must not move it back.
    RollupCursor.objects.filter(name=CURSOR, last_record_id__lt=top).update(
        last_record_id=top, updated_at=timezone.now()
    )
    return RollupRun(hours=run.hours, days=run.days, rows=run.rows, last_record_id=max(top, seen))


def rollup_range(*, start: datetime, end: datetime) -> RollupRun:
    """Rebuild every hour overlapping [start, end), and their days (a backfill, or after
    a tenant's baseline model changed and past savings should follow)."""
    hours = []
    hour = floor_hour(start)
    while hour < end:
        hours.append(hour)
        hour += HOUR
    return rollup_hours(hours)
