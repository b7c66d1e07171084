"""The one entry point that decides who may do what (apps.tenants.permissions)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from guardian.shortcuts import assign_perm
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from apps.providers.models import Provider
from apps.tenants import permissions
from apps.tenants.api.permissions import ActionPermission
from apps.tenants.models import ApiKey, Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(api_key_factory, provider_factory):
    acme = Tenant.objects.create(slug="acme", name="Acme")
    globex = Tenant.objects.create(slug="globex", name="Globex")
    api_key_factory(tenant=acme, name="a")
    api_key_factory(tenant=globex, name="b")
    provider_factory()
    return acme, globex


def slugs(queryset) -> set[str]:
    return {k.tenant.slug for k in queryset}


def test_is_staff_opens_nothing(world, staff_user):
    assert not permissions.restrict(ApiKey.objects.all(), staff_user, "view").exists()
    assert not permissions.may(staff_user, Tenant, "view")


def test_a_global_permission_reaches_every_tenant(world, user_factory, grant):
    user = grant(user_factory(), "tenants.view_apikey")
    assert slugs(permissions.restrict(ApiKey.objects.all(), user, "view")) == {"acme", "globex"}
    assert not permissions.restrict(ApiKey.objects.all(), user, "revoke").exists()


def test_a_tenant_grant_reaches_that_tenant_for_the_actions_it_covers(world, user_factory):
    acme, globex = world
    user = user_factory()
    assign_perm(permissions.MANAGE_TENANT_KEYS, user, acme)
    for action in ("add", "change", "revoke", "rotate"):
        assert permissions.tenant_ids(user, ApiKey, action) == {acme.pk}
    assert slugs(permissions.restrict(ApiKey.objects.all(), user, "revoke")) == {"acme"}
    # Seeing keys is view_tenant's business; and providers are not tenant-scoped.
    assert permissions.tenant_ids(user, ApiKey, "view") == frozenset()
    assert not permissions.may(user, Provider, "view")
    assert permissions.may_for_tenant(user, ApiKey, "add", acme.pk)
    assert not permissions.may_for_tenant(user, ApiKey, "add", globex.pk)
    assert not permissions.may_for_tenant(user, ApiKey, "add", None)


def test_a_tenant_permission_held_globally_covers_every_tenant(world, user_factory, grant):
    user = grant(user_factory(), permissions.AUDIT_TENANT)
    assert permissions.tenant_ids(user, AuditEvent, "view") is None


def test_grants_through_a_group_count(world, user_factory):
    acme, _ = world
    user = user_factory()
    auditors = Group.objects.create(name="acme auditors")
    user.groups.add(auditors)
    assign_perm(permissions.AUDIT_TENANT, auditors, acme)
    audit_record(event_type="test.acme", action="write", tenant_id=acme.pk)
    audit_record(event_type="test.none", action="write")
    events = permissions.restrict(
        AuditEvent.objects.filter(event_type__startswith="test."), user, "export"
    )
    assert list(events.values_list("event_type", flat=True)) == ["test.acme"]


def test_superusers_internal_callers_and_nobody_else(world, admin_user, user_factory):
    assert permissions.tenant_ids(admin_user, ApiKey, "rotate") is None
    assert permissions.tenant_ids(None, ApiKey, "rotate") is None
    assert permissions.tenant_ids(AnonymousUser(), ApiKey, "view") == frozenset()
    admin_user.is_active = False
    assert permissions.tenant_ids(admin_user, ApiKey, "view") == frozenset()


def test_may_on_uses_the_objects_tenant(world, user_factory):
    acme, globex = world
    user = user_factory()
    assign_perm(permissions.CHANGE_TENANT, user, acme)
    assert permissions.may_on(user, acme, "change")
    assert not permissions.may_on(user, globex, "change")


def test_dedicated_permissions_are_in_no_ready_made_set():
    assert not permissions.DEDICATED & permissions.MANAGER_PERMISSIONS
    assert not permissions.DEDICATED & permissions.VIEWER_PERMISSIONS


class Undeclared(APIView):
    def get(self, request):
        from rest_framework.response import Response

        return Response({"ok": True})


def test_a_view_that_declares_no_permission_is_for_superusers_only(manager_user, admin_user):
    factory = APIRequestFactory()
    assert Undeclared.permission_classes == [ActionPermission]
    for user, status in ((manager_user, 403), (admin_user, 200)):
        request = factory.get("/")
        force_authenticate(request, user=user)
        assert Undeclared.as_view()(request).status_code == status
