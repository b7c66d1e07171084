"""GET /api/v1/usage (and its forecast and savings): grouping, filters, CSV, tenant
isolation and input errors naming the field."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from apps.costs.models import UsageRecord, UsageRollup
from apps.costs.rollups import rollup_range
from apps.tenants.services import api_key_create, project_create
from tests.conftest import UserFactory, client_for, grant_permissions

pytestmark = pytest.mark.django_db

D = Decimal
USAGE = "/api/v1/usage/"
FORECAST = "/api/v1/usage/forecast/"
SAVINGS = "/api/v1/usage/savings/"
DAY1 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
RANGE = {"start": "2026-11-02", "end": "2026-11-03"}  # both days, end inclusive
_ids = itertools.count()


@pytest.fixture
def world(tenant_factory, deployment_factory):
    """acme (baseline big-model, 20% gain share) and globex, with ledger rows rolled up:

    acme:   3 requests of small-model on route auto by key-a in project web (day 1, 09:00
            and 10:00, one of them a cache hit), 1 of big-model on route team/x (day 2)
    globex: 2 requests of small-model (day 1)
    """
    small = deployment_factory(public_name="small-model", input_price=D(1), output_price=D(2))
    big = deployment_factory(public_name="big-model", input_price=D(10), output_price=D(30))
    acme = tenant_factory(slug="acme", baseline_model="big-model", gain_share_percent=D(20))
    globex = tenant_factory(slug="globex")
    project = project_create(tenant=acme, slug="web")
    key, _ = api_key_create(tenant=acme, name="key-a", project=project)

    def record(tenant, deployment, at, *, cached=False, route="auto", with_key=False):
        UsageRecord.objects.create(
            request_id=f"r{next(_ids)}",
            created_at=at,
            tenant_id=tenant.pk,
            project_id=project.pk if with_key else None,
            api_key_id=key.pk if with_key else None,
            model=deployment.public_name,
            provider_id=deployment.provider_id,
            deployment_id=deployment.pk,
            route=route,
            input_tokens=1000,
            output_tokens=500,
            # 1000 at $1 + 500 at $2 per million; big-model 0.025
            cost_usd=D(0) if cached else (D("0.025") if deployment == big else D("0.002")),
            cached=cached,
        )

    record(acme, small, DAY1 + timedelta(hours=9), with_key=True)
    record(acme, small, DAY1 + timedelta(hours=9, minutes=30), with_key=True, cached=True)
    record(acme, small, DAY1 + timedelta(hours=10), with_key=True)
    record(acme, big, DAY1 + timedelta(days=1, hours=3), route="team/x")
    record(globex, small, DAY1 + timedelta(hours=9))
    record(globex, small, DAY1 + timedelta(hours=11), route="=HYPERLINK(1)")
    rollup_range(start=DAY1, end=DAY1 + timedelta(days=2))
    return {
        "acme": acme,
        "globex": globex,
        "small": small,
        "big": big,
        "key": key,
        "project": project,
    }


@pytest.fixture
def cost_viewer(db):
    """Holds the global permission to read every tenant's usage (authenticated without a
    session, which would expire when a test moves the clock)."""
    client = APIClient()
    user = grant_permissions(UserFactory(username="costs"), "costs.view_usagerollup")
    client.force_authenticate(user=user)
    return client


@pytest.fixture
def acme_member(world):
    user = UserFactory(username="acme-member")
    assign_perm("tenants.view_tenant", user, world["acme"])
    return client_for(user)


def rows(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def by(rows_: list[dict], *names: str) -> dict:
    return {tuple(r[n] for n in names): r for r in rows_}


def test_without_group_by_one_row_holds_the_totals(world, cost_viewer):
    [total] = rows(cost_viewer.get(USAGE, RANGE))
    assert total["requests"] == 6
    assert total["cached_requests"] == 1
    assert total["input_tokens"] == 6000 and total["output_tokens"] == 3000
    assert total["cost_usd"] == "0.03300000"  # 0.002 * 4 + 0.025
    # acme's four requests on big-model cost 0.025 each; globex has no baseline.
    assert total["baseline_cost_usd"] == "0.10400000"
    assert total["savings_usd"] == "0.07100000"
    assert total["cache_savings_usd"] == "0.00200000"


def test_group_by_tenant_and_model(world, cost_viewer):
    found = by(
        rows(cost_viewer.get(USAGE, {**RANGE, "group_by": "tenant,model"})), "tenant", "model"
    )
    assert set(found) == {("acme", "small-model"), ("acme", "big-model"), ("globex", "small-model")}
    acme_small = found[("acme", "small-model")]
    assert acme_small["tenant_id"] == str(world["acme"].pk)
    assert acme_small["requests"] == 3 and acme_small["cost_usd"] == "0.00400000"
    assert acme_small["baseline_cost_usd"] == "0.07500000"
    assert acme_small["cache_savings_usd"] == "0.00200000"
    assert set(acme_small) == {
        "tenant_id",
        "tenant",
        "model",
        "requests",
        "cached_requests",
        "input_tokens",
        "output_tokens",
        "cached_input_tokens",
        "cost_usd",
        "baseline_cost_usd",
        "savings_usd",
        "cache_savings_usd",
    }


def test_group_by_day_and_hour(world, cost_viewer):
    days = rows(cost_viewer.get(USAGE, {**RANGE, "group_by": "day"}))
    assert [(d["day"], d["requests"]) for d in days] == [("2026-11-02", 5), ("2026-11-03", 1)]
    hours = rows(cost_viewer.get(USAGE, {**RANGE, "group_by": "hour", "tenant": "acme"}))
    assert [(h["hour"], h["requests"]) for h in hours] == [
        ("2026-11-02T09:00:00+00:00", 2),
        ("2026-11-02T10:00:00+00:00", 1),
        ("2026-11-03T03:00:00+00:00", 1),
    ]
    # Bounds inside a day read the hourly rollups: 09:00 up to 10:00 only.
    [total] = rows(
        cost_viewer.get(USAGE, {"start": "2026-11-02T09:00:00Z", "end": "2026-11-02T10:00:00Z"})
    )
    assert total["requests"] == 3


def test_group_by_key_project_provider_and_route_name_them(world, cost_viewer):
    found = rows(
        cost_viewer.get(
            USAGE, {**RANGE, "group_by": "key,project,provider,route", "tenant": "acme"}
        )
    )
    keyed = [r for r in found if r["api_key_id"]]
    assert len(keyed) == 1
    assert keyed[0]["api_key"] == "key-a" and keyed[0]["project"] == "web"
    assert keyed[0]["provider"] == world["small"].provider.name
    assert keyed[0]["route"] == "auto" and keyed[0]["requests"] == 3


@pytest.mark.parametrize(
    ("params", "requests"),
    [
        ({"model": "big-model"}, 1),
        ({"route": "auto"}, 4),
        ({"tenant": "globex"}, 2),
        ({"key": "KEY"}, 3),
        ({"project": "PROJECT"}, 3),
        ({"provider": "BIG_PROVIDER_NAME"}, 1),
        ({"provider": "BIG_PROVIDER_ID"}, 1),
        ({"provider": "no-such-provider"}, 0),
    ],
)
def test_filters(world, cost_viewer, params, requests):
    values = {
        "KEY": str(world["key"].pk),
        "PROJECT": str(world["project"].pk),
        "BIG_PROVIDER_NAME": world["big"].provider.name,
        "BIG_PROVIDER_ID": str(world["big"].provider_id),
    }
    params = {k: values.get(v, v) for k, v in params.items()}
    [total] = rows(cost_viewer.get(USAGE, {**RANGE, **params}))
    assert total["requests"] == requests


def test_csv_streams_every_row_with_a_header_and_no_formulas(world, cost_viewer):
    response = cost_viewer.get(USAGE, {**RANGE, "group_by": "tenant,route", "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    table = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert table[0][:3] == ["tenant_id", "tenant", "route"]
    assert table[0][-3:] == ["baseline_cost_usd", "savings_usd", "cache_savings_usd"]
    assert len(table) == 1 + 4
    routes = {row[2] for row in table[1:]}
    assert "'=HYPERLINK(1)" in routes and "=HYPERLINK(1)" not in routes

    by_accept = cost_viewer.get(USAGE, {**RANGE, "group_by": "tenant"}, HTTP_ACCEPT="text/csv")
    assert by_accept["Content-Type"].startswith("text/csv")
    assert len(b"".join(by_accept.streaming_content).decode().splitlines()) == 3


def test_a_tenant_member_sees_only_their_tenants_usage(world, acme_member):
    found = rows(acme_member.get(USAGE, {**RANGE, "group_by": "tenant"}))
    assert [r["tenant"] for r in found] == ["acme"]
    # Another tenant reads like a tenant that does not exist.
    elsewhere = acme_member.get(USAGE, {**RANGE, "tenant": "globex"})
    missing = acme_member.get(USAGE, {**RANGE, "tenant": "nope"})
    assert elsewhere.status_code == missing.status_code == 400
    assert set(elsewhere.json()) == set(missing.json()) == {"tenant"}
    assert acme_member.get(FORECAST, {"tenant": "globex"}).status_code == 400
    assert acme_member.get(SAVINGS, {"tenant": "globex"}).status_code == 400
    # Filtering by another tenant's key finds nothing rather than its usage.
    other_key = api_key_create(tenant=world["globex"], name="k")[0]
    [total] = rows(acme_member.get(USAGE, {**RANGE, "key": str(other_key.pk)}))
    assert total["requests"] == 0


def test_callers_without_permission_are_refused(world, plain_user, api_client):
    assert client_for(plain_user).get(USAGE).status_code == 403
    assert api_client.get(USAGE).status_code in (401, 403)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"group_by": "tenant,colour"}, "group_by"),
        ({"start": "yesterday"}, "start"),
        ({"end": "2026-13-01"}, "end"),
        ({"start": "2026-11-03", "end": "2026-11-01"}, "end"),
        ({"project": "not-a-uuid"}, "project"),
        ({"key": "42"}, "key"),
        ({"format": "xml"}, "format"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(world, cost_viewer, params, field):
    response = cost_viewer.get(USAGE, params)
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_forecast_reports_method_horizon_and_held_out_error(world, cost_viewer):
    acme = world["acme"]
    # 28 days of $2 on weekdays and $1 at weekends, ending yesterday.
    today = datetime(2026, 12, 7, tzinfo=UTC)  # a Monday
    UsageRollup.objects.filter(tenant_id=acme.pk).delete()
    UsageRollup.objects.bulk_create(
        UsageRollup(
            grain="day",
            bucket_start=today - timedelta(days=d),
            tenant_id=acme.pk,
            cost_usd=D(1) if (today - timedelta(days=d)).weekday() >= 5 else D(2),
        )
        for d in range(1, 29)
    )
    with time_machine.travel(today + timedelta(hours=15), tick=False):
        response = cost_viewer.get(FORECAST, {"tenant": "acme"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["tenant"]["slug"] == "acme"
    assert body["method"] == "linear trend + day-of-week (least squares)"
    assert (body["history_start"], body["history_days"]) == ("2026-11-09", 28)
    assert body["start"] == "2026-12-07" and body["days"] == len(body["daily"]) == 30
    # 22 weekdays at $2 and 8 weekend days at $1 from Monday 7 December.
    assert D(body["total_usd"]) == pytest.approx(D(52), abs=D("0.0001"))
    assert body["weekday_effects_usd"]["saturday"].startswith("-")
    assert body["holdout"]["days"] == 7 and D(body["holdout"]["mae_usd"]) < D("0.0001")

    assert cost_viewer.get(FORECAST).json() == {"tenant": ["This field is required."]}


def test_savings_per_month_with_gain_share(world, cost_viewer):
    with time_machine.travel(datetime(2026, 12, 15, tzinfo=UTC), tick=False):
        response = cost_viewer.get(SAVINGS, {"tenant": "acme", "period": "month"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["baseline_model"] == "big-model" and body["gain_share_percent"] == "20.00"
    assert len(body["periods"]) == 12
    november = next(p for p in body["periods"] if p["start"].startswith("2026-11-01"))
    assert november["requests"] == 4
    assert november["cost_usd"] == "0.02900000"  # 0.002 * 2 + 0.025
    assert november["baseline_cost_usd"] == "0.10000000"
    assert november["savings_usd"] == "0.07100000"
    assert november["gain_share_usd"] == "0.01420000"
    assert november["cache_savings_usd"] == "0.00200000"
    assert body["totals"]["gain_share_usd"] == "0.01420000"
    # A bad period names the field.
    bad = cost_viewer.get(SAVINGS, {"tenant": "acme", "period": "fortnight"})
    assert bad.status_code == 400 and "period" in bad.json()


def test_savings_by_day_over_an_explicit_range(world, cost_viewer):
    response = cost_viewer.get(
        SAVINGS, {"tenant": "acme", "period": "day", "start": "2026-11-02", "end": "2026-11-03"}
    )
    periods = response.json()["periods"]
    assert [(p["start"][:10], p["requests"]) for p in periods] == [
        ("2026-11-02", 3),
        ("2026-11-03", 1),
    ]
    # The big-model day saved nothing and owes no gain share.
    assert periods[1]["savings_usd"] == "0.00000000"
    assert periods[1]["gain_share_usd"] == "0.00000000"


def test_ranges_at_the_ends_of_the_calendar_answer_cleanly(world, cost_viewer):
    [total] = rows(cost_viewer.get(USAGE, {"end": "0001-01-02"}))
    assert total["requests"] == 0
    assert rows(cost_viewer.get(USAGE, {"start": "9999-12-31T00:00:00Z"}))[0]["requests"] == 0
    too_long = cost_viewer.get(
        SAVINGS, {"tenant": "acme", "period": "day", "start": "0001-01-01", "end": "2026-11-03"}
    )
    assert too_long.status_code == 400 and "start" in too_long.json()
