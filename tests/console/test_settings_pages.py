"""Console settings pages: admin tokens, users, global roles, tenant memberships and dedicated
permissions, each change through the audited role services and only what the viewer may."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.tenants import roles
from apps.tenants.models import AdminToken
from apps.tenants.permissions import ADD_ADMIN_TOKEN_FOR_OTHERS, ERASE_TENANT_SUBJECTS
from apps.tenants.services import admin_token_create, tenant_create

pytestmark = pytest.mark.django_db

SECRET = re.compile(r'<code id="secret-value" class="mono">([^<]+)</code>')
Users = get_user_model()


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def with_role(username: str, *names: str):
    user = Users.objects.create_user(username)
    roles.user_roles_set(user=user, roles=list(names), actor=None, source="cli")
    return user


def on_tenant(tenant, username: str, role: str):
    user = Users.objects.create_user(username)
    roles.tenant_role_set(user=user, tenant=tenant, role=role, actor=None, source="cli")
    return user


@pytest.fixture
def acme():
    return tenant_create(slug="acme", name="Acme")


@pytest.fixture
def globex():
    return tenant_create(slug="globex", name="Globex")


# --- admin tokens ---------------------------------------------------------------------------


def test_token_list_shows_only_my_own_tokens(admin_user):
    mine, _ = admin_token_create(user=admin_user, name="mine")
    other = Users.objects.create_user("other")
    theirs, _ = admin_token_create(user=other, name="theirs")
    response = signed_in(admin_user).get("/settings/tokens/")
    assert response.status_code == 200
    assert [t.name for t in response.context["page"].rows] == ["mine"]
    assert b"theirs" not in response.content
    # Somebody else's token cannot be revoked, even by its id.
    client = signed_in(admin_user)
    assert client.get(f"/settings/tokens/{theirs.pk}/revoke/").status_code == 404
    assert client.post(f"/settings/tokens/{theirs.pk}/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None and mine.revoked_at is None


def test_mint_my_own_token_shown_once_and_it_works_on_the_api(admin_user):
    client = signed_in(admin_user)
    form = client.get("/settings/tokens/add/")
    assert form.status_code == 200
    response = client.post("/settings/tokens/add/", {"name": "ci"})
    assert response.status_code == 201 and "no-store" in response["Cache-Control"]
    plaintext = SECRET.search(response.content.decode()).group(1)
    token = AdminToken.objects.get(name="ci")
    assert token.user == admin_user and plaintext.startswith(token.prefix)
    for session in Session.objects.all():
        assert plaintext not in str(session.get_decoded())
    assert plaintext not in client.get("/settings/tokens/").content.decode()
    assert AuditEvent.objects.filter(event_type="admin_token.created", resource_id=str(token.pk))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert api.get("/api/v1/tenants/").status_code == 200


def test_revoke_my_token_is_audited_and_it_stops_working(admin_user):
    token, plaintext = admin_token_create(user=admin_user, name="old")
    client = signed_in(admin_user)
    confirm = client.get(f"/settings/tokens/{token.pk}/revoke/", HTTP_HX_REQUEST="true")
    assert confirm.status_code == 200 and b"Revoke" in confirm.content
    response = client.post(f"/settings/tokens/{token.pk}/revoke/")
    assert response.status_code == 303
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(event_type="admin_token.revoked", resource_id=str(token.pk))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert api.get("/api/v1/tenants/").status_code == 401


def test_minting_for_someone_else_needs_the_dedicated_permission(grant):
    other = Users.objects.create_user("other")
    security = with_role("sec", roles.SUPER_ADMIN)
    client = signed_in(security)
    form = client.get("/settings/tokens/add/")
    assert "user" not in form.context["form"].fields  # not even offered
    client.post("/settings/tokens/add/", {"name": "for-other", "user": "other"})
    assert not AdminToken.objects.filter(user=other).exists()  # the field is ignored

    grant(security, ADD_ADMIN_TOKEN_FOR_OTHERS)
    security = Users.objects.get(pk=security.pk)
    client = signed_in(security)
    assert "user" in client.get("/settings/tokens/add/").context["form"].fields
    response = client.post("/settings/tokens/add/", {"name": "for-other", "user": "other"})
    assert response.status_code == 201
    assert AdminToken.objects.filter(user=other, name="for-other").exists()


def test_who_may_open_the_token_pages():
    plain = Users.objects.create_user("plain")
    client = signed_in(plain)
    assert client.get("/settings/tokens/").status_code == 200  # their own (none)
    assert client.get("/settings/tokens/add/").status_code == 403
    assert client.post("/settings/tokens/add/", {"name": "x"}).status_code == 403
    token, _ = admin_token_create(user=plain, name="given")
    # Revoking needs tenants.revoke_admintoken, as the management API does.
    assert client.post(f"/settings/tokens/{token.pk}/revoke/").status_code == 403
    assert Client().get("/settings/tokens/").status_code == 302
    assert Client().post("/settings/tokens/add/", {"name": "x"}).status_code == 401


def test_token_form_errors_next_to_fields(admin_user):
    response = signed_in(admin_user).post(
        "/settings/tokens/add/", {"name": "", "expires_at": "2001-01-01T00:00"}
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "name" in errors and "expires_at" in errors
    assert 'id="id_expires_at_error"' in response.content.decode()


# --- users and roles ------------------------------------------------------------------------


def test_user_list_shows_roles_and_memberships(admin_user, acme):
    with_role("alice", roles.AUDITOR)
    on_tenant(acme, "bob", roles.TENANT_ADMIN)
    response = signed_in(admin_user).get("/settings/users/")
    assert response.status_code == 200
    rows = {u.username: u for u in response.context["page"].rows}
    assert rows["alice"].role_names == [roles.AUDITOR]
    assert [(t.slug, r) for t, r in rows["bob"].tenant_roles] == [("acme", roles.TENANT_ADMIN)]
    assert b"acme: tenant-admin" in response.content
    found = signed_in(admin_user).get("/settings/users/?q=ali")
    assert [u.username for u in found.context["page"].rows] == ["alice"]


def test_who_may_see_users(acme, globex):
    member = on_tenant(acme, "member", roles.TENANT_MEMBER)
    tenant_admin = on_tenant(acme, "boss", roles.TENANT_ADMIN)
    outsider = on_tenant(globex, "outsider", roles.TENANT_MEMBER)
    assert signed_in(member).get("/settings/users/").status_code == 403
    assert signed_in(member).get(f"/settings/users/{tenant_admin.pk}/").status_code == 403
    # A tenant admin sees the members of their tenant, nobody else.
    client = signed_in(tenant_admin)
    listed = client.get("/settings/users/")
    assert {u.username for u in listed.context["page"].rows} == {"member", "boss"}
    assert client.get(f"/settings/users/{member.pk}/").status_code == 200
    assert client.get(f"/settings/users/{outsider.pk}/").status_code == 404
    assert client.get("/settings/users/999999/").status_code == 404
    read_only = signed_in(with_role("ro", roles.READ_ONLY))
    assert read_only.get(f"/settings/users/{outsider.pk}/").status_code == 200
    page = read_only.get(f"/settings/users/{outsider.pk}/")
    assert "roles_form" not in page.context and "dedicated_form" not in page.context


def test_assign_global_roles_is_audited(admin_user):
    alice = Users.objects.create_user("alice")
    client = signed_in(admin_user)
    page = client.get(f"/settings/users/{alice.pk}/")
    assert "roles_form" in page.context and "dedicated_form" in page.context
    response = client.post(
        f"/settings/users/{alice.pk}/roles/", {"roles": [roles.AUDITOR, roles.COST_ADMIN]}
    )
    assert response.status_code == 303
    assert roles.user_roles(alice) == {roles.AUDITOR, roles.COST_ADMIN}
    event = AuditEvent.objects.filter(
        event_type="user.roles_changed", resource_id=str(alice.pk)
    ).latest("sequence")
    assert event.data["source"] == "console"
    client.post(f"/settings/users/{alice.pk}/roles/", {"roles": [roles.AUDITOR]})
    assert roles.user_roles(alice) == {roles.AUDITOR}


def test_a_super_admin_assigns_only_what_they_may_and_keeps_the_rest(admin_user):
    boss = with_role("boss", roles.SUPER_ADMIN)
    target = with_role("target", roles.SUPER_ADMIN)  # only a superuser gives super-admin
    client = signed_in(boss)
    page = client.get(f"/settings/users/{target.pk}/roles/")
    offered = [name for name, _ in page.context["form"].fields["roles"].choices]
    assert roles.SUPER_ADMIN not in offered and roles.AUDITOR in offered
    response = client.post(f"/settings/users/{target.pk}/roles/", {"roles": [roles.AUDITOR]})
    assert response.status_code == 303
    assert roles.user_roles(target) == {roles.SUPER_ADMIN, roles.AUDITOR}
    # Asking for a role that is not offered is an error next to the field.
    response = client.post(f"/settings/users/{target.pk}/roles/", {"roles": [roles.SUPER_ADMIN]})
    assert response.status_code == 200 and "roles" in response.context["form"].errors
    assert 'id="id_roles_error"' in response.content.decode()


def test_without_assign_roles_the_roles_form_is_refused(acme):
    alice = Users.objects.create_user("alice")
    security = signed_in(with_role("sec", roles.SECURITY_ADMIN))
    assert security.get(f"/settings/users/{alice.pk}/roles/").status_code == 403
    assert (
        security.post(f"/settings/users/{alice.pk}/roles/", {"roles": [roles.AUDITOR]}).status_code
        == 403
    )
    assert roles.user_roles(alice) == set()


def test_tenant_admin_manages_members_of_their_tenant_only(acme, globex):
    boss = on_tenant(acme, "boss", roles.TENANT_ADMIN)
    member = on_tenant(acme, "member", roles.TENANT_MEMBER)
    newcomer = Users.objects.create_user("newcomer")
    client = signed_in(boss)
    # On the tenant's page, by username.
    page = client.get(f"/tenants/{acme.pk}/")
    assert "member_form" in page.context
    response = client.post(
        f"/tenants/{acme.pk}/members/",
        {"tenant": "acme", "username": "newcomer", "role": roles.TENANT_MEMBER},
    )
    assert response.status_code == 303
    assert roles.user_memberships(newcomer) == {acme: roles.TENANT_MEMBER}
    assert AuditEvent.objects.filter(
        event_type="user.tenant_role_changed", resource_id=str(newcomer.pk), tenant_id=acme.pk
    ).exists()
    # Unknown user: an error next to the field.
    response = client.post(
        f"/tenants/{acme.pk}/members/", {"tenant": "acme", "username": "ghost", "role": ""}
    )
    assert response.status_code == 200 and "username" in response.context["form"].errors
    # Another tenant: not found.
    assert (
        client.post(
            f"/tenants/{globex.pk}/members/",
            {"tenant": "globex", "username": "newcomer", "role": roles.TENANT_ADMIN},
        ).status_code
        == 404
    )
    # On the user's page: only tenants they manage are offered.
    response = client.post(
        f"/settings/users/{member.pk}/memberships/", {"tenant": "globex", "role": "tenant-admin"}
    )
    assert response.status_code == 200 and "tenant" in response.context["form"].errors
    assert roles.user_memberships(member) == {acme: roles.TENANT_MEMBER}
    response = client.post(
        f"/settings/users/{member.pk}/memberships/", {"tenant": "acme", "role": ""}
    )
    assert response.status_code == 303 and roles.user_memberships(member) == {}
    # A member may not manage members.
    other = signed_in(on_tenant(acme, "plain-member", roles.TENANT_MEMBER))
    assert (
        other.post(
            f"/tenants/{acme.pk}/members/",
            {"tenant": "acme", "username": "boss", "role": ""},
        ).status_code
        == 403
    )


def test_htmx_form_errors_swap_the_form_in_place(admin_user):
    alice = Users.objects.create_user("alice")
    response = signed_in(admin_user).post(
        f"/settings/users/{alice.pk}/memberships/",
        {"tenant": "nope", "role": "tenant-admin"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 422 and b"<html" not in response.content
    html = response.content.decode()
    assert 'id="membership-form"' in html and "field-error" in html


def test_dedicated_permissions_only_by_superusers_and_audited(admin_user, acme):
    alice = Users.objects.create_user("alice")
    boss = with_role("boss", roles.SUPER_ADMIN)
    refused = signed_in(boss)
    assert "dedicated_form" not in refused.get(f"/settings/users/{alice.pk}/").context
    assert (
        refused.post(
            f"/settings/users/{alice.pk}/permissions/",
            {"permission": ADD_ADMIN_TOKEN_FOR_OTHERS, "granted": "true"},
        ).status_code
        == 403
    )
    client = signed_in(admin_user)
    response = client.post(
        f"/settings/users/{alice.pk}/permissions/",
        {"permission": ADD_ADMIN_TOKEN_FOR_OTHERS, "granted": "true"},
    )
    assert response.status_code == 303
    alice = Users.objects.get(pk=alice.pk)
    assert alice.has_perm(ADD_ADMIN_TOKEN_FOR_OTHERS)
    granted = AuditEvent.objects.filter(event_type="permission.granted", resource_id=str(alice.pk))
    assert granted.filter(data__permission=ADD_ADMIN_TOKEN_FOR_OTHERS).exists()
    response = client.post(
        f"/settings/users/{alice.pk}/permissions/",
        {"permission": ERASE_TENANT_SUBJECTS, "tenant": "acme", "granted": "true"},
    )
    assert response.status_code == 303
    page = client.get(f"/settings/users/{alice.pk}/")
    assert (ERASE_TENANT_SUBJECTS, acme) in page.context["dedicated"]
    # A global-only permission on one tenant: an error next to the tenant field.
    response = client.post(
        f"/settings/users/{alice.pk}/permissions/",
        {"permission": ADD_ADMIN_TOKEN_FOR_OTHERS, "tenant": "acme", "granted": "true"},
    )
    assert response.status_code == 200 and "tenant" in response.context["form"].errors
    response = client.post(
        f"/settings/users/{alice.pk}/permissions/",
        {"permission": ADD_ADMIN_TOKEN_FOR_OTHERS, "granted": "false"},
    )
    assert response.status_code == 303
    assert not Users.objects.get(pk=alice.pk).has_perm(ADD_ADMIN_TOKEN_FOR_OTHERS)
    assert AuditEvent.objects.filter(
        event_type="permission.revoked", resource_id=str(alice.pk)
    ).exists()
    # Not a dedicated permission: not a valid choice.
    response = client.post(
        f"/settings/users/{alice.pk}/permissions/",
        {"permission": "tenants.view_tenant", "granted": "true"},
    )
    assert response.status_code == 200 and "permission" in response.context["form"].errors


def test_users_menu_entry_shows_for_those_who_may_open_it(acme):
    from atp_site.console.navigation import menu_for

    def labels(user) -> list[str]:
        return [item.label for _, items in menu_for(user) for item in items]

    assert "Users and roles" in labels(on_tenant(acme, "boss", roles.TENANT_ADMIN))
    assert "Users and roles" not in labels(on_tenant(acme, "member", roles.TENANT_MEMBER))
    assert "Users and roles" in labels(with_role("ro", roles.READ_ONLY))
    assert "Admin tokens" in labels(on_tenant(acme, "plain", roles.TENANT_MEMBER))
