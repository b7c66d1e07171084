"""Setting roles, tenant memberships and dedicated permissions: checked, audited once per
change, wherever the change is made (services, the Django admin, a shell)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied, ValidationError
from guardian.shortcuts import assign_perm, remove_perm

from apps.audit.models import AuditEvent
from apps.tenants import roles
from apps.tenants.services import permission_grant, tenant_create

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


@pytest.fixture
def root():
    return Users.objects.create_superuser("root")


def fresh(user):
    return Users.objects.get(pk=user.pk)


class Events:
    """The audit events recorded since it was made."""

    def __init__(self) -> None:
        last = AuditEvent.objects.order_by("-sequence").first()
        self.start = last.sequence if last else 0

    def __call__(self, *types: str) -> list[AuditEvent]:
        found = AuditEvent.objects.filter(sequence__gt=self.start)
        if types:
            found = found.filter(event_type__in=types)
        return list(found)


def member(role: str, name: str):
    user = Users.objects.create_user(name)
    roles.user_roles_set(user=user, roles=[role], actor=None, source="cli")
    return fresh(user)


# --- global roles --------------------------------------------------------------------------


def test_setting_roles_records_one_event_with_before_and_after(alice, root):
    events = Events()
    roles.user_roles_set(user=alice, roles=["auditor", "read-only"], actor=root, source="api")
    assert roles.user_roles(alice) == {"auditor", "read-only"}
    [event] = events()
    assert event.event_type == "user.roles_changed"
    assert event.before == {"groups": []}
    assert event.after == {"groups": ["auditor", "read-only"]}
    assert event.data["source"] == "api" and event.data["username"] == "alice"
    assert event.resource_id == str(alice.pk) and event.user_id == str(root.pk)

    events = Events()
    roles.user_roles_set(user=alice, roles=["cost-admin"], actor=root, source="console")
    [event] = events()
    assert event.before == {"groups": ["auditor", "read-only"]}
    assert event.after == {"groups": ["cost-admin"]}


def test_setting_the_same_roles_records_nothing(alice):
    roles.user_roles_set(user=alice, roles=["auditor"], actor=None, source="cli")
    events = Events()
    roles.user_roles_set(user=alice, roles=("auditor",), actor=None, source="oidc")
    assert events() == []


def test_groups_that_are_not_roles_stay(alice):
    managers = Group.objects.create(name="atp-managers")
    alice.groups.add(managers)
    roles.user_roles_set(user=alice, roles=["auditor"], actor=None, source="cli")
    roles.user_roles_set(user=alice, roles=[], actor=None, source="cli")
    assert list(alice.groups.values_list("name", flat=True)) == ["atp-managers"]


def test_an_unknown_role_or_source_is_refused(alice):
    with pytest.raises(ValidationError) as error:
        roles.user_roles_set(user=alice, roles=["god"], actor=None, source="cli")
    assert "roles" in error.value.message_dict
    with pytest.raises(ValidationError):
        roles.user_roles_set(user=alice, roles="auditor", actor=None, source="cli")
    with pytest.raises(ValueError):
        roles.user_roles_set(user=alice, roles=[], actor=None, source="web")


def test_a_super_admin_assigns_the_roles_below_but_not_super_admin(alice):
    boss = member("super-admin", "boss")
    roles.user_roles_set(user=alice, roles=["platform-admin", "auditor"], actor=boss, source="api")
    assert roles.user_roles(alice) == {"platform-admin", "auditor"}
    with pytest.raises(PermissionDenied):
        roles.user_roles_set(user=alice, roles=["super-admin"], actor=boss, source="api")
    with pytest.raises(PermissionDenied):  # nor take it away
        roles.user_roles_set(user=boss, roles=[], actor=boss, source="console")
    assert roles.user_roles(fresh(boss)) == {"super-admin"}


def test_nobody_gives_a_role_they_could_not_already_assign(alice):
    # Holding assign_roles is not enough: the role's permissions must be the assigner's own.
    security = member("security-admin", "sec")
    permission_grant(permission=roles.ASSIGN_ROLES, user=security)
    security = fresh(security)
    roles.user_roles_set(user=alice, roles=["security-admin"], actor=security, source="api")
    with pytest.raises(PermissionDenied, match="platform-admin"):
        roles.user_roles_set(user=alice, roles=["platform-admin"], actor=security, source="api")
    with pytest.raises(PermissionDenied):  # themselves neither
        roles.user_roles_set(
            user=security, roles=["security-admin", "auditor"], actor=security, source="api"
        )
    reader = member("read-only", "reader")
    with pytest.raises(PermissionDenied):
        roles.user_roles_set(user=alice, roles=["read-only"], actor=reader, source="console")


def test_superusers_give_super_admin_and_the_provider_and_operator_are_trusted(alice, root):
    roles.user_roles_set(user=alice, roles=["super-admin"], actor=root, source="console")
    roles.user_roles_set(user=alice, roles=["auditor"], actor=alice, source="oidc")
    assert roles.user_roles(alice) == {"auditor"}


def test_a_refused_change_changes_nothing_and_records_nothing(alice):
    reader = member("read-only", "reader")
    events = Events()
    with pytest.raises(PermissionDenied):
        roles.user_roles_set(user=alice, roles=["auditor"], actor=reader, source="api")
    assert roles.user_roles(alice) == set()
    assert events() == []


# --- tenant roles --------------------------------------------------------------------------


def test_a_tenant_role_is_set_changed_and_removed_with_one_event_each(alice, acme, root):
    events = Events()
    roles.tenant_role_set(user=alice, tenant=acme, role="tenant-member", actor=root, source="api")
    assert roles.user_memberships(alice) == {acme: "tenant-member"}
    roles.tenant_role_set(user=alice, tenant=acme, role="tenant-admin", actor=root, source="api")
    assert roles.tenant_members(acme) == [(alice, "tenant-admin")]
    roles.tenant_role_set(user=alice, tenant=acme, role="tenant-admin", actor=root, source="api")
    roles.tenant_role_set(user=alice, tenant=acme, role=None, actor=root, source="api")
    assert roles.user_memberships(alice) == {}
    recorded = events()
    assert [e.event_type for e in recorded] == ["user.tenant_role_changed"] * 3
    assert [(e.before["role"], e.after["role"]) for e in recorded] == [
        (None, "tenant-member"),
        ("tenant-member", "tenant-admin"),
        ("tenant-admin", None),
    ]
    assert {str(e.tenant_id) for e in recorded} == {str(acme.pk)}
    assert not fresh(alice).has_perm("tenants.view_tenant", acme)


def test_memberships_replace_every_tenant_role(alice, acme, globex):
    roles.tenant_memberships_set(
        user=alice,
        memberships={acme: "tenant-admin", globex: "tenant-member"},
        actor=None,
        source="oidc",
    )
    assert roles.user_memberships(alice) == {acme: "tenant-admin", globex: "tenant-member"}
    events = Events()
    roles.tenant_memberships_set(
        user=alice, memberships={globex: "tenant-member"}, actor=None, source="oidc"
    )
    assert roles.user_memberships(alice) == {globex: "tenant-member"}
    [event] = events()
    assert event.tenant_id == acme.pk and event.after == {"role": None}
    with pytest.raises(ValidationError):
        roles.tenant_memberships_set(
            user=alice, memberships={acme: "owner"}, actor=None, source="oidc"
        )


def test_a_dedicated_tenant_grant_survives_role_changes(alice, acme, root):
    roles.dedicated_permission_set(
        user=alice,
        permission="tenants.view_tenant_bodies",
        granted=True,
        actor=root,
        source="console",
        tenant=acme,
    )
    roles.tenant_role_set(user=alice, tenant=acme, role="tenant-admin", actor=None, source="cli")
    roles.tenant_role_set(user=alice, tenant=acme, role=None, actor=None, source="cli")
    assert fresh(alice).has_perm("tenants.view_tenant_bodies", acme)


def test_a_tenant_admin_manages_their_own_tenant_only(alice, acme, globex):
    admin = Users.objects.create_user("ta")
    roles.tenant_role_set(user=admin, tenant=acme, role="tenant-admin", actor=None, source="cli")
    admin = fresh(admin)
    roles.tenant_role_set(user=alice, tenant=acme, role="tenant-admin", actor=admin, source="api")
    with pytest.raises(PermissionDenied):
        roles.tenant_role_set(
            user=alice, tenant=globex, role="tenant-member", actor=admin, source="api"
        )
    # Replacing memberships may not touch a tenant the actor does not manage.
    roles.tenant_role_set(user=alice, tenant=globex, role="tenant-member", actor=None, source="cli")
    with pytest.raises(PermissionDenied):
        roles.tenant_memberships_set(user=alice, memberships={}, actor=admin, source="console")
    assert roles.user_memberships(alice) == {acme: "tenant-admin", globex: "tenant-member"}
    member_user = fresh(alice)
    with pytest.raises(PermissionDenied):  # a member does not manage members
        roles.tenant_role_set(
            user=admin, tenant=globex, role="tenant-member", actor=member_user, source="api"
        )


def test_user_list_is_narrowed_by_permission(alice, acme, globex):
    bob = Users.objects.create_user("bob")
    roles.tenant_role_set(user=alice, tenant=acme, role="tenant-member", actor=None, source="cli")
    roles.tenant_role_set(user=bob, tenant=globex, role="tenant-member", actor=None, source="cli")
    admin = Users.objects.create_user("ta")
    roles.tenant_role_set(user=admin, tenant=acme, role="tenant-admin", actor=None, source="cli")
    assert list(roles.user_list(fresh(admin))) == [alice, admin]
    reader = member("read-only", "reader")
    assert set(roles.user_list(reader)) == set(Users.objects.all())
    assert list(roles.user_list(fresh(alice))) == []


# --- dedicated permissions -----------------------------------------------------------------


def test_only_a_superuser_grants_a_dedicated_permission_and_each_grant_is_recorded(alice, root):
    boss = member("super-admin", "boss")
    with pytest.raises(PermissionDenied):
        roles.dedicated_permission_set(
            user=alice,
            permission="audit.erase_data_subject",
            granted=True,
            actor=boss,
            source="api",
        )
    events = Events()
    roles.dedicated_permission_set(
        user=alice, permission="audit.erase_data_subject", granted=True, actor=root, source="api"
    )
    roles.dedicated_permission_set(
        user=alice, permission="audit.erase_data_subject", granted=True, actor=root, source="api"
    )
    assert fresh(alice).has_perm("audit.erase_data_subject")
    roles.dedicated_permission_set(
        user=alice, permission="audit.erase_data_subject", granted=False, actor=None, source="cli"
    )
    assert not fresh(alice).has_perm("audit.erase_data_subject")
    assert [e.event_type for e in events()] == ["permission.granted", "permission.revoked"]
    with pytest.raises(ValidationError):
        roles.dedicated_permission_set(
            user=alice, permission="tenants.view_tenant", granted=True, actor=root, source="api"
        )


# --- changes made elsewhere ----------------------------------------------------------------


def test_group_changes_made_outside_the_services_are_recorded_once_each(alice):
    auditor = Group.objects.get(name="auditor")
    reader = Group.objects.get(name="read-only")
    events = Events()
    alice.groups.add(auditor)
    alice.groups.set([reader])  # one removal, one addition
    reader.user_set.remove(alice)
    alice.groups.add(auditor, reader)
    alice.groups.clear()
    recorded = events()
    assert [e.event_type for e in recorded] == ["user.roles_changed"] * 6
    assert [(e.before["groups"], e.after["groups"]) for e in recorded] == [
        ([], ["auditor"]),
        (["auditor"], []),
        ([], ["read-only"]),
        (["read-only"], []),
        ([], ["auditor", "read-only"]),
        (["auditor", "read-only"], []),
    ]


def test_permission_changes_made_outside_the_services_are_recorded_once_each(alice, acme):
    erase = Permission.objects.get(codename="erase_data_subject")
    events = Events()
    alice.user_permissions.add(erase)
    alice.user_permissions.remove(erase)
    assign_perm("tenants.view_tenant", alice, acme)
    remove_perm("tenants.view_tenant", alice, acme)
    recorded = events()
    assert [e.event_type for e in recorded] == [
        "permission.granted",
        "permission.revoked",
        "permission.granted",
        "permission.revoked",
    ]
    assert recorded[0].data["dedicated"] == ["audit.erase_data_subject"]
    assert recorded[2].tenant_id == acme.pk
    assert recorded[2].data["permission"] == "tenants.view_tenant"


def test_services_changes_are_recorded_once_not_again_by_the_receivers(alice, acme):
    events = Events()
    roles.user_roles_set(user=alice, roles=["auditor", "cost-admin"], actor=None, source="cli")
    roles.tenant_role_set(user=alice, tenant=acme, role="tenant-admin", actor=None, source="cli")
    permission_grant(permission="tenants.manage_tenant_keys", user=alice, tenant=acme)
    permission_grant(permission="audit.view_auditevent", user=alice)
    assert [e.event_type for e in events()] == [
        "user.roles_changed",
        "user.tenant_role_changed",
        "permission.granted",
        "permission.granted",
    ]


def test_a_change_in_the_django_admin_is_recorded_once_with_its_actor(client, root, alice):
    client.force_login(root)
    auditor = Group.objects.get(name="auditor")
    events = Events()
    response = client.post(
        f"/admin/auth/user/{alice.pk}/change/",
        {
            "username": "alice",
            "is_active": "on",
            "groups": [auditor.pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "initial-date_joined_0": "2026-01-01",
            "initial-date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    recorded = events("user.roles_changed")
    assert len(recorded) == 1
    assert recorded[0].after == {"groups": ["auditor"]}
    assert recorded[0].source == "admin" and recorded[0].user_id == str(root.pk)


def test_a_change_to_what_a_group_holds_made_elsewhere_is_recorded_once():
    auditor = Group.objects.get(name="auditor")
    verify = Permission.objects.get(codename="verify_auditevent")
    events = Events()
    auditor.permissions.remove(verify)
    [event] = events()
    assert event.event_type == "group.permissions_changed"
    assert "audit.verify_auditevent" in event.before["permissions"]
    assert "audit.verify_auditevent" not in event.after["permissions"]
    assert event.data == {"group": "auditor", "role": True}
    events = Events()
    roles.roles_sync()  # puts it back, recording that as the sync's own event only
    assert [e.event_type for e in events()] == ["role.permissions_changed"]
