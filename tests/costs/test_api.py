"""The costs management API: rate limits, budgets, budget alerts and notifiers through
/api/v1/, and the plan, savings and rotation-grace fields of tenants and keys."""

from __future__ import annotations

from datetime import UTC, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.costs import services
from apps.costs.admission import budget_key, set_counters
from apps.costs.counters import MemoryCounters
from apps.costs.limits import period_bounds, usd_to_units
from apps.costs.models import Budget, BudgetAlert, Notifier, RateLimit
from apps.tenants import roles
from apps.tenants.models import ApiKey
from apps.tenants.services import api_key_create, api_key_revoke, project_create, tenant_create
from tests.conftest import UserFactory, client_for

pytestmark = pytest.mark.django_db

LIMITS = "/api/v1/rate-limits/"
BUDGETS = "/api/v1/budgets/"
ALERTS = "/api/v1/budget-alerts/"
NOTIFIERS = "/api/v1/notifiers/"
SECRET = "whsec-never-shown-0123456789"


def _in_role(username: str, role: str):
    user = UserFactory(username=username)
    roles.user_roles_set(user=user, roles=[role], actor=None, source="cli")
    return client_for(user)


@pytest.fixture
def acme():
    return tenant_create(slug="acme", name="Acme")


@pytest.fixture
def globex():
    return tenant_create(slug="globex", name="Globex")


@pytest.fixture
def cost_admin():
    return _in_role("cost", roles.COST_ADMIN)


@pytest.fixture
def read_only():
    return _in_role("reader", roles.READ_ONLY)


@pytest.fixture
def acme_member(acme):
    user = UserFactory(username="member")
    roles.tenant_role_set(
        user=user, tenant=acme, role=roles.TENANT_MEMBER, actor=None, source="cli"
    )
    return client_for(user)


@pytest.fixture(autouse=True)
def _own_counters():
    """Budget spend is read from this test's counters, never a previous test's."""
    set_counters(MemoryCounters())
    yield
    set_counters(None)


