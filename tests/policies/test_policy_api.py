"""The policies management API: CRUD through the services, permissions and tenant isolation,
validation, simulation and the impact preview over logged requests."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.policies import services
from apps.policies.models import Policy
from apps.routing.models import RequestLog
from apps.tenants import roles
from apps.tenants.services import tenant_create
from tests.conftest import UserFactory, client_for

pytestmark = pytest.mark.django_db

URL = "/api/v1/policies/"
DENY_SECRETS = [
    {
        "id": "no-secrets",
        "when": [{"attr": "request.entities", "op": "contains", "value": "SECRET"}],
        "effect": {"type": "deny", "message": "Secrets stay home."},
    }
]


def _in_role(username: str, role: str):
    user = UserFactory(username=username)
    roles.user_roles_set(user=user, roles=[role], actor=None, source="cli")
    return client_for(user)


def _on_tenant(username: str, tenant, role: str):
    user = UserFactory(username=username)
    roles.tenant_role_set(user=user, tenant=tenant, role=role, actor=None, source="cli")
    return client_for(user)


@pytest.fixture
def acme():
    return tenant_create(slug="acme", name="Acme")


@pytest.fixture
def globex():
    return tenant_create(slug="globex", name="Globex")


@pytest.fixture
def security():
    return _in_role("security", roles.SECURITY_ADMIN)


@pytest.fixture
def acme_admin(acme):
    return _on_tenant("acme-admin", acme, roles.TENANT_ADMIN)


@pytest.fixture
def acme_member(acme):
    return _on_tenant("acme-member", acme, roles.TENANT_MEMBER)


@pytest.fixture
def policies(acme, globex):
    return {
        "global": services.policy_create(name="global-guard", rules=DENY_SECRETS),
        "acme": services.policy_create(
            tenant=acme, name="acme-eu", rules=[{"effect": {"type": "route", "regions": ["eu"]}}]
        ),
        "globex": services.policy_create(
            tenant=globex,
            name="globex-cap",
            rules=[{"effect": {"type": "cap_cost", "max_usd": 0.05}}],
        ),
    }


# --- CRUD --------------------------------------------------------------------------------


def test_security_admin_creates_reads_updates_and_deletes(security, acme):
    created = security.post(
        URL,
        {"tenant": str(acme.pk), "name": "no-secrets", "priority": 5, "rules": DENY_SECRETS},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["tenant_slug"] == "acme" and body["version"] == 1 and body["warnings"] == []
    pk = body["id"]
    assert security.get(f"{URL}{pk}/").json()["rules"] == DENY_SECRETS
    patched = security.patch(f"{URL}{pk}/", {"mode": "log_only"}, format="json")
    assert patched.status_code == 200 and patched.json()["version"] == 2
    put = security.put(
        f"{URL}{pk}/", {"name": "no-secrets-2", "rules": DENY_SECRETS}, format="json"
    )
    assert put.status_code == 200 and put.json()["name"] == "no-secrets-2"
    assert security.delete(f"{URL}{pk}/").status_code == 204
    assert not Policy.objects.exists()
    events = list(
        AuditEvent.objects.filter(event_type__startswith="policy.").values_list(
            "event_type", flat=True
        )
    )
    assert sorted(events) == sorted(
        ["policy.created", "policy.updated", "policy.updated", "policy.deleted"]
    )


def test_global_policies_are_created_with_no_tenant(security):
    response = security.post(URL, {"name": "g", "rules": DENY_SECRETS}, format="json")
    assert response.status_code == 201 and response.json()["tenant"] is None


def test_invalid_rules_are_400_naming_the_field(security):
    response = security.post(
        URL,
        {"name": "bad", "rules": [{"when": [{"attr": "request.mood", "op": "eq", "value": 1}]}]},
        format="json",
    )
    assert response.status_code == 400
    assert "rules" in response.json()
    assert any("unknown attribute 'request.mood'" in m for m in response.json()["rules"])


def test_a_taken_name_is_409(security, policies, acme):
    response = security.post(
        URL, {"tenant": str(acme.pk), "name": "acme-eu", "rules": DENY_SECRETS}, format="json"
    )
    assert response.status_code == 409 and response.json()["field"] == "name"


def test_unreachable_rules_are_saved_with_warnings(security):
    security.post(
        URL,
        {"name": "lockdown", "priority": 9, "rules": [{"effect": {"type": "deny"}}]},
        format="json",
    )
    response = security.post(URL, {"name": "later", "rules": DENY_SECRETS}, format="json")
    assert response.status_code == 201
    assert [w["code"] for w in response.json()["warnings"]] == ["unreachable"]


def test_filter_by_tenant_and_global(security, policies, acme):
    names = lambda r: sorted(p["name"] for p in r.json()["results"])  # noqa: E731
    assert names(security.get(URL, {"tenant": str(acme.pk)})) == ["acme-eu"]
    assert names(security.get(URL, {"is_global": "true"})) == ["global-guard"]
    assert len(security.get(URL).json()["results"]) == 3


# --- permissions and isolation -------------------------------------------------------------


def test_anonymous_is_401_and_a_user_without_permission_403(api_client, plain_user, policies):
    assert api_client.get(URL).status_code == 401
    assert client_for(plain_user).get(URL).status_code == 403


def test_tenant_members_see_their_tenants_policies_only(acme_member, policies):
    listed = acme_member.get(URL).json()["results"]
    assert [p["name"] for p in listed] == ["acme-eu"]
    assert acme_member.get(f"{URL}{policies['globex'].pk}/").status_code == 404
    assert acme_member.get(f"{URL}{policies['global'].pk}/").status_code == 404
    change = acme_member.patch(f"{URL}{policies['acme'].pk}/", {"enabled": False}, format="json")
    assert change.status_code == 403


def test_tenant_admins_manage_their_tenants_policies_only(acme_admin, acme, globex, policies):
    created = acme_admin.post(
        URL, {"tenant": str(acme.pk), "name": "mine", "rules": DENY_SECRETS}, format="json"
    )
    assert created.status_code == 201
    elsewhere = acme_admin.post(
        URL, {"tenant": str(globex.pk), "name": "theirs", "rules": DENY_SECRETS}, format="json"
    )
    assert elsewhere.status_code == 400 and "tenant" in elsewhere.json()
    everyone = acme_admin.post(URL, {"name": "everyone", "rules": DENY_SECRETS}, format="json")
    assert everyone.status_code == 403
    assert (
        acme_admin.patch(f"{URL}{policies['acme'].pk}/", {"priority": 3}, format="json").status_code
        == 200
    )
    assert acme_admin.delete(f"{URL}{policies['globex'].pk}/").status_code == 404
    assert acme_admin.delete(f"{URL}{policies['global'].pk}/").status_code == 404
    assert not Policy.objects.filter(name="theirs").exists()


def test_a_policys_tenant_is_fixed(security, policies, globex):
    response = security.patch(
        f"{URL}{policies['acme'].pk}/", {"tenant": str(globex.pk)}, format="json"
    )
    assert response.status_code == 200
    assert Policy.objects.get(pk=policies["acme"].pk).tenant.slug == "acme"


# --- validate -------------------------------------------------------------------------------


def test_validate_reports_problems_with_200(security):
    response = security.post(
        f"{URL}validate",
        {
            "name": "draft",
            "rules": [
                {
                    "when": [
                        {"attr": "request.tokens", "op": "gt", "value": 5},
                        {"attr": "request.tokens", "op": "lt", "value": 2},
                    ],
                    "effect": {"type": "allow"},
                }
            ],
        },
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is False
    assert body["problems"][0]["code"] == "contradiction"
    good = security.post(f"{URL}validate/", {"name": "draft", "rules": DENY_SECRETS}, format="json")
    assert good.json() == {"valid": True, "problems": []}


def test_validate_judges_reach_against_the_tenants_policies(acme_admin, acme, globex):
    services.policy_create(
        tenant=globex, name="lock", priority=9, rules=[{"effect": {"type": "deny"}}]
    )
    services.policy_create(
        tenant=acme, name="lock", priority=9, rules=[{"effect": {"type": "deny"}}]
    )
    response = acme_admin.post(
        f"{URL}validate", {"tenant": "acme", "name": "d", "rules": DENY_SECRETS}, format="json"
    )
    problem = response.json()["problems"][0]
    assert problem["code"] == "unreachable" and "'lock'" in problem["message"]
    hidden = acme_admin.post(
        f"{URL}validate", {"tenant": "globex", "name": "d", "rules": DENY_SECRETS}, format="json"
    )
    assert hidden.status_code == 400 and "tenant" in hidden.json()


# --- simulate -------------------------------------------------------------------------------


def test_simulate_returns_the_decision_and_why(security, policies, acme, deployment_factory):
    deployment_factory(public_name="eu-model", region="eu-west-1")
    deployment_factory(public_name="us-model", region="us-east-1")
    response = security.post(
        f"{URL}simulate",
        {"tenant": "acme", "request": {"classification": "restricted", "entities": ["SECRET"]}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["outcome"] == "denied"
    assert (
        body["denied"]["policy"] == "global-guard" and body["denied"]["why"] == "Secrets stay home."
    )
    assert [m["policy"] for m in body["matched"]] == ["acme-eu", "global-guard"]
    allowed = security.post(
        f"{URL}simulate", {"tenant": "acme", "request": {"model": "eu-model"}}, format="json"
    ).json()
    assert allowed["outcome"] == "constrained"
    by_model = {d["model"]: d for d in allowed["deployments"]}
    assert by_model["eu-model"]["allowed"] is True
    assert by_model["us-model"]["reason"] == "policy 'acme-eu' allows regions eu only"


def test_simulate_with_a_draft_in_place_of_a_stored_policy(security, policies):
    response = security.post(
        f"{URL}simulate",
        {
            "tenant": "acme",
            "request": {"entities": ["SECRET"]},
            "policies": [{"name": "global-guard", "rules": DENY_SECRETS, "mode": "log_only"}],
        },
        format="json",
    )
    body = response.json()
    # The tenant's draft does not replace the global policy of the same name.
    assert body["outcome"] == "denied"
    assert [m["policy"] for m in body["logged"]] == ["global-guard"]


def test_simulate_rejects_bad_samples_and_hidden_tenants(acme_member, policies):
    bad = acme_member.post(
        f"{URL}simulate", {"tenant": "acme", "request": {"classification": "top"}}, format="json"
    )
    assert bad.status_code == 400 and "request" in bad.json()
    hidden = acme_member.post(f"{URL}simulate", {"tenant": "globex", "request": {}}, format="json")
    assert hidden.status_code == 400 and "tenant" in hidden.json()
    own = acme_member.post(f"{URL}simulate", {"tenant": "acme", "request": {}}, format="json")
    assert own.status_code == 200
    drafts = acme_member.post(
        f"{URL}simulate",
        {"tenant": "acme", "request": {}, "policies": [{"name": "x", "rules": []}]},
        format="json",
    )
    assert drafts.status_code == 403


# --- impact ----------------------------------------------------------------------------------


def _log(tenant, request_id, *, redactions=None, minutes=0, tokens=10, classification=""):
    return RequestLog.objects.create(
        request_id=request_id,
        created_at=timezone.now() - timedelta(minutes=minutes),
        endpoint="chat.completions",
        tenant=tenant,
        requested_model="gpt-4o",
        status="ok",
        http_status=200,
        input_tokens=tokens,
        cost_usd=Decimal("0.001"),
        redactions=redactions or {},
        classification=classification,
    )


def test_impact_replays_logged_requests_with_and_without_the_draft(security, acme, globex):
    _log(acme, "r-secret", redactions={"SECRET": 1}, minutes=1)
    _log(acme, "r-plain", minutes=2)
    _log(acme, "r-big", tokens=50_000, minutes=3)
    _log(globex, "r-globex", redactions={"SECRET": 2})
    draft = {
        "name": "draft",
        "rules": [
            *DENY_SECRETS,
            {
                "id": "big",
                "when": [{"attr": "request.tokens", "op": "gt", "value": 10000}],
                "effect": {"type": "cap_cost", "max_usd": 0.5},
            },
        ],
    }
    response = security.post(
        f"{URL}impact", {"tenant": "acme", "policy": draft, "last": 100}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["replayed"] == 3 and body["changed"] == 2
    assert body["before"] == {"allowed": 3, "constrained": 0, "denied": 0}
    assert body["after"] == {"allowed": 1, "constrained": 1, "denied": 1}
    changed = {r["request_id"]: r for r in body["requests"]}
    assert set(changed) == {"r-secret", "r-big"}
    assert changed["r-secret"]["after"]["outcome"] == "denied"
    assert changed["r-secret"]["after"]["policy"] == "draft"


def test_impact_replays_the_latest_n_and_a_global_draft_sees_every_tenant(security, acme, globex):
    for i in range(5):
        _log(acme, f"old-{i}", redactions={"SECRET": 1}, minutes=10 + i)
    _log(globex, "newest", redactions={"SECRET": 1})
    body = security.post(
        f"{URL}impact", {"policy": {"name": "g", "rules": DENY_SECRETS}, "last": 2}, format="json"
    ).json()
    assert body["replayed"] == 2
    assert [r["request_id"] for r in body["requests"]] == ["newest", "old-0"]


def test_impact_against_current_policies_reports_only_changes(security, policies, acme):
    _log(acme, "r1", redactions={"SECRET": 1})
    # The same rule as the stored global policy: nothing changes.
    body = security.post(
        f"{URL}impact",
        {"policy": {"name": "global-guard", "rules": DENY_SECRETS}, "last": 10},
        format="json",
    ).json()
    assert body["changed"] == 0 and body["after"]["denied"] == 1


def test_impact_needs_the_add_permission_and_a_valid_draft(acme_member, acme_admin, security):
    draft = {"name": "d", "rules": DENY_SECRETS}
    assert (
        acme_member.post(
            f"{URL}impact", {"tenant": "acme", "policy": draft}, format="json"
        ).status_code
        == 403
    )
    assert (
        acme_admin.post(
            f"{URL}impact", {"tenant": "acme", "policy": draft}, format="json"
        ).status_code
        == 200
    )
    assert acme_admin.post(f"{URL}impact", {"policy": draft}, format="json").status_code == 403
    bad = security.post(f"{URL}impact", {"policy": {"rules": "x"}}, format="json")
    assert bad.status_code == 400 and "policy" in bad.json()
    too_many = security.post(f"{URL}impact", {"policy": draft, "last": 10_001}, format="json")
    assert too_many.status_code == 400 and "last" in too_many.json()
