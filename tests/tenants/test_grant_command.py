"""`manage.py atp_grant`: audited grants, globally or on one tenant."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.tenants.models import Tenant

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("atp_grant", *args, stdout=out)
    return out.getvalue()


def test_a_per_tenant_grant_opens_that_tenant_and_is_audited(user_factory):
    acme = Tenant.objects.create(slug="acme", name="Acme")
    Tenant.objects.create(slug="globex", name="Globex")
    user = user_factory(username="ops")
    client = APIClient()
    client.force_login(user)
    assert client.get("/api/v1/tenants/").status_code == 403

    out = run("grant", "--user", "ops", "--tenant", "acme", "tenants.view_tenant")
    assert out.strip() == "granted on acme: tenants.view_tenant"
    assert [t["slug"] for t in client.get("/api/v1/tenants/").json()["results"]] == ["acme"]
    event = AuditEvent.objects.get(event_type="permission.granted")
    assert (event.tenant_id, event.resource_type, event.resource_id) == (
        acme.pk,
        "user",
        str(user.pk),
    )
    assert event.data["permission"] == "tenants.view_tenant" and event.actor == "cli:atp_grant"

    run("revoke", "--user", "ops", "--tenant", "acme", "tenants.view_tenant")
    assert client.get("/api/v1/tenants/").status_code == 403
    assert AuditEvent.objects.filter(event_type="permission.revoked").count() == 1


def test_a_global_grant_to_a_group(user_factory):
    user = user_factory(username="ops")
    run("grant", "--group", "readers", "tenants.view_tenant", "providers.view_provider")
    user.groups.add(Group.objects.get(name="readers"))
    client = APIClient()
    client.force_login(user)
    assert client.get("/api/v1/providers/").status_code == 200
    assert AuditEvent.objects.filter(event_type="permission.granted").count() == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("grant", "--user", "ops", "--tenant", "acme", "tenants.add_tenant"), "cannot be held"),
        (("grant", "--user", "ops", "tenants.fly"), "No permission"),
        (("grant", "--user", "nobody", "tenants.view_tenant"), "No user"),
        (("grant", "--user", "ops", "--tenant", "nope", "tenants.view_tenant"), "No tenant"),
        (("revoke", "--group", "nobody", "tenants.view_tenant"), "No group"),
        (("grant", "tenants.view_tenant"), "--user or --group"),
    ],
)
def test_mistakes_are_reported(user_factory, args, message):
    user_factory(username="ops")
    Tenant.objects.create(slug="acme", name="Acme")
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not AuditEvent.objects.filter(event_type__startswith="permission.").exists()


def test_list_marks_the_dedicated_permissions():
    out = run("list")
    assert "providers.change_provider_credentials" in out and "[dedicated]" in out
    assert "tenants.manage_tenant_keys" in out
