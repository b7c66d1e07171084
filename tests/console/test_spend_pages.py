"""The spend pages: the overview and the savings report render from real rollups, a tenant's
members see their tenant's figures and nothing of another's, the chart has one point per
day and draws the tenant's budgets, the forecast names its method and error, the empty
state renders, the CSV link serves the same figures, and the queries stay bounded."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.costs import services, spend_views
from apps.costs.forecast import METHOD_TREND_WEEKLY
from apps.costs.models import SpendAnomaly, UsageRecord
from apps.costs.rollups import rollup_run
from apps.providers.services import deployment_create, provider_create
from apps.tenants import roles
from apps.tenants.services import api_key_create, project_create, tenant_create

pytestmark = pytest.mark.django_db

D = Decimal
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # a Friday
TODAY = datetime(2026, 11, 20, tzinfo=UTC)
DAY = timedelta(days=1)
SPEND = "/spend/"
SAVINGS = "/spend/savings/"
# What one of acme's requests costs on small-model, and on its baseline (big-model):
# 1000 input tokens at $1 / $10 and 500 output tokens at $2 / $30 per million.
ACME_COST = D("0.002")
ACME_BASELINE = D("0.025")
_ids = itertools.count()


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def with_role(username: str, role: str):
    user = get_user_model().objects.create_user(username)
    roles.user_roles_set(user=user, roles=[role], actor=None, source="cli")
    return user


def member_of(tenant, username: str = "acme-member"):
    user = get_user_model().objects.create_user(username)
    roles.tenant_role_set(
        user=user, tenant=tenant, role=roles.TENANT_MEMBER, actor=None, source="cli"
    )
    return user


def record(tenant, deployment, at, *, cost, key=None, route="auto", cached=False) -> None:
    UsageRecord.objects.create(
        request_id=f"spend-{next(_ids)}",
        created_at=at,
        tenant_id=tenant.pk,
        project_id=key.project_id if key else None,
        api_key_id=key.pk if key else None,
        model=deployment.public_name,
        provider_id=deployment.provider_id,
        deployment_id=deployment.pk,
        route=route,
        input_tokens=1000,
        output_tokens=500,
        cost_usd=D(0) if cached else cost,
        cached=cached,
    )


@pytest.fixture
def world():
    """acme (baseline big-model, 20% gain share) spent on small-model through its key
    every day of the last three weeks, today included, and one cache hit today; globex
    spent $15 two days ago on a model, key and route of its own. Rolled up."""
    provider = provider_create(
        name="upstream", kind="openai_compatible", base_url="http://127.0.0.1:9/v1"
    )
    small = deployment_create(
        provider=provider,
        public_name="small-model",
        upstream_model="small",
        input_price=1,
        output_price=2,
    )
    big = deployment_create(
        provider=provider,
        public_name="big-model",
        upstream_model="big",
        input_price=10,
        output_price=30,
    )
    secret = deployment_create(
        provider=provider,
        public_name="globex-only-model",
        upstream_model="g",
        input_price=1,
        output_price=2,
    )
    acme = tenant_create(
        slug="acme", name="Acme", baseline_model="big-model", gain_share_percent=D(20)
    )
    globex = tenant_create(slug="globex", name="Globex")
    web = project_create(tenant=acme, slug="web")
    key_a, _ = api_key_create(tenant=acme, name="acme-key", project=web)
    key_b, _ = api_key_create(tenant=globex, name="globex-key")
    for days_ago in range(21):
        record(acme, small, TODAY - days_ago * DAY + timedelta(hours=10), cost=ACME_COST, key=key_a)
    record(acme, small, TODAY + timedelta(hours=11), cost=ACME_COST, key=key_a, cached=True)
    for minute in range(3):
        record(
            globex,
            secret,
            TODAY - 2 * DAY + timedelta(hours=9, minutes=minute),
            cost=D(5),
            key=key_b,
            route="globex/secret",
        )
    rollup_run()
    return SimpleNamespace(
        acme=acme, globex=globex, small=small, big=big, key_a=key_a, key_b=key_b, web=web
    )


@pytest.fixture
def cost_admin():
    return with_role("carla", roles.COST_ADMIN)


def page(client: Client, path: str, **query):
    response = client.get(path, query)
    assert response.status_code == 200, response.content[:500]
    return response


def chart_of(response) -> dict:
    found = re.search(
        r'<script id="spend-chart-data" type="application/json">(.*?)</script>',
        response.content.decode(),
        re.S,
    )
    assert found, "the page carries no chart data"
    return json.loads(found.group(1))


GLOBEX_MARKS = ("globex-only-model", "globex/secret", "globex-key", "Globex")


# --- every page -----------------------------------------------------------------------------


def test_each_page_renders_for_a_cost_admin_with_real_rollups(world, cost_admin):
    client = signed_in(cost_admin)
    overview = page(client, SPEND)
    html = overview.content.decode()
    assert "<h1>Spend</h1>" in html
    figures = overview.context["figures"]
    totals = figures["totals"]
    # acme: 22 requests over the last 30 days (one a cache hit); globex: 3.
    assert totals["requests"] == 25 and totals["cached_requests"] == 1
    assert totals["cost_usd"] == 21 * ACME_COST + 15
    assert totals["input_tokens"] == 25_000 and figures["tokens"] == 37_500
    # acme saved 0.023 a request against big-model (its cache hit as well: it cost nothing).
    acme_savings = 22 * ACME_BASELINE - 21 * ACME_COST
    assert totals["savings_usd"] == acme_savings
    assert totals["cache_savings_usd"] == ACME_COST
    assert figures["gain_share_usd"] == (acme_savings * D("0.2")).quantize(D("0.00000001"))
    # Every tenant's figures, for a global holder: per tenant, keys, models and routes.
    assert [row["tenant"] for row in figures["tenants"]] == ["globex", "acme"]
    assert [row["api_key"] for row in figures["keys"]] == ["globex-key", "acme-key"]
    assert [row["model"] for row in figures["models"]] == ["globex-only-model", "small-model"]
    assert [row["route"] for row in figures["routes"]] == ["globex/secret", "auto"]
    for text in ("Spend by tenant", "Top keys", "Top models", "Cost per route", "Response cache"):
        assert text in html
    assert "Choose a tenant to see its spend forecast." in html

    acme = page(client, SPEND, tenant="acme", days=7)
    assert acme.context["figures"]["totals"]["requests"] == 8  # 7 days, and today's cache hit
    assert "Spend by tenant" not in acme.content.decode()

    savings = page(client, SAVINGS)
    html = savings.content.decode()
    assert "<h1>Savings</h1>" in html
    reports = {r.tenant.slug: r for r in savings.context["figures"]["reports"]}
    assert set(reports) == {"acme", "globex"}
    assert reports["acme"].totals.savings_usd == acme_savings
    assert reports["globex"].totals.savings_usd == 0  # no baseline model: nothing claimed
    assert "No baseline model" in html and "big-model" in html
    assert page(client, SAVINGS, tenant="acme", months=3).context["figures"]["months"] == 3


def test_savings_are_per_calendar_month_with_the_gain_share_of_each(world, cost_admin):
    savings = page(signed_in(cost_admin), SAVINGS, tenant="acme", months=3)
    [report] = savings.context["figures"]["reports"]
    months = [(p.start.month, p.requests) for p in report.periods]
    # The last 21 days: October 31st, then November 1st to 20th (a cache hit on the 20th).
    assert months == [(9, 0), (10, 1), (11, 21)]
    november = report.periods[-1]
    assert november.savings_usd == 21 * ACME_BASELINE - 20 * ACME_COST
    assert november.gain_share_usd == (november.savings_usd * D("0.2")).quantize(D("0.00000001"))
    assert report.totals.gain_share_usd == sum(p.gain_share_usd for p in report.periods)
    html = savings.content.decode()
    assert "September 2026" in html and "November 2026" in html
    assert f'data-gain-share="acme">{_usd(report.totals.gain_share_usd)}<' in html


def _usd(value: Decimal) -> str:
    from atp_site.console.templatetags.console import usd

    return usd(value)


# --- the chart ------------------------------------------------------------------------------


@pytest.mark.parametrize("days", [7, 30, 90])
def test_the_chart_has_one_point_per_day(world, cost_admin, days):
    response = page(signed_in(cost_admin), SPEND, days=days)
    chart = chart_of(response)
    assert len(chart["t"]) == len(chart["cost"]) == days
    assert chart["t"][-1] == int(TODAY.timestamp())
    assert all(b - a == 86_400 for a, b in itertools.pairwise(chart["t"]))
    assert len(response.context["figures"]["days"]) == days
    # Two days ago: acme's request and globex's three.
    assert chart["cost"][-3] == pytest.approx(float(ACME_COST + 15))
    if days == 90:  # before acme's first request
        assert chart["cost"][0] == 0


def test_the_budget_line_appears_when_the_tenant_has_a_budget(world, cost_admin):
    client = signed_in(cost_admin)
    without = page(client, SPEND, tenant="acme")
    assert chart_of(without)["budgets"] == []
    assert "Acme has no enabled tenant-wide" in without.content.decode()

    services.budget_create(scope="tenant", tenant=world.acme, name="acme monthly", limit_usd=310)
    services.budget_create(
        scope="tenant", tenant=world.acme, name="acme weekly", period="weekly", limit_usd=70
    )
    services.budget_create(
        scope="tenant", tenant=world.acme, name="acme ever", period="total", limit_usd=1000
    )
    services.budget_create(scope="project", project=world.web, name="web", limit_usd=1)
    services.budget_create(scope="tenant", tenant=world.globex, name="globex", limit_usd=1)
    response = page(client, SPEND, tenant="acme", days=30)
    lines = {line["label"]: line["values"] for line in chart_of(response)["budgets"]}
    # Tenant-wide budgets with a period are drawn as their daily equivalent: October's
    # days share $310 by 31, November's by 30; a week's by 7. Others are not drawn.
    assert set(lines) == {"acme monthly (monthly, per day)", "acme weekly (weekly, per day)"}
    assert lines["acme monthly (monthly, per day)"][0] == pytest.approx(10.0)  # October 22nd
    assert lines["acme monthly (monthly, per day)"][-1] == pytest.approx(310 / 30)
    assert set(lines["acme weekly (weekly, per day)"]) == {10.0}
    html = response.content.decode()
    assert "Dashed lines" in html and "acme ever" in html and "is not drawn" in html
    assert "acme monthly, per day" in html  # the table's column

    every = page(client, SPEND)
    assert chart_of(every)["budgets"] == []
    assert "Choose a tenant to draw its budgets." in every.content.decode()


def test_a_budget_the_viewer_may_not_see_is_not_drawn(world):
    services.budget_create(scope="tenant", tenant=world.globex, name="globex cap", limit_usd=9)
    client = signed_in(member_of(world.acme))
    response = page(client, SPEND, tenant="acme")
    assert chart_of(response)["budgets"] == [] and "globex cap" not in response.content.decode()


# --- forecast and anomalies -----------------------------------------------------------------


def test_the_forecast_panel_shows_the_method_and_its_held_out_error(world, cost_admin):
    response = page(signed_in(cost_admin), SPEND, tenant="acme")
    forecast = response.context["figures"]["forecast"].forecast
    # 20 complete days of history (today is left out of the fit): trend and weekdays, with
    # the last 7 days held out; the same spend every day forecasts itself.
    assert forecast.method == METHOD_TREND_WEEKLY and forecast.history_days == 20
    assert forecast.holdout.days == 7
    assert forecast.total == pytest.approx(30 * float(ACME_COST))
    html = response.content.decode()
    assert f'data-forecast="method">{METHOD_TREND_WEEKLY}<' in html
    error = re.search(r'data-forecast="error">(.*?)</dd>', html, re.S).group(1)
    assert "mean absolute error" in error and "last 7 days of history" in error
    assert "Repeating the same weekday of the week before" in error

    fresh = tenant_create(slug="fresh", name="Fresh")
    empty = page(signed_in(with_role("ro", roles.READ_ONLY)), SPEND, tenant=fresh.slug)
    assert 'data-forecast="none"' in empty.content.decode()


def test_recent_anomalies_are_listed_for_the_tenants_the_viewer_may_see(world, cost_admin):
    for tenant, spent in ((world.acme, "3.5"), (world.globex, "42.25")):
        SpendAnomaly.objects.create(
            tenant=tenant,
            hour_start=TODAY - DAY + timedelta(hours=14),
            spent_usd=D(spent),
            median_usd=D("0.5"),
            score=9.5,
            threshold=3.5,
            history_days=14,
        )
    SpendAnomaly.objects.create(  # before the window
        tenant=world.acme,
        hour_start=TODAY - 40 * DAY,
        spent_usd=D("77.77"),
        median_usd=D(1),
        score=5,
        threshold=3.5,
        history_days=14,
    )
    admin = page(signed_in(cost_admin), SPEND).context["figures"]["anomalies"]
    assert {a.tenant.slug for a in admin} == {"acme", "globex"}
    member = page(signed_in(member_of(world.acme)), SPEND)
    assert [a.tenant.slug for a in member.context["figures"]["anomalies"]] == ["acme"]
    html = member.content.decode()
    assert "$3.50" in html and "42.25" not in html and "77.77" not in html


# --- tenant isolation -----------------------------------------------------------------------


def test_a_tenant_member_sees_only_their_tenants_figures(world):
    client = signed_in(member_of(world.acme))
    overview = page(client, SPEND)
    figures = overview.context["figures"]
    # Their one tenant is chosen for them.
    assert figures["tenant"] == world.acme
    assert figures["totals"]["requests"] == 22
    assert figures["totals"]["cost_usd"] == 21 * ACME_COST
    assert [row["tenant"] for row in figures["tenants"]] == ["acme"]
    html = overview.content.decode()
    for mark in GLOBEX_MARKS:
        assert mark not in html, mark
    assert sum(chart_of(overview)["cost"]) == pytest.approx(float(21 * ACME_COST))
    # Another tenant is not a valid choice: no figures at all, and not a word of globex's.
    other = page(client, SPEND, tenant="globex")
    assert other.context["figures"] is None
    assert "Nothing to show for these filters" in other.content.decode()
    for mark in GLOBEX_MARKS:
        assert mark not in other.content.decode(), mark
    # The tenant list offers theirs only.
    assert list(overview.context["form"].fields["tenant"].queryset) == [world.acme]

    savings = page(client, SAVINGS)
    assert [r.tenant.slug for r in savings.context["figures"]["reports"]] == ["acme"]
    for mark in GLOBEX_MARKS:
        assert mark not in savings.content.decode(), mark
    assert page(client, SAVINGS, tenant="globex").context["figures"] is None


def test_a_member_of_two_tenants_sees_both_and_no_third(world):
    third = tenant_create(slug="initech", name="Initech")
    record(third, world.small, TODAY + timedelta(hours=1), cost=D(99))
    rollup_run()
    user = member_of(world.acme)
    roles.tenant_role_set(
        user=user, tenant=world.globex, role=roles.TENANT_MEMBER, actor=None, source="cli"
    )
    figures = page(signed_in(user), SPEND).context["figures"]
    assert figures["tenant"] is None
    assert {row["tenant"] for row in figures["tenants"]} == {"acme", "globex"}
    assert figures["totals"]["cost_usd"] == 21 * ACME_COST + 15


def test_pages_need_a_spend_permission(world):
    auditor = signed_in(with_role("aude", roles.AUDITOR))
    assert auditor.get(SPEND).status_code == 403
    assert auditor.get(SAVINGS).status_code == 403
    assert "bar-chart-3" not in auditor.get("/").content.decode()
    member = signed_in(member_of(world.acme)).get("/").content.decode()
    assert 'href="/spend/"' in member
    signed_out = Client().get(SPEND)
    assert signed_out.status_code == 302 and "next=/spend/" in signed_out["Location"]


# --- CSV, htmx and the empty state ----------------------------------------------------------


def test_the_csv_link_reads_the_usage_api_with_the_same_filters(world):
    client = signed_in(member_of(world.acme))
    response = page(client, SPEND, days=7)
    url = response.context["figures"]["csv_url"]
    assert f'href="{url.replace("&", "&amp;")}"' in response.content.decode()
    parts = urlsplit(url)
    assert parts.path == reverse("costs-api:usage")
    assert parse_qs(parts.query) == {
        "format": ["csv"],
        "start": ["2026-11-14"],
        "end": ["2026-11-20"],
        "group_by": ["day,tenant,project,key,model,provider,route"],
        "tenant": ["acme"],
    }
    download = client.get(url)  # with the console's session
    assert download.status_code == 200 and download["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert {row["tenant"] for row in rows} == {"acme"}
    assert sum(int(row["requests"]) for row in rows) == 8
    assert {row["day"] for row in rows} == {f"2026-11-{d}" for d in range(14, 21)}


def test_htmx_gets_the_figures_only(world, cost_admin):
    response = signed_in(cost_admin).get(
        SPEND, {"tenant": "acme", "days": 7}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="spend-figures"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and "<h1>" not in html
    assert len(chart_of(response)["t"]) == 7
    savings = signed_in(cost_admin).get(
        SAVINGS, {"tenant": "acme"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="savings-figures"
    )
    assert savings.status_code == 200 and "<html" not in savings.content.decode()


def test_the_empty_state_renders_without_errors(cost_admin):
    tenant_create(slug="quiet", name="Quiet")
    client = signed_in(cost_admin)
    for query in ({}, {"tenant": "quiet"}, {"days": 90}):
        html = page(client, SPEND, **query).content.decode()
        assert "No spend in these days" in html and 'id="spend-chart"' not in html
    assert 'data-forecast="none"' in page(client, SPEND, tenant="quiet").content.decode()
    assert "No spend in these months" in page(client, SAVINGS).content.decode()
    quiet = page(client, SAVINGS, tenant="quiet")
    [report] = quiet.context["figures"]["reports"]
    assert report.totals.requests == 0 and "No baseline model" in quiet.content.decode()


# --- queries --------------------------------------------------------------------------------


def test_the_pages_cost_the_same_queries_for_more_spend(world, cost_admin, monkeypatch):
    monkeypatch.setattr(spend_views, "SAVINGS_TENANTS", 2)
    client = signed_in(cost_admin)
    services.budget_create(scope="tenant", tenant=world.acme, name="acme monthly", limit_usd=310)
    paths = [
        SPEND,
        f"{SPEND}?days=90",
        f"{SPEND}?tenant=acme",
        f"{SAVINGS}",
        f"{SAVINGS}?tenant=acme",
    ]

    def counts() -> list[int]:
        found = []
        for path in paths:
            with CaptureQueriesContext(connection) as queries:
                assert client.get(path).status_code == 200
            found.append(len(queries))
        return found

    counts()  # warm: the first request fills per-process caches
    before = counts()
    for n in range(3):
        tenant = tenant_create(slug=f"more-{n}", name=f"More {n}", baseline_model="big-model")
        key, _ = api_key_create(tenant=tenant, name=f"key-{n}")
        other = deployment_create(
            provider=world.small.provider,
            public_name=f"model-{n}",
            upstream_model=f"m{n}",
            input_price=1,
            output_price=2,
        )
        for days_ago in range(0, 60, 3):
            at = TODAY - days_ago * DAY + timedelta(hours=8)
            record(tenant, other, at, cost=D(1), key=key, route=f"route-{n}")
            record(world.acme, other, at, cost=D(1), key=world.key_a, route=f"route-{n}")
        SpendAnomaly.objects.create(
            tenant=tenant,
            hour_start=TODAY - DAY,
            spent_usd=D(9),
            median_usd=D(1),
            score=8,
            threshold=3.5,
            history_days=14,
        )
    rollup_run()
    assert counts() == before
    # Beyond the tenants the savings report reads, the others are counted, not read.
    assert page(client, SAVINGS).context["figures"]["more"] == 3
    assert max(before) <= 30, before