def _ids(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


# --- rate limits ----------------------------------------------------------------------------


def test_rate_limit_crud_goes_through_the_services(cost_admin, acme):
    created = cost_admin.post(
        LIMITS,
        {"scope": "tenant", "tenant": str(acme.pk), "requests_per_minute": 600},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["tenant"], body["project"], body["api_key"]) == (str(acme.pk), None, None)
    assert body["target"] == "tenant acme" and body["requests_per_minute"] == 600
    url = f"{LIMITS}{body['id']}/"

    changed = cost_admin.patch(url, {"cost_per_hour_usd": "2.5"}, format="json")
    assert changed.status_code == 200
    assert Decimal(changed.json()["cost_per_hour_usd"]) == Decimal("2.5")
    assert cost_admin.get(url).json()["requests_per_minute"] == 600

    assert cost_admin.delete(url).status_code == 204
    assert not RateLimit.objects.exists()
    events = list(AuditEvent.objects.filter(resource_id=body["id"]).values_list("event_type"))
    assert events == [("rate_limit.created",), ("rate_limit.updated",), ("rate_limit.deleted",)]


def test_project_and_key_limits_imply_their_tenant(cost_admin, acme):
    project = project_create(tenant=acme, slug="web")
    key, _ = api_key_create(tenant=acme, name="ci")
    on_project = cost_admin.post(
        LIMITS, {"scope": "project", "project": str(project.pk), "max_concurrent": 4}, format="json"
    )
    on_key = cost_admin.post(
        LIMITS, {"scope": "key", "api_key": str(key.pk), "tokens_per_minute": 1000}, format="json"
    )
    assert (on_project.status_code, on_key.status_code) == (201, 201)
    assert on_project.json()["tenant"] == on_key.json()["tenant"] == str(acme.pk)
    assert on_project.json()["project"] == str(project.pk)
    assert on_key.json()["api_key"] == str(key.pk)


def test_a_second_limit_on_the_same_target_is_a_409_naming_it(cost_admin, acme):
    body = {"scope": "tenant", "tenant": str(acme.pk), "requests_per_minute": 1}
    assert cost_admin.post(LIMITS, body, format="json").status_code == 201
    clash = cost_admin.post(LIMITS, body, format="json")
    assert clash.status_code == 409
    assert clash.json()["field"] == "tenant" and clash.json()["code"] == "conflict"
    plan = {"scope": "plan", "plan": "free", "requests_per_minute": 60}
    assert cost_admin.post(LIMITS, plan, format="json").status_code == 201
    assert cost_admin.post(LIMITS, plan, format="json").json()["field"] == "plan"
    # Limits of a project of the tenant are another target.
    project = project_create(tenant=acme, slug="web")
    other = {"scope": "project", "project": str(project.pk), "requests_per_minute": 1}
    assert cost_admin.post(LIMITS, other, format="json").status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scope": "plan"}, "plan"),
        ({"scope": "plan", "plan": "gold"}, "plan"),
        ({"scope": "tenant"}, "tenant"),
        ({"scope": "project", "tenant": "ACME"}, "project"),
        ({"scope": "project", "tenant": "ACME", "api_key": "KEY"}, "project"),
        ({"scope": "tenant", "tenant": "ACME", "plan": "free"}, "plan"),
        ({"scope": "key", "tenant": "ACME", "project": "WEB", "api_key": "KEY"}, "project"),
        ({"scope": "galaxy", "tenant": "ACME"}, "scope"),
        ({"scope": "tenant", "tenant": "ACME", "requests_per_minute": -1}, "requests_per_minute"),
        ({"scope": "tenant", "tenant": "ACME", "tokens_per_minute": "many"}, "tokens_per_minute"),
        ({"scope": "tenant", "tenant": "ACME", "cost_per_hour_usd": "-1"}, "cost_per_hour_usd"),
        ({"scope": "tenant", "tenant": "not-an-id"}, "tenant"),
    ],
)
def test_invalid_limits_are_a_400_naming_the_field(cost_admin, acme, body, field):
    project = project_create(tenant=acme, slug="web")
    key, _ = api_key_create(tenant=acme, name="ci")
    names = {"ACME": str(acme.pk), "WEB": str(project.pk), "KEY": str(key.pk)}
    body = {k: names.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    response = cost_admin.post(LIMITS, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert not RateLimit.objects.exists()


def test_a_limit_keeps_its_target(cost_admin, acme, globex):
    row = services.rate_limit_create(scope="tenant", tenant=acme, requests_per_minute=1)
    response = cost_admin.patch(
        f"{LIMITS}{row.pk}/", {"tenant": str(globex.pk), "requests_per_minute": 2}, format="json"
    )
    assert response.status_code == 200
    row.refresh_from_db()
    assert (row.tenant_id, row.requests_per_minute) == (acme.pk, 2)


def test_a_revoked_key_takes_no_new_limits(cost_admin, acme):
    key, _ = api_key_create(tenant=acme, name="old")
    api_key_revoke(api_key=key)
    response = cost_admin.post(
        LIMITS, {"scope": "key", "api_key": str(key.pk), "requests_per_minute": 1}, format="json"
    )
    assert response.status_code == 400 and "api_key" in response.json()


# --- budgets --------------------------------------------------------------------------------


def test_budget_crud_goes_through_the_services(cost_admin, acme):
    created = cost_admin.post(
        BUDGETS,
        {"scope": "tenant", "tenant": str(acme.pk), "name": "monthly", "limit_usd": "100"},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["thresholds"] == [50, 80, 100] and body["action"] == "block"
    assert body["target"] == "tenant acme" and body["tenant"] == str(acme.pk)
    url = f"{BUDGETS}{body['id']}/"

    changed = cost_admin.patch(
        url, {"thresholds": [90, 25.5, 90], "action": "alert"}, format="json"
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["thresholds"] == [25.5, 90]
    assert cost_admin.delete(url).status_code == 204
    assert not Budget.objects.exists()
    events = AuditEvent.objects.filter(resource_id=body["id"]).values_list("event_type", flat=True)
    assert list(events) == ["budget.created", "budget.updated", "budget.deleted"]


def test_a_budget_shows_its_period_and_the_spend_its_counter_holds(cost_admin, acme):
    acme.time_zone = "Asia/Tokyo"
    acme.save()
    counters = MemoryCounters()
    set_counters(counters)
    budget = services.budget_create(
        scope="tenant", tenant=acme, name="daily", limit_usd=10, period="daily"
    )
    url = f"{BUDGETS}{budget.pk}/"
    fresh = cost_admin.get(url).json()
    # No request admitted in this period yet: the counters hold nothing to show.
    assert fresh["spent_usd"] is None
    start, end = period_bounds("daily", "Asia/Tokyo", timezone.now().timestamp())
    assert fresh["period_start"] == timezone.datetime.fromtimestamp(start, UTC).isoformat().replace(
        "+00:00", "Z"
    )
    assert fresh["period_start"].endswith("T15:00:00Z") and fresh["period_end"] is not None
    counters.budgets[budget_key(budget, start)] = {"s": usd_to_units(3), "res": {}, "expires": 0}
    assert Decimal(cost_admin.get(url).json()["spent_usd"]) == 3


def test_a_total_budget_has_no_period(cost_admin, acme):
    budget = services.budget_create(
        scope="tenant", tenant=acme, name="t", limit_usd=1, period="total"
    )
    body = cost_admin.get(f"{BUDGETS}{budget.pk}/").json()
    assert (body["period_start"], body["period_end"]) == (None, None)


def test_a_budget_name_is_unique_per_tenant(cost_admin, acme, globex):
    body = {"scope": "tenant", "tenant": str(acme.pk), "name": "monthly", "limit_usd": "1"}
    assert cost_admin.post(BUDGETS, body, format="json").status_code == 201
    clash = cost_admin.post(BUDGETS, body, format="json")
    assert clash.status_code == 409 and clash.json()["field"] == "name"
    # The same name on a project of the tenant clashes too; on another tenant it does not.
    project = project_create(tenant=acme, slug="web")
    on_project = {"scope": "project", "project": str(project.pk), "name": "monthly", "limit_usd": 1}
    assert cost_admin.post(BUDGETS, on_project, format="json").status_code == 409
    elsewhere = {**body, "tenant": str(globex.pk)}
    assert cost_admin.post(BUDGETS, elsewhere, format="json").status_code == 201
    # A rename onto a taken name is a 409 as well.
    other = services.budget_create(scope="tenant", tenant=acme, name="weekly", limit_usd=1)
    rename = cost_admin.patch(f"{BUDGETS}{other.pk}/", {"name": "monthly"}, format="json")
    assert rename.status_code == 409 and rename.json()["field"] == "name"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"scope": "plan"}, "scope"),
        ({"limit_usd": "-5"}, "limit_usd"),
        ({"limit_usd": None}, "limit_usd"),
        ({"period": "hourly"}, "period"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"thresholds": [0]}, "thresholds"),
        ({"thresholds": "high"}, "thresholds"),
        ({"thresholds": [2000]}, "thresholds"),
        ({"action": "downgrade"}, "downgrade_to"),
        ({"action": "explode"}, "action"),
        ({"name": ""}, "name"),
        ({"name": "two\nlines"}, "name"),
    ],
)
def test_invalid_budgets_are_a_400_naming_the_field(cost_admin, acme, change, field):
    body = {"scope": "tenant", "tenant": str(acme.pk), "name": "b", "limit_usd": "5", **change}
    response = cost_admin.post(BUDGETS, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert not Budget.objects.exists()


def test_a_downgrading_budget_names_its_model(cost_admin, acme):
    body = {
        "scope": "tenant",
        "tenant": str(acme.pk),
        "name": "soft",
        "limit_usd": "5",
        "action": "downgrade",
        "downgrade_to": "cheap-model",
        "time_zone": "Europe/Paris",
    }
    response = cost_admin.post(BUDGETS, body, format="json")
    assert response.status_code == 201
    assert response.json()["downgrade_to"] == "cheap-model"


# --- budget alerts --------------------------------------------------------------------------


def _alert(budget: Budget, threshold: float) -> BudgetAlert:
    return BudgetAlert.objects.create(
        budget=budget,
        tenant=budget.tenant,
        period_start=timezone.now().replace(day=1),
        threshold=threshold,
        spent_usd=Decimal("8"),
        limit_usd=budget.limit_usd,
    )


def test_budget_alerts_are_read_only_and_filter_by_tenant_and_budget(cost_admin, acme, globex):
    monthly = services.budget_create(scope="tenant", tenant=acme, name="m", limit_usd=10)
    weekly = services.budget_create(scope="tenant", tenant=acme, name="w", limit_usd=10)
    theirs = services.budget_create(scope="tenant", tenant=globex, name="m", limit_usd=10)
    a1, a2, b1 = _alert(monthly, 50), _alert(weekly, 80), _alert(theirs, 100)

    assert _ids(cost_admin.get(ALERTS)) == {str(a1.pk), str(a2.pk), str(b1.pk)}
    assert _ids(cost_admin.get(ALERTS, {"tenant": str(acme.pk)})) == {str(a1.pk), str(a2.pk)}
    assert _ids(cost_admin.get(ALERTS, {"budget": str(weekly.pk)})) == {str(a2.pk)}
    one = cost_admin.get(f"{ALERTS}{a1.pk}/").json()
    assert (one["budget"], one["budget_name"], one["threshold"]) == (str(monthly.pk), "m", 50)
    assert "delivered_to" not in one and "notify_error" not in one
    assert cost_admin.post(ALERTS, {}, format="json").status_code == 405
    assert cost_admin.delete(f"{ALERTS}{a1.pk}/").status_code == 405


# --- notifiers ------------------------------------------------------------------------------


def test_notifier_secrets_are_write_only_and_never_audited(cost_admin, acme):
    created = cost_admin.post(
        NOTIFIERS,
        {
            "name": "ops",
            "kind": "webhook",
            "target": "https://hooks.example/atp",
            "secret": SECRET,
            "tenant": str(acme.pk),
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["has_secret"] is True and "secret" not in body
    url = f"{NOTIFIERS}{body['id']}/"

    # Omitted on update: kept; given: replaced.
    assert cost_admin.patch(url, {"enabled": False}, format="json").status_code == 200
    assert Notifier.objects.get().secret == SECRET
    rotated = cost_admin.patch(url, {"secret": SECRET + "-2"}, format="json")
    assert rotated.status_code == 200 and Notifier.objects.get().secret == SECRET + "-2"
    for response in (cost_admin.get(NOTIFIERS), cost_admin.get(url), rotated):
        assert SECRET not in response.content.decode()
    events = AuditEvent.objects.filter(resource_id=body["id"])
    assert {"notifier.created", "notifier.updated"} <= set(
        events.values_list("event_type", flat=True)
    )
    assert SECRET not in str(list(events.values()))
    assert cost_admin.delete(url).status_code == 204
    assert SECRET not in str(list(AuditEvent.objects.values()))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "webhook", "target": "https://hooks.example/x"}, "secret"),
        ({"kind": "webhook", "target": "ftp://x", "secret": "s"}, "target"),
        ({"kind": "email", "target": "not-an-address"}, "target"),
        ({"kind": "email", "target": ""}, "target"),
        ({"kind": "pigeon", "target": "roof"}, "kind"),
        ({"kind": "email", "target": "a@example.com", "tenant": "nope"}, "tenant"),
    ],
)
def test_invalid_notifiers_are_a_400_naming_the_field(cost_admin, body, field):
    response = cost_admin.post(NOTIFIERS, {"name": "n", **body}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_a_notifier_name_is_unique_and_its_kind_and_tenant_fixed(cost_admin, acme):
    body = {"name": "finance", "kind": "email", "target": "cfo@example.com, ap@example.com"}
    created = cost_admin.post(NOTIFIERS, body, format="json")
    assert created.status_code == 201
    clash = cost_admin.post(NOTIFIERS, body, format="json")
    assert clash.status_code == 409 and clash.json()["field"] == "name"
    url = f"{NOTIFIERS}{created.json()['id']}/"
    moved = cost_admin.patch(url, {"kind": "webhook", "tenant": str(acme.pk)}, format="json")
    assert moved.status_code == 200
    assert (moved.json()["kind"], moved.json()["tenant"]) == ("email", None)
    emptied = cost_admin.patch(url, {"target": "nobody"}, format="json")
    assert emptied.status_code == 400 and "target" in emptied.json()


# --- who sees and changes what --------------------------------------------------------------


@pytest.fixture
def two_tenants(acme, globex):
    """Rows of acme, of globex, and of no tenant."""
    return {
        "limit_a": services.rate_limit_create(scope="tenant", tenant=acme, requests_per_minute=1),
        "limit_b": services.rate_limit_create(scope="tenant", tenant=globex, requests_per_minute=1),
        "limit_plan": services.rate_limit_create(scope="plan", plan="free", requests_per_minute=1),
        "budget_a": services.budget_create(scope="tenant", tenant=acme, name="m", limit_usd=1),
        "budget_b": services.budget_create(scope="tenant", tenant=globex, name="m", limit_usd=1),
        "notifier_a": services.notifier_create(
            name="acme-mail", kind="email", tenant=acme, target="a@example.com"
        ),
        "notifier_b": services.notifier_create(
            name="globex-mail", kind="email", tenant=globex, target="b@example.com"
        ),
        "notifier_all": services.notifier_create(
            name="ops", kind="webhook", target="https://hooks.example/x", secret=SECRET
        ),
    }


def test_a_tenant_member_sees_only_its_tenants_rows(acme_member, two_tenants):
    rows = two_tenants
    rows["alert_a"] = _alert(rows["budget_a"], 50)
    rows["alert_b"] = _alert(rows["budget_b"], 50)
    for url, mine, others in (
        (LIMITS, "limit_a", ("limit_b", "limit_plan")),
        (BUDGETS, "budget_a", ("budget_b",)),
        (ALERTS, "alert_a", ("alert_b",)),
        (NOTIFIERS, "notifier_a", ("notifier_b", "notifier_all")),
    ):
        assert _ids(acme_member.get(url)) == {str(rows[mine].pk)}, url
        assert acme_member.get(f"{url}{rows[mine].pk}/").status_code == 200
        for other in others:
            assert acme_member.get(f"{url}{rows[other].pk}/").status_code == 404, other


def test_a_filter_on_another_tenant_reads_as_an_unknown_one(acme_member, globex, two_tenants):
    for url in (LIMITS, BUDGETS, ALERTS, NOTIFIERS):
        response = acme_member.get(url, {"tenant": str(globex.pk)})
        assert response.status_code == 400 and "tenant" in response.json(), url
    budget_b = two_tenants["budget_b"]
    assert acme_member.get(ALERTS, {"budget": str(budget_b.pk)}).status_code == 400


def test_only_cost_admins_change_limits_budgets_and_notifiers(
    acme_member, read_only, cost_admin, acme, two_tenants
):
    creates = {
        LIMITS: {"scope": "project", "project": str(project_create(tenant=acme, slug="w").pk)},
        BUDGETS: {"scope": "tenant", "tenant": str(acme.pk), "name": "new", "limit_usd": "1"},
        NOTIFIERS: {"name": "new", "kind": "email", "target": "x@example.com"},
    }
    for client in (acme_member, read_only):
        for url, body in creates.items():
            assert client.post(url, body, format="json").status_code == 403, url
        for name in ("limit_a", "budget_a", "notifier_a"):
            url = {"l": LIMITS, "b": BUDGETS, "n": NOTIFIERS}[name[0]]
            target = f"{url}{two_tenants[name].pk}/"
            assert client.patch(target, {"enabled": False}, format="json").status_code == 403
            assert client.delete(target).status_code == 403
    for url, body in creates.items():
        assert cost_admin.post(url, body, format="json").status_code == 201, url
    assert _ids(read_only.get(LIMITS)) >= {str(two_tenants["limit_plan"].pk)}


def test_the_api_answers_bad_bodies_with_400s(cost_admin, acme):
    for url in (LIMITS, BUDGETS, NOTIFIERS):
        for body in ([], "text", {"scope": ["tenant"]}, {"tenant": {"id": 1}}):
            response = cost_admin.post(url, body, format="json")
            assert response.status_code == 400, (url, body, response.content)


# --- tenants and keys: plans, savings settings, rotation grace ------------------------------


def test_tenant_plan_time_zone_and_savings_settings(read_only, acme):
    admin = _in_role("admin", roles.SUPER_ADMIN)
    url = f"/api/v1/tenants/{acme.pk}/"
    changed = admin.patch(
        url,
        {
            "plan": "premium",
            "time_zone": "Europe/Paris",
            "baseline_model": "gpt-4o",
            "gain_share_percent": "12.50",
        },
        format="json",
    )
    assert changed.status_code == 200, changed.content
    body = read_only.get(url).json()
    assert (body["plan"], body["time_zone"], body["baseline_model"]) == (
        "premium",
        "Europe/Paris",
        "gpt-4o",
    )
    assert Decimal(body["gain_share_percent"]) == Decimal("12.5")
    for bad, field in (
        ({"plan": "gold"}, "plan"),
        ({"time_zone": "Nowhere/Land"}, "time_zone"),
        ({"gain_share_percent": "150"}, "gain_share_percent"),
        ({"gain_share_percent": "-1"}, "gain_share_percent"),
    ):
        response = admin.patch(url, bad, format="json")
        assert response.status_code == 400 and field in response.json(), bad


def test_key_plan_is_writable_and_usage_fields_read_only(acme):
    admin = _in_role("admin", roles.SUPER_ADMIN)
    created = admin.post(
        "/api/v1/api-keys/", {"tenant": str(acme.pk), "name": "ci", "plan": "free"}, format="json"
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["plan"], body["last_used_at"], body["grace_until"]) == ("free", None, None)
    url = f"/api/v1/api-keys/{body['id']}/"
    later = timezone.now().isoformat()
    changed = admin.patch(
        url, {"plan": "enterprise", "last_used_at": later, "grace_until": later}, format="json"
    )
    assert changed.status_code == 200
    key = ApiKey.objects.get(pk=body["id"])
    assert (key.plan, key.last_used_at, key.grace_until) == ("enterprise", None, None)
    assert admin.patch(url, {"plan": "gold"}, format="json").status_code == 400


def test_rotate_takes_a_grace_period(acme, settings):
    settings.ATP_KEY_ROTATION_GRACE_SECONDS = 0
    admin = _in_role("admin", roles.SUPER_ADMIN)
    key, _ = api_key_create(tenant=acme, name="ci")
    rotated = admin.post(
        f"/api/v1/api-keys/{key.pk}/rotate/", {"grace_seconds": 3600}, format="json"
    )
    assert rotated.status_code == 201, rotated.content
    old = admin.get(f"/api/v1/api-keys/{key.pk}/").json()
    key.refresh_from_db()
    assert key.grace_until - key.revoked_at == timedelta(hours=1)
    assert old["grace_until"] is not None and old["is_revoked"] is True
    # Without a body the setting's default applies (here: none).
    second, _ = api_key_create(tenant=acme, name="cd")
    assert admin.post(f"/api/v1/api-keys/{second.pk}/rotate/").status_code == 201
    second.refresh_from_db()
    assert second.grace_until is None


@pytest.mark.parametrize("grace", [-1, "soon", 10**9, 1.5])
def test_rotate_refuses_a_bad_grace_period_naming_it(acme, grace):
    admin = _in_role("admin", roles.SUPER_ADMIN)
    key, _ = api_key_create(tenant=acme, name="ci")
    response = admin.post(
        f"/api/v1/api-keys/{key.pk}/rotate/", {"grace_seconds": grace}, format="json"
    )
    assert response.status_code == 400 and "grace_seconds" in response.json()
    key.refresh_from_db()
    assert key.revoked_at is None
