"""Usage rollups: they add up to the ledger, rerun to the same rows, pick up late rows, and
price the baseline and the cache savings."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum

from apps.costs.models import PriceVersion, RollupCursor, UsageRecord, UsageRollup
from apps.costs.pricing import Prices, cost_usd
from apps.costs.rollups import rollup_range, rollup_run
from apps.costs.tasks import rollup_usage
from apps.providers.adapters.base import Usage

pytestmark = pytest.mark.django_db

D = Decimal
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday, 09:00 UTC
HOUR = timedelta(hours=1)
FIELDS = (
    "grain",
    "bucket_start",
    "tenant_id",
    "project_id",
    "api_key_id",
    "model",
    "provider_id",
    "route",
    "requests",
    "cached_requests",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cost_usd",
    "baseline_cost_usd",
    "cache_savings_usd",
)
_ids = itertools.count()


@pytest.fixture
def world(tenant_factory, deployment_factory):
    """Two tenants; acme measures savings against `big-model` ($10 / $30 per million)."""
    served = deployment_factory(
        public_name="small-model", input_price=D("1"), output_price=D("2"), cached_input_price=None
    )
    big = deployment_factory(public_name="big-model", input_price=D("10"), output_price=D("30"))
    acme = tenant_factory(slug="acme", baseline_model="big-model")
    globex = tenant_factory(slug="globex")
    return {"served": served, "big": big, "acme": acme, "globex": globex}


def record(world, *, at, tenant="acme", input_tokens=1000, output_tokens=500, **extra):
    """A ledger row served by `small-model`, costed as the data plane would."""
    deployment = extra.pop("deployment", world["served"])
    cached = extra.pop("cached", False)
    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    prices = Prices(input=deployment.input_price, output=deployment.output_price)
    return UsageRecord.objects.create(
        request_id=f"req-{next(_ids)}",
        created_at=at,
        tenant_id=world[tenant].pk,
        model=deployment.public_name,
        provider_id=deployment.provider_id,
        deployment_id=deployment.pk,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=D(0) if cached else cost_usd(usage, prices),
        cached=cached,
        **extra,
    )


def snapshot(grain=None) -> list[tuple]:
    rows = UsageRollup.objects.all()
    if grain:
        rows = rows.filter(grain=grain)
    return sorted(rows.values_list(*FIELDS), key=repr)


def sums(queryset, names) -> dict:
    return {k: v or 0 for k, v in queryset.aggregate(**{n: Sum(n) for n in names}).items()}


def test_hourly_and_daily_rollups_add_up_to_the_ledger(world):
    routes = ["auto", "team/a", ""]
    for i in range(40):
        record(
            world,
            at=T0 + timedelta(minutes=37 * i),  # spread over about a day
            tenant="acme" if i % 3 else "globex",
            input_tokens=100 + i,
            output_tokens=10 * i,
            route=routes[i % 3],
            cached=i % 7 == 0,
        )
    rollup_range(start=T0, end=T0 + timedelta(days=2))

    names = ["input_tokens", "output_tokens", "cached_input_tokens", "cost_usd"]
    ledger = sums(UsageRecord.objects.all(), names)
    for grain in ("hour", "day"):
        rollups = UsageRollup.objects.filter(grain=grain)
        assert sums(rollups, names) == ledger
        assert sums(rollups, ["requests"])["requests"] == 40
        assert sums(rollups, ["cached_requests"])["cached_requests"] == 6
    # Per hour, tenant and route as well, not only in total.
    for row in UsageRollup.objects.filter(grain="hour"):
        matching = UsageRecord.objects.filter(
            created_at__gte=row.bucket_start,
            created_at__lt=row.bucket_start + HOUR,
            tenant_id=row.tenant_id,
            route=row.route,
        )
        assert row.requests == matching.count()
        assert row.cost_usd == sums(matching, ["cost_usd"])["cost_usd"]


def test_running_again_gives_the_same_rows(world):
    for i in range(10):
        record(world, at=T0 + timedelta(minutes=20 * i), route=f"r{i % 2}")
    now = T0 + timedelta(hours=3, minutes=5)
    rollup_run(now=now)
    first = snapshot()
    assert first
    rollup_run(now=now)
    rollup_range(start=T0, end=now)
    assert snapshot() == first


def test_rows_arriving_late_are_rolled_up_on_the_next_run(world):
    record(world, at=T0)
    now = T0 + timedelta(days=3)
    run = rollup_run(now=now)
    assert run.last_record_id == RollupCursor.objects.get().last_record_id
    # A row of three days ago lands now (a spill file replayed after an outage): its hour
    # is far outside the hours every run rebuilds, the cursor still finds it.
    late = record(world, at=T0 + timedelta(minutes=30), input_tokens=2000)
    rerun = rollup_run(now=now + timedelta(minutes=5))
    assert rerun.last_record_id == late.pk
    hour = UsageRollup.objects.get(grain="hour", bucket_start=T0)
    assert hour.requests == 2
    assert hour.input_tokens == 3000
    day = UsageRollup.objects.get(grain="day", bucket_start=T0.replace(hour=0))
    assert (day.requests, day.input_tokens) == (2, 3000)
    # Nothing new: only the recent hours are rebuilt.
    assert rollup_run(now=now + timedelta(minutes=10)).hours == 3


def test_a_long_backlog_is_caught_up_over_bounded_runs(world):
    for day in range(6):
        record(world, at=T0 + timedelta(days=day))
    now = T0 + timedelta(days=10)
    runs = [rollup_run(now=now, max_records=2) for _ in range(4)]
    assert [r.hours - 3 for r in runs] == [2, 2, 2, 0]  # beyond the three recent hours
    assert UsageRollup.objects.filter(grain="day").count() == 6
    assert sums(UsageRollup.objects.filter(grain="hour"), ["requests"]) == {"requests": 6}


def test_baseline_is_the_same_tokens_at_the_baseline_models_prices(world):
    record(world, at=T0, input_tokens=1000, output_tokens=500)
    record(world, at=T0, tenant="globex", input_tokens=1000, output_tokens=500)
    rollup_range(start=T0, end=T0 + HOUR)
    acme = UsageRollup.objects.get(grain="hour", tenant_id=world["acme"].pk)
    # Served at $1/$2: 0.001 + 0.001; the baseline at $10/$30: 0.01 + 0.015.
    assert acme.cost_usd == D("0.002")
    assert acme.baseline_cost_usd == D("0.025")
    # Without a baseline model no savings are claimed.
    globex = UsageRollup.objects.get(grain="hour", tenant_id=world["globex"].pk)
    assert globex.baseline_cost_usd == globex.cost_usd == D("0.002")


def test_the_baseline_is_the_cheapest_deployment_of_the_baseline_model(world, deployment_factory):
    deployment_factory(public_name="big-model", input_price=D("5"), output_price=D("15"))
    record(world, at=T0, input_tokens=1000, output_tokens=500)
    rollup_range(start=T0, end=T0 + HOUR)
    acme = UsageRollup.objects.get(grain="hour")
    assert acme.baseline_cost_usd == D("0.0125")


def test_a_cache_hit_saves_what_the_serving_deployment_would_have_charged(world):
    record(world, at=T0, input_tokens=1000, output_tokens=500, cached=True)
    record(world, at=T0, input_tokens=1000, output_tokens=500)
    rollup_range(start=T0, end=T0 + HOUR)
    row = UsageRollup.objects.get(grain="hour")
    assert (row.requests, row.cached_requests) == (2, 1)
    assert row.cost_usd == D("0.002")  # the hit cost nothing
    assert row.cache_savings_usd == D("0.002")
    # Both requests would have cost 0.025 on the baseline model.
    assert row.baseline_cost_usd == D("0.05")
    day = UsageRollup.objects.get(grain="day")
    assert (day.cache_savings_usd, day.baseline_cost_usd) == (D("0.002"), D("0.05"))


def test_cache_savings_use_the_price_in_force_at_the_time(world):
    served = world["served"]
    PriceVersion.objects.create(
        deployment=served,
        effective_from=T0 - timedelta(days=30),
        input_price=D("4"),
        output_price=D("8"),
    )
    PriceVersion.objects.create(
        deployment=served,
        effective_from=T0 + timedelta(days=1),
        input_price=D("1"),
        output_price=D("2"),
    )
    record(world, at=T0, input_tokens=1000, output_tokens=500, cached=True)
    rollup_range(start=T0, end=T0 + HOUR)
    # 1000 * 4 / 1e6 + 500 * 8 / 1e6
    assert UsageRollup.objects.get(grain="hour").cache_savings_usd == D("0.008")


def test_the_periodic_task_rolls_up_and_is_on_the_beat_schedule(world):
    from atp_site.celery import app

    record(world, at=datetime.now(UTC))
    result = rollup_usage.apply().get()
    assert result["hours"] >= 1 and result["rows"] >= 2
    assert UsageRollup.objects.filter(grain="hour").count() == 1
    assert app.conf.beat_schedule["costs-rollup-usage"]["task"] == "costs.rollup_usage"


def test_the_compliance_report_shows_spend_savings_and_gain_share(world):
    from apps.audit.reports import report_build, report_render

    world["acme"].gain_share_percent = D("20")
    world["acme"].save()
    for hour in range(3):
        record(world, at=T0 + hour * HOUR)
    record(world, at=T0, tenant="globex")
    rollup_range(start=T0, end=T0 + 4 * HOUR)
    report = report_build(tenant=world["acme"], since=T0, until=T0 + 4 * HOUR)
    spend = report.spend
    # 3 x (1000 x $1 + 500 x $2) / 1M = $0.006; the baseline 3 x (1000 x $10 + 500 x $30) / 1M.
    assert spend["requests"] == 3
    assert spend["cost_usd"] == D("0.006")
    assert spend["baseline_cost_usd"] == D("0.075")
    assert spend["savings_usd"] == D("0.069")
    assert spend["gain_share_usd"] == D("0.0138")
    assert b"gain share" in report_render(report, "csv")
    everyone = report_build(tenant=None, since=T0, until=T0 + 4 * HOUR).spend
    assert everyone["requests"] == 4 and everyone["gain_share_usd"] == D("0.0138")
