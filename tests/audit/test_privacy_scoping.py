"""A data subject is a (tenant, id) pair: requests reach one tenant's records, and bodies
appear in an export only for holders of the body permission, each reveal audited."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from apps.audit.bodies import exchange_row
from apps.audit.models import AuditEvent, StoredExchange
from apps.audit.privacy import tombstone_for
from apps.routing.models import Feedback, RequestLog
from apps.tenants.models import Tenant

pytestmark = pytest.mark.django_db

EXPORT = "/api/v1/privacy/subjects/export/"
ERASE = "/api/v1/privacy/subjects/erase/"
SUBJECT = "42"


def _records(tenant: Tenant, request_id: str) -> None:
    RequestLog.objects.create(
        request_id=request_id,
        endpoint="chat.completions",
        tenant=tenant,
        end_user=SUBJECT,
        status=RequestLog.Status.SUCCESS,
        http_status=200,
        cost_usd=Decimal("0.01"),
    )
    Feedback.objects.create(request_id=request_id, tenant=tenant, score=0.5, comment="call me")
    row = exchange_row(
        {
            "request_id": request_id,
            "tenant_id": tenant.pk,
            "end_user": SUBJECT,
            "endpoint": "chat.completions",
            "created_at": timezone.now(),
        },
        {"messages": [{"role": "user", "content": f"secret prompt at {tenant.slug}"}]},
        {"choices": [{"message": {"content": "answer"}}]},
    )
    StoredExchange.objects.create(**row)


@pytest.fixture
def tenants(db) -> tuple[Tenant, Tenant]:
    acme = Tenant.objects.create(slug="acme", name="Acme")
    globex = Tenant.objects.create(slug="globex", name="Globex")
    _records(acme, "r-acme")
    _records(globex, "r-globex")
    return acme, globex


def _client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_erasing_a_subject_at_one_tenant_leaves_the_same_id_at_another(tenants, admin_user):
    acme, globex = tenants
    admin_client = _client(admin_user)
    resp = admin_client.post(ERASE, {"tenant": "acme", "subject": SUBJECT}, format="json")
    assert resp.status_code == 200, resp.content
    assert resp.json()["requests_anonymised"] == 1 and resp.json()["exchanges_deleted"] == 1

    assert RequestLog.objects.get(request_id="r-acme").end_user.startswith("erased:")
    assert not StoredExchange.objects.filter(tenant_id=acme.pk).exists()
    assert Feedback.objects.get(request_id="r-acme").comment == ""
    # Subject "42" of globex is another person.
    assert RequestLog.objects.get(request_id="r-globex").end_user == SUBJECT
    assert StoredExchange.objects.filter(tenant_id=globex.pk, end_user=SUBJECT).count() == 1
    assert Feedback.objects.get(request_id="r-globex").comment == "call me"
    event = AuditEvent.objects.get(event_type="privacy.subject_erased")
    assert event.tenant_id == acme.pk


def test_an_export_holds_only_the_named_tenants_records(tenants, admin_user):
    acme, _ = tenants
    admin_client = _client(admin_user)
    resp = admin_client.post(EXPORT, {"tenant": str(acme.pk), "subject": SUBJECT}, format="json")
    assert resp.status_code == 200
    document = resp.json()
    assert document["tenant"] == {"id": str(acme.pk), "slug": "acme"}
    assert [r["request_id"] for r in document["requests"]] == ["r-acme"]
    assert [e["request_id"] for e in document["exchanges"]] == ["r-acme"]
    assert [f["request_id"] for f in document["feedback"]] == ["r-acme"]
    assert "globex" not in json.dumps(document)


def test_without_the_body_permission_an_export_has_no_bodies(tenants, manager_client):
    resp = manager_client.post(EXPORT, {"tenant": "acme", "subject": SUBJECT}, format="json")
    assert resp.status_code == 200
    [exchange] = resp.json()["exchanges"]
    assert exchange["request_id"] == "r-acme"
    assert "request" not in exchange and "response" not in exchange
    assert "secret prompt" not in resp.content.decode()
    assert not AuditEvent.objects.filter(event_type="exchange.viewed").exists()
    exported = AuditEvent.objects.get(event_type="privacy.subject_exported")
    assert exported.data["bodies"] is False


def test_with_the_body_permission_each_revealed_body_is_audited(tenants, user_factory):
    acme, _ = tenants
    officer = user_factory(username="officer")
    assign_perm("tenants.export_tenant_subjects", officer, acme)
    assign_perm("tenants.view_tenant_bodies", officer, acme)
    resp = _client(officer).post(EXPORT, {"tenant": "acme", "subject": SUBJECT}, format="json")
    assert resp.status_code == 200
    [exchange] = resp.json()["exchanges"]
    assert exchange["request"]["messages"][0]["content"] == "secret prompt at acme"
    viewed = AuditEvent.objects.get(event_type="exchange.viewed")
    assert (viewed.actor, viewed.source, viewed.tenant_id) == ("officer", "api", acme.pk)
    assert viewed.resource_id == str(StoredExchange.objects.get(tenant_id=acme.pk).pk)


def test_a_tenant_outside_the_callers_reach_reads_as_one_that_does_not_exist(tenants, user_factory):
    acme, _ = tenants
    officer = user_factory(username="officer")
    assign_perm("tenants.export_tenant_subjects", officer, acme)
    client = _client(officer)
    elsewhere = client.post(EXPORT, {"tenant": "globex", "subject": SUBJECT}, format="json")
    missing = client.post(EXPORT, {"tenant": "nope", "subject": SUBJECT}, format="json")
    assert elsewhere.status_code == missing.status_code == 400
    assert elsewhere.json() == {"tenant": ["No tenant 'globex'."]}
    assert not AuditEvent.objects.filter(event_type="privacy.subject_exported").exists()


def test_a_tenant_the_caller_sees_but_may_not_export_is_a_403(tenants, user_factory):
    acme, _ = tenants
    officer = user_factory(username="officer")
    assign_perm("tenants.export_tenant_subjects", officer, acme)
    assign_perm("tenants.view_tenant", officer, Tenant.objects.get(slug="globex"))
    resp = _client(officer).post(EXPORT, {"tenant": "globex", "subject": SUBJECT}, format="json")
    assert resp.status_code == 403


def test_erasure_needs_its_own_permission(tenants, manager_user, manager_client, grant):
    acme, globex = tenants
    payload = {"tenant": "acme", "subject": SUBJECT}
    assert manager_client.post(ERASE, payload, format="json").status_code == 403
    assert RequestLog.objects.get(request_id="r-acme").end_user == SUBJECT
    grant(manager_user, "audit.erase_data_subject")
    assert manager_client.post(ERASE, payload, format="json").status_code == 200


def test_a_per_tenant_erasure_grant_reaches_that_tenant_only(tenants, user_factory):
    acme, _ = tenants
    officer = user_factory(username="officer")
    assign_perm("tenants.erase_tenant_subjects", officer, acme)
    client = _client(officer)
    resp = client.post(ERASE, {"tenant": "globex", "subject": SUBJECT}, format="json")
    assert resp.status_code == 400
    resp = client.post(ERASE, {"tenant": "acme", "subject": SUBJECT}, format="json")
    assert resp.status_code == 200
    assert RequestLog.objects.get(request_id="r-globex").end_user == SUBJECT


def test_the_tombstone_is_keyed_with_the_servers_secret(tenants, settings):
    acme, globex = tenants
    tombstone = tombstone_for(acme, SUBJECT)
    # Nobody can test a guessed id against it without the secret key.
    assert hashlib.sha256(SUBJECT.encode()).hexdigest()[:24] not in tombstone
    assert tombstone != tombstone_for(globex, SUBJECT)
    settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789"
    assert tombstone_for(acme, SUBJECT) != tombstone


def test_the_command_needs_the_tenant(tenants, capsys):
    with pytest.raises(CommandError, match="--tenant"):
        call_command("atp_subject", "erase", SUBJECT, "--yes")
    call_command("atp_subject", "erase", SUBJECT, "--tenant", "acme", "--yes")
    assert RequestLog.objects.get(request_id="r-globex").end_user == SUBJECT
    assert RequestLog.objects.get(request_id="r-acme").end_user != SUBJECT


def test_the_command_exports_bodies_each_reveal_audited(tenants, tmp_path):
    out = tmp_path / "subject.json"
    call_command("atp_subject", "export", SUBJECT, "--tenant", "acme", "-o", str(out))
    [exchange] = json.loads(out.read_text())["exchanges"]
    assert exchange["request"]["messages"][0]["content"] == "secret prompt at acme"
    viewed = AuditEvent.objects.get(event_type="exchange.viewed")
    assert viewed.actor == "cli:atp_subject"
    call_command(
        "atp_subject", "export", SUBJECT, "--tenant", "acme", "--no-bodies", "-o", str(out)
    )
    assert "request" not in json.loads(out.read_text())["exchanges"][0]
