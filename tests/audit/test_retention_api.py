"""The retention policies REST API: CRUD through the audited services, 400 naming the field."""

from __future__ import annotations

import uuid

import pytest

from apps.audit.models import AuditEvent, RetentionPolicy
from apps.tenants.models import Tenant

pytestmark = pytest.mark.django_db

URL = "/api/v1/retention-policies/"


@pytest.fixture
def acme(db) -> Tenant:
    return Tenant.objects.create(slug="acme", name="Acme")


def test_create_list_update_delete_are_audited(manager_client, acme):
    resp = manager_client.post(
        URL, {"tenant_id": str(acme.pk), "classification": "bodies", "days": 7}, format="json"
    )
    assert resp.status_code == 201, resp.json()
    pk = resp.json()["id"]
    payload = {"classification": "requests", "days": 365}
    assert manager_client.post(URL, payload, format="json").status_code == 201

    listed = manager_client.get(URL).json()["results"]
    assert {(p["tenant_id"], p["classification"], p["days"]) for p in listed} == {
        (str(acme.pk), "bodies", 7),
        (None, "requests", 365),
    }

    resp = manager_client.patch(f"{URL}{pk}/", {"days": 14}, format="json")
    assert resp.status_code == 200 and resp.json()["days"] == 14
    assert manager_client.delete(f"{URL}{pk}/").status_code == 204
    assert list(RetentionPolicy.objects.values_list("days", flat=True)) == [365]

    events = list(
        AuditEvent.objects.filter(resource_type="retention_policy").values_list(
            "event_type", "source"
        )
    )
    assert events == [
        ("retention_policy.created", "api"),
        ("retention_policy.created", "api"),
        ("retention_policy.updated", "api"),
        ("retention_policy.deleted", "api"),
    ]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"days": 0}, "days"),
        ({"days": "soon"}, "days"),
        ({}, "days"),
        ({"days": 5, "tenant_id": "nope"}, "tenant_id"),
        ({"days": 5, "tenant_id": str(uuid.uuid4())}, "tenant_id"),
        ({"days": 5, "classification": "x" * 40}, "classification"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(manager_client, payload, field):
    resp = manager_client.post(URL, payload, format="json")
    assert resp.status_code == 400 and field in resp.json(), resp.json()
    assert not RetentionPolicy.objects.exists()


def test_a_second_policy_for_the_same_scope_is_a_409(manager_client, acme):
    payload = {"tenant_id": str(acme.pk), "classification": "requests", "days": 30}
    assert manager_client.post(URL, payload, format="json").status_code == 201
    resp = manager_client.post(URL, {**payload, "days": 10}, format="json")
    assert resp.status_code == 409 and resp.json()["field"] == "classification"
    # The same for all tenants.
    payload = {"classification": "requests", "days": 30}
    assert manager_client.post(URL, payload, format="json").status_code == 201
    resp = manager_client.post(URL, {**payload, "classification": " requests "}, format="json")
    assert resp.status_code == 409 and resp.json()["field"] == "classification"


def test_only_permission_holders_manage_policies(api_client, plain_user):
    assert api_client.get(URL).status_code == 401
    api_client.force_login(plain_user)
    assert api_client.post(URL, {"days": 5}, format="json").status_code == 403
