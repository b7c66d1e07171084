"""Data-subject requests: export everything about a person, erase them from the log."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.audit.privacy import subject_erase, subject_export, tombstone_for
from apps.audit.verify import verify_chain
from apps.routing.models import RequestLog
from apps.tenants.models import Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(db) -> Tenant:
    return Tenant.objects.create(slug="acme", name="Acme")


def log(end_user: str, request_id: str, **fields) -> RequestLog:
    fields.setdefault("tenant", Tenant.objects.get_or_create(slug="acme", name="Acme")[0])
    return RequestLog.objects.create(
        request_id=request_id,
        endpoint="chat.completions",
        end_user=end_user,
        status="success",
        http_status=200,
        input_tokens=10,
        output_tokens=5,
        cost_usd=Decimal("0.0001"),
        created_at=timezone.now(),
        **fields,
    )


def test_export_lists_the_subjects_requests_and_is_audited(acme):
    log("user-42", "r1")
    log("user-42", "r2", error_message="mentions user-42")
    log("someone-else", "r3")
    document = subject_export(tenant=acme, subject="user-42")
    assert [r["request_id"] for r in document["requests"]] == ["r1", "r2"]
    json.dumps(document, default=str)  # JSON-ready
    event = AuditEvent.objects.get(event_type="privacy.subject_exported")
    assert event.data == {
        "requests": 2,
        "exchanges": 0,
        "bodies": False,
        "feedback": 0,
        "audit_events": 0,
    }
    assert "user-42" not in json.dumps(event.data)
    assert event.resource_id == tombstone_for(acme, "user-42") and event.tenant_id == acme.pk


def test_erase_replaces_the_subject_with_a_tombstone_and_keeps_accounting(acme):
    log("user-42", "r1", error_message="user-42 said something")
    log("someone-else", "r2")
    result = subject_erase(tenant=acme, subject="user-42")
    assert result["requests_anonymised"] == 1
    row = RequestLog.objects.get(request_id="r1")
    assert row.end_user == result["tombstone"] and row.error_message == ""
    assert row.cost_usd == Decimal("0.0001") and row.input_tokens == 10
    assert RequestLog.objects.get(request_id="r2").end_user == "someone-else"
    assert subject_export(tenant=acme, subject="user-42")["requests"] == []
    event = AuditEvent.objects.get(event_type="privacy.subject_erased")
    assert event.resource_id == result["tombstone"] and "user-42" not in str(event.data)
    assert verify_chain().ok


def test_command_exports_and_erases_with_confirmation(acme, tmp_path):
    log("user-7", "r1")
    out = tmp_path / "export.json"
    call_command("atp_subject", "export", "user-7", "--tenant", "acme", "-o", str(out))
    assert json.loads(out.read_text())["requests"][0]["request_id"] == "r1"
    with pytest.raises(CommandError, match="--yes"):
        call_command("atp_subject", "erase", "user-7", "--tenant", "acme")
    with pytest.raises(CommandError, match="No tenant"):
        call_command("atp_subject", "erase", "user-7", "--tenant", "nope", "--yes")
    stdout = io.StringIO()
    call_command("atp_subject", "erase", "user-7", "--tenant", str(acme.pk), "--yes", stdout=stdout)
    assert "erased at acme: 1 requests" in stdout.getvalue()
    assert AuditEvent.objects.get(event_type="privacy.subject_erased").actor == "cli:atp_subject"


def test_api_export_and_erase(acme, admin_client, admin_user):
    log("user-9", "r1")
    subject = {"tenant": "acme", "subject": "user-9"}
    resp = admin_client.post(
        "/api/v1/privacy/subjects/export/", subject, content_type="application/json"
    )
    assert resp.status_code == 200 and resp.json()["requests"][0]["request_id"] == "r1"
    resp = admin_client.post(
        "/api/v1/privacy/subjects/erase/", subject, content_type="application/json"
    )
    assert resp.status_code == 200 and resp.json()["requests_anonymised"] == 1
    event = AuditEvent.objects.get(event_type="privacy.subject_erased")
    assert event.actor == admin_user.get_username() and event.source == "api"


def test_api_names_the_missing_field(admin_client):
    resp = admin_client.post("/api/v1/privacy/subjects/erase/", {}, content_type="application/json")
    assert resp.status_code == 400 and {"tenant", "subject"} <= set(resp.json())


def test_api_needs_a_permission(client, staff_user):
    payload = {"tenant": "acme", "subject": "x"}
    url = "/api/v1/privacy/subjects/export/"
    assert client.post(url, payload, content_type="application/json").status_code == 401
    client.force_login(staff_user)
    assert client.post(url, payload, content_type="application/json").status_code == 403


def test_feedback_comments_are_exported_and_erased_with_the_subject(tenant_factory):
    from apps.routing.models import Feedback

    tenant = tenant_factory()
    other = tenant_factory()
    log("user-42", "r1", tenant=tenant)
    log("someone-else", "r2", tenant=tenant)
    Feedback.objects.create(request_id="r1", tenant=tenant, score=0.2, comment="call me at 555")
    Feedback.objects.create(request_id="r2", tenant=tenant, score=0.9, comment="fine")
    # The same request id in another tenant is another request.
    Feedback.objects.create(request_id="r1", tenant=other, score=0.5, comment="not theirs")
    document = subject_export(tenant=tenant, subject="user-42")
    assert [(f["request_id"], f["comment"]) for f in document["feedback"]] == [
        ("r1", "call me at 555")
    ]
    result = subject_erase(tenant=tenant, subject="user-42")
    assert result["feedback_comments_erased"] == 1
    kept = Feedback.objects.get(request_id="r1", tenant=tenant)
    assert kept.comment == "" and kept.score == 0.2  # the score still teaches the router
    assert Feedback.objects.get(request_id="r2").comment == "fine"
    assert Feedback.objects.get(request_id="r1", tenant=other).comment == "not theirs"
