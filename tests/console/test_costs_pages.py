"""Console pages of rate limits, budgets, budget alerts and notifiers: every page renders for
a cost admin, a tenant's members see only their tenant's rows (another tenant's is a 404,
a plan's limits and platform notifiers are not theirs to see), every write goes through the
audited services, and a notifier's secret is never rendered."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.costs import services
from apps.costs.admission import budget_key, set_counters
from apps.costs.counters import MemoryCounters
from apps.costs.limits import period_bounds
from apps.costs.models import Budget, BudgetAlert, Notifier, RateLimit
from apps.tenants import roles
from apps.tenants.services import api_key_create, project_create, tenant_create

pytestmark = pytest.mark.django_db

SECRET = "whsec-never-shown-0123456789"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def with_role(username: str, role: str):
    user = get_user_model().objects.create_user(username)
    roles.user_roles_set(user=user, roles=[role], actor=None, source="cli")
    return user


def tenant_member_of(tenant, username: str = "acme-member"):
    user = get_user_model().objects.create_user(username)
    roles.tenant_role_set(
        user=user, tenant=tenant, role=roles.TENANT_MEMBER, actor=None, source="cli"
    )
    return user


def audited(event_type: str, obj) -> bool:
    return AuditEvent.objects.filter(event_type=event_type, resource_id=str(obj.pk)).exists()


@pytest.fixture
def world():
    """Acme and Globex, each with a project, a key, limits, a budget and an alert; a plan's
    limits; a notifier of acme and a platform webhook."""
    acme = tenant_create(slug="acme", name="Acme", time_zone="Europe/Paris")
    globex = tenant_create(slug="globex", name="Globex")
    web = project_create(tenant=acme, slug="web", name="Web shop")
    key_a, _ = api_key_create(tenant=acme, name="acme-key", project=web)
    key_b, _ = api_key_create(tenant=globex, name="globex-key")
    w = SimpleNamespace(acme=acme, globex=globex, web=web, key_a=key_a, key_b=key_b)
    w.limit_a = services.rate_limit_create(scope="tenant", tenant=acme, requests_per_minute=600)
    w.limit_b = services.rate_limit_create(scope="key", api_key=key_b, tokens_per_minute=50_000)
    w.limit_plan = services.rate_limit_create(scope="plan", plan="free", requests_per_minute=20)
    w.budget_a = services.budget_create(
        scope="project", project=web, name="web monthly", limit_usd=Decimal("100")
    )
    w.budget_b = services.budget_create(
        scope="tenant", tenant=globex, name="globex daily", period="daily", limit_usd=5
    )
    now = timezone.now()
    w.alert_a = BudgetAlert.objects.create(
        budget=w.budget_a,
        tenant=acme,
        period_start=now - timedelta(days=3),
        threshold=80,
        spent_usd=Decimal("80.5"),
        limit_usd=Decimal("100"),
        notified_at=now,
        notify_attempts=1,
    )
    w.alert_b = BudgetAlert.objects.create(
        budget=w.budget_b,
        tenant=globex,
        period_start=now - timedelta(hours=2),
        threshold=50,
        spent_usd=Decimal("2.6"),
        limit_usd=Decimal("5"),
        notify_attempts=2,
        notify_error="ops-hook: webhook answered HTTP 500",
    )
    w.notifier_a = services.notifier_create(
        name="acme finance", kind="email", tenant=acme, target="finance@acme.example"
    )
    w.notifier_all = services.notifier_create(
        name="ops-hook",
        kind="webhook",
        target="https://hooks.example.com/services/T000/B000/tokenpart",
        secret=SECRET,
    )
    return w


@pytest.fixture
def cost_admin():
    return with_role("carla", roles.COST_ADMIN)


def rows(response) -> list:
    assert response.status_code == 200, response.content[:500]
    return list(response.context["page"].rows)


# --- every page -----------------------------------------------------------------------------


def test_every_page_renders_with_a_heading_for_a_cost_admin(world, cost_admin):
    client = signed_in(cost_admin)
    pages = [
        reverse("costs:ratelimit-list"),
        reverse("costs:ratelimit-add"),
        reverse("costs:budget-list"),
        reverse("costs:budget-add"),
        reverse("costs:budgetalert-list"),
        reverse("costs:notifier-list"),
        reverse("costs:notifier-add"),
    ]
    for limit in (world.limit_a, world.limit_b, world.limit_plan):
        for name in ("detail", "edit", "delete"):
            pages.append(reverse(f"costs:ratelimit-{name}", args=[limit.pk]))
    for budget in (world.budget_a, world.budget_b):
        for name in ("detail", "edit", "delete"):
            pages.append(reverse(f"costs:budget-{name}", args=[budget.pk]))
    for alert in (world.alert_a, world.alert_b):
        pages.append(reverse("costs:budgetalert-detail", args=[alert.pk]))
    for notifier in (world.notifier_a, world.notifier_all):
        for name in ("edit", "delete"):
            pages.append(reverse(f"costs:notifier-{name}", args=[notifier.pk]))
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.content.decode()
        assert "<h1>" in html, path
        # No inline script or style: the Content-Security-Policy would refuse them.
        assert "<script>" not in html and "style=" not in html, path
    # The menu's new area, with the current page marked.
    page = client.get(reverse("costs:budget-detail", args=[world.budget_a.pk])).content.decode()
    assert "Limits &amp; budgets" in page
    for label in ("Rate limits", "Budgets", "Budget alerts", "Notifiers"):
        assert f"<span>{label}</span>" in page
    assert f'href="{reverse("costs:budget-list")}" aria-current="page"' in page


def test_lists_show_every_row_to_a_cost_admin(world, cost_admin):
    client = signed_in(cost_admin)
    limits = rows(client.get(reverse("costs:ratelimit-list")))
    assert {r.pk for r in limits} == {world.limit_a.pk, world.limit_b.pk, world.limit_plan.pk}
    assert {b.name for b in rows(client.get(reverse("costs:budget-list")))} == {
        "web monthly",
        "globex daily",
    }
    assert len(rows(client.get(reverse("costs:budgetalert-list")))) == 2
    assert {n.name for n in rows(client.get(reverse("costs:notifier-list")))} == {
        "acme finance",
        "ops-hook",
    }
    html = client.get(reverse("costs:ratelimit-list")).content.decode()
    assert "Free plan" in html and "Tenant acme" in html and "Key globex-key" in html


def test_filters_and_search(world, cost_admin):
    client = signed_in(cost_admin)
    assert [r.pk for r in rows(client.get(reverse("costs:ratelimit-list"), {"scope": "plan"}))] == [
        world.limit_plan.pk
    ]
    by_tenant = rows(client.get(reverse("costs:ratelimit-list"), {"tenant": "globex"}))
    assert [r.pk for r in by_tenant] == [world.limit_b.pk]
    assert [b.name for b in rows(client.get(reverse("costs:budget-list"), {"q": "daily"}))] == [
        "globex daily"
    ]
    alerts = reverse("costs:budgetalert-list")
    assert [a.pk for a in rows(client.get(alerts, {"tenant": "acme"}))] == [world.alert_a.pk]
    assert [a.pk for a in rows(client.get(alerts, {"budget": str(world.budget_b.pk)}))] == [
        world.alert_b.pk
    ]
    kinds = rows(client.get(reverse("costs:notifier-list"), {"kind": "webhook"}))
    assert [n.name for n in kinds] == ["ops-hook"]
    # An invalid filter value matches nothing: no 500.
    assert rows(client.get(alerts, {"budget": "not-a-budget"})) == []
    htmx = client.get(
        alerts, {"tenant": "acme"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="console-table"
    )
    assert htmx.status_code == 200 and b"<html" not in htmx.content


def test_list_pages_cost_the_same_queries_for_more_rows(world, cost_admin):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = signed_in(cost_admin)
    lists = [
        reverse(f"costs:{name}-list") for name in ("ratelimit", "budget", "budgetalert", "notifier")
    ]

    def counts() -> list[int]:
        found = []
        for path in lists:
            with CaptureQueriesContext(connection) as queries:
                assert client.get(path).status_code == 200
            found.append(len(queries))
        return found

    counts()  # warm: the first request fills per-process caches (content types, ...)
    before = counts()
    for n in range(3):
        tenant = tenant_create(slug=f"more-{n}", name=f"More {n}")
        project = project_create(tenant=tenant, slug="p")
        key, _ = api_key_create(tenant=tenant, name="k", project=project)
        services.rate_limit_create(scope="project", project=project, max_concurrent=2)
        services.rate_limit_create(scope="key", api_key=key, max_concurrent=1)
        budget = services.budget_create(scope="key", api_key=key, name="b", limit_usd=1)
        BudgetAlert.objects.create(
            budget=budget,
            tenant=tenant,
            period_start=timezone.now(),
            threshold=50,
            spent_usd=Decimal("0.5"),
            limit_usd=Decimal(1),
        )
        services.notifier_create(name=f"n{n}", kind="email", tenant=tenant, target="a@b.example")
    assert counts() == before


# --- tenant isolation -----------------------------------------------------------------------


def test_a_tenant_member_sees_only_their_tenants_rows(world):
    client = signed_in(tenant_member_of(world.acme))
    assert [r.pk for r in rows(client.get(reverse("costs:ratelimit-list")))] == [world.limit_a.pk]
    assert [b.pk for b in rows(client.get(reverse("costs:budget-list")))] == [world.budget_a.pk]
    assert [a.pk for a in rows(client.get(reverse("costs:budgetalert-list")))] == [world.alert_a.pk]
    # The platform's notifier serves every tenant, but is not a tenant's to see.
    assert [n.pk for n in rows(client.get(reverse("costs:notifier-list")))] == [world.notifier_a.pk]
    # Another tenant in a filter is not a valid choice: nothing is listed.
    assert rows(client.get(reverse("costs:budget-list"), {"tenant": "globex"})) == []
    assert rows(client.get(reverse("costs:budgetalert-list"), {"budget": world.budget_b.pk})) == []

    assert client.get(reverse("costs:ratelimit-detail", args=[world.limit_a.pk])).status_code == 200
    assert client.get(reverse("costs:budget-detail", args=[world.budget_a.pk])).status_code == 200
    detail = client.get(reverse("costs:budgetalert-detail", args=[world.alert_a.pk]))
    assert detail.status_code == 200
    for path in (
        reverse("costs:ratelimit-detail", args=[world.limit_b.pk]),
        reverse("costs:ratelimit-detail", args=[world.limit_plan.pk]),
        reverse("costs:budget-detail", args=[world.budget_b.pk]),
        reverse("costs:budgetalert-detail", args=[world.alert_b.pk]),
    ):
        assert client.get(path).status_code == 404, path


def test_a_tenant_member_may_not_change_anything(world):
    client = signed_in(tenant_member_of(world.acme))
    page = client.get(reverse("costs:budget-detail", args=[world.budget_a.pk]))
    assert not page.context["may_change"] and b"/edit/" not in page.content
    assert b"Add budget" not in client.get(reverse("costs:budget-list")).content
    listed = client.get(reverse("costs:notifier-list")).content.decode()
    assert "/edit/" not in listed and "/delete/" not in listed
    for path in (
        reverse("costs:ratelimit-add"),
        reverse("costs:budget-add"),
        reverse("costs:notifier-add"),
        reverse("costs:ratelimit-edit", args=[world.limit_a.pk]),
        reverse("costs:budget-delete", args=[world.budget_a.pk]),
        reverse("costs:notifier-edit", args=[world.notifier_a.pk]),
    ):
        assert client.get(path).status_code == 403, path
    response = client.post(
        reverse("costs:budget-edit", args=[world.budget_a.pk]),
        {"name": "x", "period": "daily", "limit_usd": "1", "action": "block"},
    )
    assert response.status_code == 403
    assert (
        client.post(reverse("costs:notifier-delete", args=[world.notifier_a.pk])).status_code == 403
    )
    world.budget_a.refresh_from_db()
    assert world.budget_a.name == "web monthly"
    assert Notifier.objects.filter(pk=world.notifier_a.pk).exists()


def test_without_a_costs_permission_pages_are_403(world):
    # The auditor holds neither a costs permission nor tenants.view_tenant (which, held
    # globally, shows every tenant's limits and budgets).
    client = signed_in(with_role("aude", roles.AUDITOR))
    for path in (
        reverse("costs:ratelimit-list"),
        reverse("costs:budget-detail", args=[world.budget_a.pk]),
        reverse("costs:budgetalert-list"),
        reverse("costs:notifier-list"),
    ):
        assert client.get(path).status_code == 403, path
    assert "Limits &amp; budgets" not in client.get("/").content.decode()


# --- rate limits ----------------------------------------------------------------------------


def test_rate_limits_are_created_edited_and_deleted_through_the_services(world, cost_admin):
    client = signed_in(cost_admin)
    response = client.post(
        reverse("costs:ratelimit-add"),
        {"target": f"project:{world.web.pk}", "requests_per_minute": "60", "max_concurrent": "4"},
    )
    limit = RateLimit.objects.get(project=world.web)
    assert response.status_code == 303
    assert response["Location"] == reverse("costs:ratelimit-detail", args=[limit.pk])
    assert limit.tenant == world.acme and limit.scope == "project" and limit.max_concurrent == 4
    assert audited("rate_limit.created", limit)

    edit = reverse("costs:ratelimit-edit", args=[limit.pk])
    form = client.get(edit)
    assert form.context["form"].initial["requests_per_minute"] == 60
    assert "Applies to the project acme/web" in form.content.decode()
    response = client.post(edit, {"requests_per_minute": "", "cost_per_hour_usd": "2.5"})
    assert response.status_code == 303
    limit.refresh_from_db()
    assert limit.requests_per_minute is None and limit.cost_per_hour_usd == Decimal("2.5")
    assert audited("rate_limit.updated", limit)

    response = client.post(reverse("costs:ratelimit-delete", args=[limit.pk]))
    assert response.status_code == 303 and response["Location"] == reverse("costs:ratelimit-list")
    assert not RateLimit.objects.filter(pk=limit.pk).exists()
    assert AuditEvent.objects.filter(event_type="rate_limit.deleted", resource_id=str(limit.pk))


def test_rate_limit_form_errors_are_next_to_their_fields(world, cost_admin):
    client = signed_in(cost_admin)
    add = reverse("costs:ratelimit-add")
    # The tenant already has limits: said on the target.
    response = client.post(add, {"target": "tenant:acme", "requests_per_minute": "5"})
    assert response.status_code == 200
    assert response.context["form"].errors["target"] == [
        "The tenant acme already has rate limits; change those."
    ]
    assert 'id="id_target_error"' in response.content.decode()
    response = client.post(add, {"target": "plan:free", "requests_per_minute": "5"})
    assert "target" in response.context["form"].errors
    # No figure at all, and a negative one.
    response = client.post(add, {"target": "plan:premium"})
    assert response.context["form"].non_field_errors()
    response = client.post(add, {"target": "plan:premium", "tokens_per_minute": "-1"})
    assert "tokens_per_minute" in response.context["form"].errors
    # A key that is not offered (revoked), or made up.
    world.key_b.revoked_at = timezone.now()
    world.key_b.save()
    for target in (f"key:{world.key_b.pk}", "tenant:nope", "plan:gold", "tenant"):
        response = client.post(add, {"target": target, "requests_per_minute": "5"})
        assert "target" in response.context["form"].errors, target
    htmx = client.post(add, {"target": ""}, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 422 and b"<html" not in htmx.content
    assert RateLimit.objects.count() == 3


def test_a_plan_limit_shows_the_defaults_it_replaces(world, cost_admin):
    client = signed_in(cost_admin)
    page = client.get(reverse("costs:ratelimit-detail", args=[world.limit_plan.pk]))
    html = page.content.decode()
    assert "Limits of the plan free" in html
    assert "100 requests per minute, replaced by these figures" in html


def test_the_add_form_preselects_and_offers_only_what_the_viewer_may_see(world, grant):
    # Global costs permissions, but tenants' projects and keys of acme only.
    user = get_user_model().objects.create_user("budgeteer")
    grant(user, "costs.view_budget", "costs.add_budget")
    roles.tenant_role_set(
        user=user, tenant=world.acme, role=roles.TENANT_MEMBER, actor=None, source="cli"
    )
    client = signed_in(user)
    page = client.get(reverse("costs:budget-add"), {"project": str(world.web.pk)})
    html = page.content.decode()
    assert f'value="project:{world.web.pk}" selected' in html
    assert "acme / acme-key" in html and "globex-key" not in html
    # Tenants: every one, since the permission to add budgets is global.
    assert 'value="tenant:globex"' in html
    response = client.post(
        reverse("costs:budget-add"),
        {"target": f"key:{world.key_b.pk}", "name": "x", "limit_usd": "1", "period": "daily"},
    )
    assert response.status_code == 200 and "target" in response.context["form"].errors


# --- budgets --------------------------------------------------------------------------------


def test_budgets_are_created_edited_and_deleted_through_the_services(world, cost_admin):
    client = signed_in(cost_admin)
    response = client.post(
        reverse("costs:budget-add"),
        {
            "target": f"key:{world.key_a.pk}",
            "name": "ci key",
            "period": "weekly",
            "limit_usd": "12.50",
            "thresholds": "90, 50 75%",
            "action": "alert",
            "enabled": "on",
        },
    )
    budget = Budget.objects.get(name="ci key")
    assert response.status_code == 303
    assert response["Location"] == reverse("costs:budget-detail", args=[budget.pk])
    assert budget.api_key == world.key_a and budget.tenant == world.acme
    assert budget.thresholds == [50, 75, 90] and budget.limit_usd == Decimal("12.5")
    assert audited("budget.created", budget)

    edit = reverse("costs:budget-edit", args=[budget.pk])
    assert 'value="50, 75, 90"' in client.get(edit).content.decode()
    response = client.post(
        edit,
        {
            "name": "ci key",
            "period": "monthly",
            "limit_usd": "20",
            "time_zone": "America/New_York",
            "thresholds": "",
            "action": "downgrade",
            "downgrade_to": "sim-fast",
        },
    )
    assert response.status_code == 303
    budget.refresh_from_db()
    assert budget.period == "monthly" and budget.time_zone == "America/New_York"
    assert budget.action == "downgrade" and not budget.enabled
    assert audited("budget.updated", budget)

    response = client.post(reverse("costs:budget-delete", args=[budget.pk]))
    assert response.status_code == 303 and response["Location"] == reverse("costs:budget-list")
    assert not Budget.objects.filter(pk=budget.pk).exists()
    assert AuditEvent.objects.filter(event_type="budget.deleted", resource_id=str(budget.pk))


def test_budget_form_errors_are_next_to_their_fields(world, cost_admin):
    client = signed_in(cost_admin)
    add = reverse("costs:budget-add")
    base = {"target": "tenant:acme", "name": "b", "period": "monthly", "limit_usd": "5"}
    cases = {
        "downgrade_to": {"action": "downgrade"},
        "time_zone": {"time_zone": "Mars/Olympus", "action": "block"},
        "thresholds": {"thresholds": "50, lots", "action": "block"},
        "limit_usd": {"limit_usd": "-1", "action": "block"},
    }
    for field, change in cases.items():
        response = client.post(add, {**base, **change})
        assert response.status_code == 200, field
        assert field in response.context["form"].errors, (field, response.context["form"].errors)
        assert f'id="id_{field}_error"' in response.content.decode(), field
    # A name the tenant already uses: the service's refusal, shown on the form.
    response = client.post(add, {**base, "name": "web monthly", "action": "block"})
    assert response.status_code == 200 and response.context["form"].errors
    assert Budget.objects.count() == 2


def test_budget_detail_shows_its_alerts_and_the_current_periods_spend(world, cost_admin):
    budget = world.budget_a
    start, _ = period_bounds(budget.period, "Europe/Paris", time.time())
    counters = MemoryCounters()
    counters.budgets[budget_key(SimpleNamespace(id=str(budget.pk)), start)] = {
        "s": 2_500_000_000,  # $25
        "res": {"r-1": (10_000_000, 0)},  # $0.10 in flight
        "expires": 0,
    }
    set_counters(counters)
    try:
        page = signed_in(cost_admin).get(reverse("costs:budget-detail", args=[budget.pk]))
    finally:
        set_counters(None)
    assert page.status_code == 200
    spend = page.context["spend"]
    assert spend.settled_usd == Decimal(25) and spend.reserved_usd == Decimal("0.1")
    assert spend.time_zone == "Europe/Paris" and round(spend.percent) == 25
    html = page.content.decode()
    assert "$25.00" in html and "$75.00" in html and 'value="25.0"' in html
    assert [a.pk for a, _ in page.context["alerts"]] == [world.alert_a.pk]
    assert reverse("costs:budgetalert-detail", args=[world.alert_a.pk]) in html


def test_budget_detail_without_a_counter_or_with_a_broken_one_still_renders(
    world, cost_admin, monkeypatch
):
    client = signed_in(cost_admin)
    path = reverse("costs:budget-detail", args=[world.budget_b.pk])
    set_counters(MemoryCounters())
    try:
        page = client.get(path)
        assert page.status_code == 200 and not page.context["spend"].counted
        assert b'data-spend="none"' in page.content

        def broken(key):
            raise ConnectionError("redis is down")

        monkeypatch.setattr(MemoryCounters, "spend", lambda self, key: broken(key))
        page = client.get(path)
        assert page.status_code == 200 and not page.context["spend"].counted
    finally:
        set_counters(None)


# --- alerts ---------------------------------------------------------------------------------


def test_alert_pages_show_delivery(world, cost_admin):
    client = signed_in(cost_admin)
    listed = client.get(reverse("costs:budgetalert-list")).content.decode()
    assert "notified" in listed and "failing" in listed and "web monthly at 80%" in listed
    page = client.get(reverse("costs:budgetalert-detail", args=[world.alert_b.pk]))
    html = page.content.decode()
    assert page.context["delivery"] == "failing"
    assert "webhook answered HTTP 500" in html and "$2.60" in html
    assert reverse("costs:budget-detail", args=[world.budget_b.pk]) in html
    # Alerts are records: no page adds, changes or deletes them.
    assert "/edit/" not in html and "/delete/" not in html


# --- notifiers ------------------------------------------------------------------------------


def test_a_notifiers_secret_is_never_rendered(world, cost_admin):
    client = signed_in(cost_admin)
    response = client.post(
        reverse("costs:notifier-add"),
        {
            "name": "acme-hook",
            "kind": "webhook",
            "tenant": "acme",
            "target": "https://hooks.example.com/acme/secret-path?token=abc",
            "secret": "another-secret-0123456789",
            "enabled": "on",
        },
    )
    assert response.status_code == 303 and response["Location"] == reverse("costs:notifier-list")
    hook = Notifier.objects.get(name="acme-hook")
    assert hook.tenant == world.acme and hook.secret == "another-secret-0123456789"
    assert audited("notifier.created", hook)

    pages = [
        reverse("costs:notifier-list"),
        reverse("costs:notifier-add"),
        reverse("costs:notifier-edit", args=[hook.pk]),
        reverse("costs:notifier-edit", args=[world.notifier_all.pk]),
        reverse("costs:notifier-delete", args=[world.notifier_all.pk]),
    ]
    for path in pages:
        html = client.get(path).content.decode()
        assert SECRET not in html and "another-secret-0123456789" not in html, path
    # Lists show a webhook's host, not its path or query (they often carry a token).
    listed = client.get(reverse("costs:notifier-list")).content.decode()
    assert "https://hooks.example.com/…" in listed and "secret-path" not in listed
    assert "tokenpart" not in listed
    # The edit form says how to keep it, and an empty field keeps it.
    edit = reverse("costs:notifier-edit", args=[hook.pk])
    assert "Leave empty to keep the current secret" in client.get(edit).content.decode()
    target = "https://hooks.example.com/acme/other"
    response = client.post(edit, {"name": "acme-hook", "target": target, "secret": ""})
    assert response.status_code == 303
    hook.refresh_from_db()
    assert hook.secret == "another-secret-0123456789" and hook.target == target
    assert not hook.enabled
    response = client.post(
        edit,
        {"name": "acme-hook", "target": target, "secret": "rotated-secret-99", "enabled": "on"},
    )
    hook.refresh_from_db()
    assert hook.secret == "rotated-secret-99"
    changed = AuditEvent.objects.filter(event_type="notifier.updated", resource_id=str(hook.pk))
    assert changed.count() == 2
    assert all("rotated-secret-99" not in str(e.data) for e in changed)
    assert "rotated-secret-99" not in client.get(edit).content.decode()

    response = client.post(reverse("costs:notifier-delete", args=[hook.pk]))
    assert response.status_code == 303 and not Notifier.objects.filter(pk=hook.pk).exists()
    assert AuditEvent.objects.filter(event_type="notifier.deleted", resource_id=str(hook.pk))


def test_notifier_form_errors_are_next_to_their_fields(world, cost_admin):
    client = signed_in(cost_admin)
    add = reverse("costs:notifier-add")
    response = client.post(add, {"name": "h", "kind": "webhook", "target": "ftp://x"})
    assert "target" in response.context["form"].errors
    response = client.post(add, {"name": "h", "kind": "webhook", "target": "https://h.example/"})
    assert "secret" in response.context["form"].errors  # a webhook needs one
    response = client.post(add, {"name": "m", "kind": "email", "target": "not an address"})
    assert "target" in response.context["form"].errors
    response = client.post(add, {"name": "ops-hook", "kind": "email", "target": "a@b.example"})
    assert response.status_code == 200 and response.context["form"].errors
    # What the secret field was given is not sent back with the errors.
    response = client.post(
        add, {"name": "h", "kind": "webhook", "target": "bad", "secret": "typed-secret-123"}
    )
    assert "typed-secret-123" not in response.content.decode()
    assert Notifier.objects.count() == 2
