"""The users, roles and members endpoints of the management API: who may read and change
what, the errors, and the audit events they leave."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.tenants import roles
from apps.tenants.services import admin_token_create, tenant_create

pytestmark = pytest.mark.django_db

Users = get_user_model()


@pytest.fixture
def acme():
    return tenant_create(slug="acme", name="Acme")


@pytest.fixture
def globex():
    return tenant_create(slug="globex", name="Globex")


@pytest.fixture
def alice():
    return Users.objects.create_user("alice")


def in_role(name: str, role: str):
    user = Users.objects.create_user(name)
    roles.user_roles_set(user=user, roles=[role], actor=None, source="cli")
    return user


def tenant_admin(name: str, tenant):
    user = Users.objects.create_user(name)
    roles.tenant_role_set(user=user, tenant=tenant, role="tenant-admin", actor=None, source="cli")
    return user


def session(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def by_token(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_token_create(user=user, name='t')[1]}")
    return client


def test_users_are_listed_with_their_roles_and_memberships(alice, acme):
    roles.user_roles_set(user=alice, roles=["auditor"], actor=None, source="cli")
    roles.tenant_role_set(user=alice, tenant=acme, role="tenant-member", actor=None, source="cli")
    reader = in_role("reader", "read-only")
    response = by_token(reader).get("/api/v1/users/", {"search": "alice"})
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["roles"] == ["auditor"]
    assert row["memberships"] == [
        {"tenant": {"id": str(acme.pk), "slug": "acme", "name": "Acme"}, "role": "tenant-member"}
    ]
    assert "password" not in row
    detail = session(reader).get(f"/api/v1/users/{alice.pk}/")
    assert detail.status_code == 200 and detail.json() == row


def test_reading_users_needs_view_user(alice, acme):
    assert APIClient().get("/api/v1/users/").status_code == 401
    assert session(alice).get("/api/v1/users/").status_code == 403
    assert session(tenant_admin("ta", acme)).get(f"/api/v1/users/{alice.pk}/").status_code == 403
    assert session(in_role("aud", "auditor")).get("/api/v1/users/").status_code == 403


def test_a_super_admin_sets_roles_below_super_admin(alice):
    boss = in_role("boss", "super-admin")
    client = by_token(boss)
    response = client.put(
        f"/api/v1/users/{alice.pk}/roles/", {"roles": ["platform-admin", "auditor"]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["roles"] == ["auditor", "platform-admin"]
    [event] = AuditEvent.objects.filter(event_type="user.roles_changed", resource_id=str(alice.pk))
    assert event.data["source"] == "api" and event.user_id == str(boss.pk)
    refused = client.put(
        f"/api/v1/users/{alice.pk}/roles/", {"roles": ["super-admin"]}, format="json"
    )
    assert refused.status_code == 403
    assert roles.user_roles(alice) == {"auditor", "platform-admin"}


def test_only_a_superuser_gives_super_admin(alice):
    root = Users.objects.create_superuser("root")
    response = session(root).put(
        f"/api/v1/users/{alice.pk}/roles/", {"roles": ["super-admin"]}, format="json"
    )
    assert response.status_code == 200
    assert roles.user_roles(alice) == {"super-admin"}


def test_roles_need_assign_roles_and_bad_input_names_the_field(alice):
    reader = in_role("reader", "read-only")
    put = session(reader).put(f"/api/v1/users/{alice.pk}/roles/", {"roles": []}, format="json")
    assert put.status_code == 403
    boss = session(in_role("boss", "super-admin"))
    for body in ({"roles": ["owner"]}, {"roles": "auditor"}, {}, {"roles": [None]}):
        response = boss.put(f"/api/v1/users/{alice.pk}/roles/", body, format="json")
        assert response.status_code == 400 and "roles" in response.json(), body
    assert boss.put("/api/v1/users/999999/roles/", {"roles": []}, format="json").status_code == 404
    assert boss.put("/api/v1/users/x/roles/", {"roles": []}, format="json").status_code == 404
    assert boss.post(f"/api/v1/users/{alice.pk}/roles/", {}, format="json").status_code == 405


def test_memberships_are_replaced_on_the_tenants_the_caller_manages(alice, acme, globex):
    roles.tenant_role_set(user=alice, tenant=globex, role="tenant-member", actor=None, source="cli")
    boss = session(in_role("boss", "super-admin"))
    url = f"/api/v1/users/{alice.pk}/memberships/"
    body = {"memberships": [{"tenant": "acme", "role": "tenant-admin"}]}
    response = boss.put(url, body, format="json")
    assert response.status_code == 200, response.content
    assert [(m["tenant"]["slug"], m["role"]) for m in response.json()["memberships"]] == [
        ("acme", "tenant-admin")
    ]
    events = AuditEvent.objects.filter(event_type="user.tenant_role_changed")
    assert {(str(e.tenant_id), e.after["role"]) for e in events} >= {
        (str(acme.pk), "tenant-admin"),
        (str(globex.pk), None),
    }
    for bad in (
        {"memberships": [{"tenant": "nowhere", "role": "tenant-admin"}]},
        {"memberships": [{"tenant": "acme", "role": "owner"}]},
        {"memberships": [{"tenant": "acme", "role": "tenant-admin"}] * 2},
        {"memberships": "acme"},
    ):
        assert boss.put(url, bad, format="json").status_code == 400, bad
        assert "memberships" in boss.put(url, bad, format="json").json()


def test_without_managing_members_anywhere_memberships_are_refused(alice, acme):
    reader = session(in_role("reader", "read-only"))
    body = {"memberships": [{"tenant": "acme", "role": "tenant-admin"}]}
    assert (
        reader.put(f"/api/v1/users/{alice.pk}/memberships/", body, format="json").status_code == 403
    )


def test_a_tenant_admin_manages_their_tenants_members(alice, acme, globex):
    admin = tenant_admin("ta", acme)
    client = by_token(admin)
    url = f"/api/v1/tenants/{acme.pk}/members/"
    assert client.get(url).json() == {
        "members": [{"user": {"id": admin.pk, "username": "ta"}, "role": "tenant-admin"}]
    }
    body = {
        "members": [
            {"user": "ta", "role": "tenant-admin"},
            {"user": "alice", "role": "tenant-member"},
        ]
    }
    response = client.put(url, body, format="json")
    assert response.status_code == 200
    assert roles.tenant_members(acme) == [(alice, "tenant-member"), (admin, "tenant-admin")]
    response = client.put(
        url, {"members": [{"user": str(admin.pk), "role": "tenant-admin"}]}, format="json"
    )
    assert response.status_code == 200
    assert roles.tenant_members(acme) == [(admin, "tenant-admin")]
    # Another tenant is not found; an unknown user or a repeated one is a 400 naming the field.
    assert client.get(f"/api/v1/tenants/{globex.pk}/members/").status_code == 404
    assert (
        client.put(f"/api/v1/tenants/{globex.pk}/members/", body, format="json").status_code == 404
    )
    for bad in (
        {"members": [{"user": "nobody", "role": "tenant-member"}]},
        {"members": [{"user": "alice", "role": "tenant-member"}] * 2},
        {"members": [{"user": "alice", "role": "admin"}]},
    ):
        response = client.put(url, bad, format="json")
        assert response.status_code == 400 and "members" in response.json(), bad


def test_members_and_readers_do_not_manage_members(alice, acme):
    roles.tenant_role_set(user=alice, tenant=acme, role="tenant-member", actor=None, source="cli")
    url = f"/api/v1/tenants/{acme.pk}/members/"
    assert session(alice).get(url).status_code == 403
    assert session(in_role("reader", "read-only")).get(url).status_code == 403
    assert APIClient().get(url).status_code == 401
