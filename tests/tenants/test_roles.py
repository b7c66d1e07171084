"""The roles: the groups a migration makes, what each may do through apps.tenants.permissions,
and nothing more; dedicated permissions belong to none."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType

from apps.audit.models import AuditEvent, RetentionPolicy, StoredExchange
from apps.providers.models import ModelDeployment, Provider
from apps.routing.models import RequestLog, Route
from apps.tenants import permissions, roles
from apps.tenants.models import AdminToken, ApiKey, Tenant
from apps.tenants.services import api_key_create, tenant_create

pytestmark = pytest.mark.django_db

DOCS = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"

# Every management (model, action) pair, and the roles that may do it somewhere.
EVERYONE_BUT_AUDITOR = {
    roles.SUPER_ADMIN,
    roles.PLATFORM_ADMIN,
    roles.SECURITY_ADMIN,
    roles.COST_ADMIN,
    roles.READ_ONLY,
}
S, P, SEC, C, A, R = (
    roles.SUPER_ADMIN,
    roles.PLATFORM_ADMIN,
    roles.SECURITY_ADMIN,
    roles.COST_ADMIN,
    roles.AUDITOR,
    roles.READ_ONLY,
)
MAY: dict[tuple[type, str], set[str]] = {
    (Tenant, "view"): {S, P, SEC, C, R},
    (Tenant, "add"): {S, SEC},
    (Tenant, "change"): {S, SEC},
    (Tenant, "delete"): {S},
    (Tenant, "manage_members"): {S},
    (ApiKey, "view"): {S, P, SEC, C, R},
    (ApiKey, "add"): {S, SEC},
    (ApiKey, "change"): {S, SEC},
    (ApiKey, "revoke"): {S, SEC},
    (ApiKey, "rotate"): {S, SEC},
    (AdminToken, "view"): {S, SEC, R},  # one's own tokens
    (AdminToken, "add"): {S},
    (AdminToken, "revoke"): {S, SEC},
    (Provider, "view"): {S, P, C, R},
    (Provider, "add"): {S, P},
    (Provider, "change"): {S, P},
    (Provider, "delete"): {S, P},
    (ModelDeployment, "view"): {S, P, C, R},
    (ModelDeployment, "add"): {S, P},
    (ModelDeployment, "change"): {S, P},
    (ModelDeployment, "delete"): {S, P},
    (Route, "view"): {S, P, R},
    (Route, "add"): {S, P},
    (Route, "change"): {S, P},
    (Route, "delete"): {S, P},
    # tenants.view_tenant shows a tenant's requests too (TENANT_SCOPES).
    (RequestLog, "view"): {S, P, SEC, C, A, R},
    (AuditEvent, "view"): {S, SEC, A, R},
    (AuditEvent, "verify"): {S, SEC, A},
    (AuditEvent, "export"): {S, A},
    (AuditEvent, "report"): {S, A},
    (AuditEvent, "export_subject"): {S, A},
    (AuditEvent, "erase_subject"): set(),
    (StoredExchange, "view"): {S, A, R},
    (StoredExchange, "view_body"): set(),
    # tenants.view_tenant shows a tenant's retention policies (TENANT_SCOPES).
    (RetentionPolicy, "view"): {S, P, SEC, C, R},
    (RetentionPolicy, "add"): {S, SEC},
    (RetentionPolicy, "change"): {S, SEC},
    (RetentionPolicy, "delete"): {S, SEC},
    (get_user_model(), "view"): {S, R},
    (get_user_model(), "change"): {S},
}


def _user_in(role: str):
    user = get_user_model().objects.create_user(f"u-{role}")
    roles.user_roles_set(user=user, roles=[role], actor=None, source="cli")
    return get_user_model().objects.get(pk=user.pk)  # no stale permission cache


def _names(group: Group) -> set[str]:
    return {
        f"{app}.{codename}"
        for app, codename in group.permissions.values_list("content_type__app_label", "codename")
    }


def test_the_migration_makes_the_six_role_groups():
    assert set(Group.objects.values_list("name", flat=True)) >= set(roles.ROLE_NAMES)
    assert roles.ROLE_NAMES == (
        "super-admin",
        "platform-admin",
        "security-admin",
        "cost-admin",
        "auditor",
        "read-only",
    )


def _documented() -> dict[str, set[str]]:
    """The permission list of each role in docs/permissions.md (`### role` then a list)."""
    text = DOCS.read_text()
    section = text.split("## Roles", 1)[1]
    found: dict[str, set[str]] = {}
    for name in roles.ROLE_NAMES:
        block = re.search(
            rf"^#### `{re.escape(name)}`\n(.*?)(?=^#### |^## |\Z)", section, re.M | re.S
        )
        assert block, f"docs/permissions.md documents no role {name}"
        found[name] = set(re.findall(r"^- `([a-z_]+\.[a-z_]+)`", block.group(1), re.M))
    return found


def test_each_group_holds_exactly_the_documented_permissions():
    documented = _documented()
    for name in roles.ROLE_NAMES:
        held = _names(Group.objects.get(name=name))
        assert held == documented[name], (
            f"{name}: held but not documented {sorted(held - documented[name])}, "
            f"documented but not held {sorted(documented[name] - held)}"
        )


def test_no_role_holds_a_dedicated_permission():
    for name in roles.ROLE_NAMES:
        assert not _names(Group.objects.get(name=name)) & permissions.DEDICATED
    for granted in roles.TENANT_ROLES.values():
        assert not set(granted) & permissions.DEDICATED
    assert {"audit.view_exchange_body", "tenants.view_tenant_bodies"} <= permissions.DEDICATED


def test_a_declaration_naming_a_dedicated_permission_resolves_without_it():
    greedy = roles.Role("greedy", "Greedy", "", ("audit.*", "providers.*"))
    held = roles.role_permission_names(greedy, roles._all_permission_names())
    assert "audit.view_auditevent" in held
    assert not held & permissions.DEDICATED


def test_a_declaration_naming_a_missing_permission_is_an_error():
    with pytest.raises(LookupError):
        roles.role_permission_names(roles.Role("x", "X", "", ("tenants.fly",)), {"tenants.a"})


@pytest.mark.parametrize("role", roles.ROLE_NAMES)
def test_a_user_in_the_role_may_do_what_it_says_and_nothing_more(role):
    user = _user_in(role)
    wrong = []
    for (model, action), allowed in MAY.items():
        if permissions.may(user, model, action) != (role in allowed):
            wrong.append(f"{model.__name__}.{action}: expected {role in allowed}")
    assert not wrong, "\n".join(wrong)
    # Global roles hold everything on every tenant or nothing.
    tenant = tenant_create(slug="acme", name="Acme")
    api_key_create(tenant=tenant, name="k")
    for model, action in ((Tenant, "view"), (ApiKey, "view"), (AuditEvent, "view")):
        expected = None if role in MAY[(model, action)] else frozenset()
        assert permissions.tenant_ids(user, model, action) == expected
    keys = permissions.restrict(ApiKey.objects.all(), user, "view")
    assert keys.count() == (1 if role in MAY[(ApiKey, "view")] else 0)
    assert user.get_all_permissions() == roles.role_permissions(role)
    assert not user.get_all_permissions() & permissions.DEDICATED


def test_super_admin_assigns_roles_and_the_others_do_not():
    for name in roles.ROLE_NAMES:
        assert _user_in(name).has_perm(roles.ASSIGN_ROLES) == (name == roles.SUPER_ADMIN)


@pytest.mark.parametrize("role", roles.TENANT_ROLE_NAMES)
def test_a_tenant_role_holds_its_permissions_on_its_tenant_only(role):
    acme = tenant_create(slug="acme", name="Acme")
    globex = tenant_create(slug="globex", name="Globex")
    key_a, _ = api_key_create(tenant=acme, name="a")
    api_key_create(tenant=globex, name="b")
    user = get_user_model().objects.create_user("member")
    roles.tenant_role_set(user=user, tenant=acme, role=role, actor=None, source="cli")
    user = get_user_model().objects.get(pk=user.pk)
    admin = role == roles.TENANT_ADMIN
    assert permissions.tenant_ids(user, Tenant, "view") == {acme.pk}
    assert list(permissions.restrict(ApiKey.objects.all(), user)) == [key_a]
    assert permissions.may_on(user, key_a, "revoke") == admin
    assert permissions.may_on(user, acme, "change") == admin
    assert permissions.may_on(user, acme, "manage_members") == admin
    assert not permissions.may_on(user, globex, "view")
    assert not permissions.may_on(user, globex, "manage_members")
    assert permissions.may_for_tenant(user, AuditEvent, "view", acme.pk) == admin
    assert permissions.may_for_tenant(user, AuditEvent, "export_subject", acme.pk) == admin
    assert not permissions.may_for_tenant(user, AuditEvent, "erase_subject", acme.pk)
    assert not permissions.may_for_tenant(user, StoredExchange, "view_body", acme.pk)
    assert not permissions.may(user, Tenant, "add")
    assert not permissions.may(user, Tenant, "delete")
    assert not permissions.may(user, Provider, "view")
    assert not user.get_all_permissions()  # nothing global


def test_sync_gives_a_new_permission_to_the_roles_whose_patterns_match():
    content_type = ContentType.objects.get_for_model(Tenant)
    Permission.objects.create(content_type=content_type, codename="view_tenant_usage", name="x")
    costs_type, _ = ContentType.objects.get_or_create(app_label="costs", model="spendreport")
    Permission.objects.create(content_type=costs_type, codename="change_spendreport", name="x")
    Permission.objects.create(content_type=costs_type, codename="view_spendreport", name="x")
    roles.roles_sync()
    held = {name: _names(Group.objects.get(name=name)) for name in roles.ROLE_NAMES}
    assert "tenants.view_tenant_usage" in held[S] and "tenants.view_tenant_usage" in held[R]
    assert {"costs.change_spendreport", "costs.view_spendreport"} <= held[C]
    assert {"costs.change_spendreport", "costs.view_spendreport"} <= held[S]
    assert "costs.view_spendreport" in held[R] and "costs.change_spendreport" not in held[R]
    assert not {"costs.change_spendreport", "costs.view_spendreport"} & (
        held[P] | held[SEC] | held[A]
    )


def test_sync_restores_what_was_taken_and_removes_what_was_added_and_says_so():
    group = Group.objects.get(name=roles.AUDITOR)
    group.permissions.remove(Permission.objects.get(codename="verify_auditevent"))
    group.permissions.add(Permission.objects.get(codename="change_provider_credentials"))
    start = AuditEvent.objects.count()
    roles.roles_sync()
    assert _names(group) == roles.role_permissions(roles.AUDITOR)
    assert "audit.verify_auditevent" in _names(group)
    assert not _names(group) & permissions.DEDICATED
    events = AuditEvent.objects.filter(sequence__gt=start, event_type="role.permissions_changed")
    assert [e.data["role"] for e in events] == [roles.AUDITOR]
    roles.roles_sync()
    assert AuditEvent.objects.count() == start + 1  # nothing changed, nothing recorded


def test_sync_recreates_a_deleted_group():
    Group.objects.filter(name=roles.COST_ADMIN).delete()
    roles.roles_sync()
    assert _names(Group.objects.get(name=roles.COST_ADMIN)) == roles.role_permissions(C)


def test_migrate_syncs_the_roles_once_the_last_app_has_its_permissions():
    from django.apps import apps

    group = Group.objects.get(name=roles.AUDITOR)
    group.permissions.clear()
    configs = [c for c in apps.get_app_configs() if c.models_module is not None]
    roles.roles_sync_after_migrate(sender=apps.get_app_config("tenants"), using="default")
    assert not group.permissions.exists()  # costs and policies come later
    roles.roles_sync_after_migrate(sender=configs[-1], using="default")
    declared = roles.GLOBAL_ROLES[roles.AUDITOR]
    assert _names(group) == roles.role_permission_names(declared, roles._all_permission_names())
    assert "audit.verify_auditevent" in _names(group)
