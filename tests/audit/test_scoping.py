"""Per-tenant auditors: they read their tenants' events, reports and exports, nothing else."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Permission
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.audit.selectors import audit_event_scope, audit_tenant_ids
from apps.audit.services import audit_record
from apps.tenants.models import Tenant
from apps.tenants.services import admin_token_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def cast(user_factory):
    """Two tenants with an event each, one tenant-less event, and an auditor of acme."""
    acme = Tenant.objects.create(slug="acme", name="Acme")
    other = Tenant.objects.create(slug="other", name="Other")
    audit_record(event_type="test.acme", action="write", tenant_id=acme.pk)
    audit_record(event_type="test.other", action="write", tenant_id=other.pk)
    audit_record(event_type="test.global", action="write")
    auditor = user_factory(username="auditor")
    assign_perm("tenants.audit_tenant", auditor, acme)
    return acme, other, auditor


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def types(resp) -> set[str]:
    return {e["event_type"] for e in resp.json()["results"] if e["event_type"].startswith("test.")}


def test_scope_is_everything_for_permission_holders_and_internal_callers(
    cast, manager_user, staff_user
):
    acme, _, auditor = cast
    assert audit_tenant_ids(user=None) is None
    assert audit_tenant_ids(user=manager_user) is None
    assert audit_tenant_ids(user=auditor) == {acme.pk}
    assert audit_event_scope(user=manager_user).filter(event_type__startswith="test.").count() == 3
    # Being staff opens the Django admin, not the audit log.
    assert audit_tenant_ids(user=staff_user) == frozenset()
    assert not audit_event_scope(user=staff_user).exists()


def test_an_auditor_searches_only_their_tenants_events(cast):
    acme, other, auditor = cast
    client = client_for(auditor)
    assert types(client.get("/api/v1/audit/")) == {"test.acme"}
    other_event = AuditEvent.objects.get(event_type="test.other")
    assert client.get(f"/api/v1/audit/{other_event.sequence}/").status_code == 404
    # Filtering by another tenant reads as filtering by one that does not exist.
    other = client.get("/api/v1/audit/", {"tenant": "other"})
    missing = client.get("/api/v1/audit/", {"tenant": "nope"})
    assert other.status_code == missing.status_code == 400


def test_managers_search_everything_and_staff_nothing(cast, manager_client, staff_client):
    assert types(manager_client.get("/api/v1/audit/")) == {
        "test.acme",
        "test.other",
        "test.global",
    }
    assert staff_client.get("/api/v1/audit/").status_code == 403


def test_an_auditors_export_holds_only_their_tenants_events(cast):
    _, _, auditor = cast
    resp = client_for(auditor).get("/api/v1/audit/export/", {"format": "csv"})
    assert resp.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(resp.streaming_content).decode())))
    assert {r["event_type"] for r in rows if r["event_type"].startswith("test.")} == {"test.acme"}
    assert int(resp["X-ATP-Rows"]) == len(rows)


def test_an_auditors_report_must_name_one_of_their_tenants(cast):
    _, _, auditor = cast
    client = client_for(auditor)
    period = {"since": "2000-01-01", "until": "2100-01-01"}
    resp = client.get("/api/v1/audit/report/", period)
    assert resp.status_code == 400 and "tenant" in resp.json()
    # Another tenant reads as one that does not exist.
    resp = client.get("/api/v1/audit/report/", {**period, "tenant": "other"})
    assert resp.status_code == 400 and resp.json() == {"tenant": ["No tenant 'other'."]}
    resp = client.get("/api/v1/audit/report/", {**period, "tenant": "acme"})
    assert resp.status_code == 200 and resp.json()["tenant"]["slug"] == "acme"
    assert client.get("/api/v1/audit/verify/").json()["ok"] is True


def test_a_global_grant_reads_every_tenant(cast, user_factory):
    reader = user_factory(username="reader")
    reader.user_permissions.add(Permission.objects.get(codename="audit_tenant"))
    assert types(client_for(reader).get("/api/v1/audit/")) == {
        "test.acme",
        "test.other",
        "test.global",
    }


def test_users_without_a_grant_and_anonymous_callers_are_refused(cast, plain_user, api_client):
    assert api_client.get("/api/v1/audit/").status_code == 401
    assert api_client.get("/api/v1/audit/export/").status_code == 401
    client = client_for(plain_user)
    for path in ("/api/v1/audit/", "/api/v1/audit/export/", "/api/v1/audit/verify/"):
        assert client.get(path).status_code == 403
    # Privacy requests need a permission of their own.
    resp = client_for(cast[2]).post(
        "/api/v1/privacy/subjects/export/", {"subject": "x"}, format="json"
    )
    assert resp.status_code == 403


def test_an_admin_token_acts_as_its_user(cast):
    _, _, auditor = cast
    _, plaintext = admin_token_create(user=auditor, name="ci")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert types(client.get("/api/v1/audit/")) == {"test.acme"}
    client.get("/api/v1/audit/export/", {"format": "json"})
    exported = AuditEvent.objects.get(event_type="audit.exported")
    assert exported.actor == "auditor" and exported.user_id == str(auditor.pk)


def test_the_auditor_command_grants_and_revokes_audited(cast, user_factory):
    import io

    from django.core.management import call_command
    from django.core.management.base import CommandError

    acme, other, _ = cast
    newcomer = user_factory(username="newcomer")
    assert audit_tenant_ids(user=newcomer) == frozenset()

    out = io.StringIO()
    call_command("atp_auditor", "grant", "newcomer", "other", "--bodies", stdout=out)
    assert "tenants.view_tenant_bodies" in out.getvalue()
    assert audit_tenant_ids(user=newcomer) == {other.pk}
    assert newcomer.has_perm("tenants.view_tenant_bodies", other)

    call_command("atp_auditor", "revoke", "newcomer", "other", "--bodies", stdout=io.StringIO())
    newcomer = type(newcomer).objects.get(pk=newcomer.pk)  # fresh permission cache
    assert not newcomer.has_perm("tenants.view_tenant_bodies", other)
    assert audit_tenant_ids(user=newcomer) == {other.pk}
    call_command("atp_auditor", "revoke", "newcomer", "other", stdout=io.StringIO())
    assert audit_tenant_ids(user=newcomer) == frozenset()

    events = AuditEvent.objects.filter(event_type__startswith="auditor.").order_by("sequence")
    assert [(e.event_type, e.source, e.tenant_id) for e in events] == [
        ("auditor.granted", "cli", other.pk),
        ("auditor.revoked", "cli", other.pk),
        ("auditor.revoked", "cli", other.pk),
    ]
    with pytest.raises(CommandError):
        call_command("atp_auditor", "grant", "nobody", "acme")
    with pytest.raises(CommandError):
        call_command("atp_auditor", "grant", "newcomer", "no-such-tenant")


def test_the_exchange_admin_shows_metadata_never_bodies(admin_client):
    from apps.audit.bodies import exchange_row
    from apps.audit.models import StoredExchange

    exchange = StoredExchange.objects.create(
        **exchange_row({"request_id": "r-adm", "model": "m"}, {"q": "secret prompt"}, None)
    )
    listing = admin_client.get("/admin/audit/storedexchange/")
    assert listing.status_code == 200 and "r-adm" in listing.content.decode()
    page = admin_client.get(f"/admin/audit/storedexchange/{exchange.pk}/change/").content.decode()
    assert "r-adm" in page
    assert exchange.request_encrypted not in page and "secret prompt" not in page
    assert admin_client.get("/admin/audit/storedexchange/add/").status_code == 403
