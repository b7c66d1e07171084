"""Compliance reports: the figures, the period and tenant bounds, the formats and the API."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.audit.context import SYSTEM, AuditActor, acting_as
from apps.audit.models import AuditEvent
from apps.audit.reports import render_csv, render_json, render_pdf, report_build
from apps.audit.services import PendingEvent, audit_append, audit_record
from apps.routing.models import RequestLog

pytestmark = pytest.mark.django_db

REPORT = "/api/v1/audit/report/"
ALICE = AuditActor(user_id="7", actor="alice", source="console")
GATEWAY = AuditActor(actor="key:ci", source="data_plane")


@pytest.fixture
def period():
    now = timezone.now()
    return now - timedelta(days=1), now + timedelta(minutes=5)


@pytest.fixture
def acme(api_key_factory, tenant_factory, period):
    """A tenant with one of everything inside the period and noise outside it."""
    # Events without an explicit actor come from the system, whatever ran before.
    with acting_as(SYSTEM):
        return _populate(api_key_factory, tenant_factory, period)


def _populate(api_key_factory, tenant_factory, period):
    tenant = tenant_factory(slug="acme", name="Acme Corp")
    other = tenant_factory(slug="globex")
    key, _ = api_key_factory(tenant=tenant, name="ci-key")
    since, _ = period

    def gateway(outcome="success", classification="internal", data=None, tenant_id=tenant.pk):
        audit_record(
            event_type="gateway.request",
            action="chat.completions",
            outcome=outcome,
            tenant_id=tenant_id,
            classification=classification,
            data=data or {},
            actor=GATEWAY,
        )

    gateway(classification="confidential", data={"redactions": {"EMAIL": 2, "PHONE": 1}})
    gateway(classification="confidential", data={"redactions": {"EMAIL": 3}})
    gateway(classification="public")
    gateway(outcome="denied", data={"reason": "model not allowed"})
    gateway(outcome="denied", data={"reason": "model not allowed"})
    audit_record(
        event_type="policy.denied",
        action="evaluate",
        outcome="denied",
        tenant_id=tenant.pk,
        data={"policy": {"name": "no-pii-egress"}},
        actor=GATEWAY,
    )
    audit_record(event_type="budget.exceeded", action="reserve", tenant_id=tenant.pk)
    audit_record(
        event_type="api_key.updated",
        action="update",
        tenant_id=tenant.pk,
        resource_type="api_key",
        resource_id=str(key.pk),
        actor=ALICE,
    )
    audit_record(event_type="auth.login", action="login", tenant_id=tenant.pk, actor=ALICE)
    audit_record(
        event_type="auth.login_failed",
        action="login",
        outcome="failure",
        tenant_id=tenant.pk,
        actor=ALICE.but(actor="mallory", user_id=""),
    )
    # Other tenant, and before the period: none of these may count.
    gateway(classification="restricted", data={"redactions": {"SSN": 9}}, tenant_id=other.pk)
    audit_record(event_type="budget.exceeded", action="reserve", tenant_id=other.pk)
    audit_append(
        [
            PendingEvent(
                event_type="gateway.request",
                action="chat.completions",
                outcome="denied",
                tenant_id=tenant.pk,
                occurred_at=since - timedelta(hours=1),
                actor=GATEWAY,
            )
        ]
    )
    for status, tokens in (("success", 10), ("success", 20), ("error", 0)):
        RequestLog.objects.create(
            request_id=f"r-{status}-{tokens}",
            endpoint="chat.completions",
            tenant=tenant,
            api_key=key,
            status=status,
            http_status=200 if tokens else 502,
            input_tokens=tokens,
            output_tokens=tokens,
            cost_usd=Decimal("0.01"),
            end_user="user-42",
        )
    RequestLog.objects.create(
        request_id="r-other",
        endpoint="chat.completions",
        tenant=other,
        status="success",
        http_status=200,
    )
    RequestLog.objects.create(
        request_id="r-old",
        endpoint="chat.completions",
        tenant=tenant,
        status="success",
        http_status=200,
        created_at=since - timedelta(days=2),
    )
    return tenant


def test_report_figures_for_a_tenant_and_period(acme, period):
    since, until = period
    report = report_build(tenant=acme, since=since, until=until)
    assert report.tenant == {"id": str(acme.pk), "slug": "acme", "name": "Acme Corp"}
    assert report.requests_by_classification == {"internal": 2, "confidential": 2, "public": 1}
    assert report.requests_by_status == {"success": 2, "error": 1}
    assert report.policy_denials["count"] == 3
    assert report.policy_denials["top_reasons"][0] == {"reason": "model not allowed", "count": 2}
    assert {"reason": "no-pii-egress", "count": 1} in report.policy_denials["top_reasons"]
    assert report.redactions_by_entity == {"EMAIL": 5, "PHONE": 1}
    assert report.budget_events == {"count": 1, "by_type": {"budget.exceeded": 1}}
    changes = report.admin_changes
    assert changes["by_type"] == {"api_key.updated": 1}
    assert changes["latest"][0]["actor"] == "alice"
    assert changes["latest"][0]["resource"].startswith("api_key:")
    access = report.access
    assert (access["logins"], access["failed_logins"]) == (1, 1)
    assert {"user": "mallory", "logins": 0, "failed_logins": 1} in access["by_user"]
    assert access["api_usage"] == [
        {
            "api_key": "ci-key",
            "prefix": access["api_usage"][0]["prefix"],
            "requests": 3,
            "input_tokens": 30,
            "output_tokens": 30,
            "cost_usd": Decimal("0.03"),
        }
    ]
    assert access["end_users"] == [{"end_user": "user-42", "requests": 3}]
    head = AuditEvent.objects.order_by("sequence").last()
    assert report.verification["status"] == "ok"
    assert report.verification["head_hash"] == head.hash
    assert report.verification["head_signature"] == head.signature
    assert report.verification["head_key_id"] == head.key_id


def test_report_for_all_tenants_counts_both(acme, period):
    report = report_build(tenant=None, since=period[0], until=period[1])
    assert report.tenant is None
    assert report.redactions_by_entity == {"SSN": 9, "EMAIL": 5, "PHONE": 1}
    assert report.budget_events["count"] == 2
    assert report.requests_by_status == {"success": 3, "error": 1}


def test_report_shows_a_broken_chain(acme, period, tamper):
    with tamper():
        AuditEvent.objects.filter(event_type="budget.exceeded").update(action="edited")
    report = report_build(tenant=acme, since=period[0], until=period[1])
    assert report.verification["status"] == "broken"
    assert "modified" in report.verification["problem"]


def test_json_and_csv_renderings(acme, period):
    report = report_build(tenant=acme, since=period[0], until=period[1])
    data = json.loads(render_json(report))
    assert data["tenant"]["slug"] == "acme"
    assert data["verification"]["head_hash"] == report.verification["head_hash"]
    assert Decimal(data["access"]["api_usage"][0]["cost_usd"]) == Decimal("0.03")
    rows = list(csv.reader(io.StringIO(render_csv(report).decode())))
    titles = [r[0] for r in rows if r and r[0].startswith("# ")]
    assert "# Chain verification" in titles
    assert "# Redactions by entity type" in titles
    assert ["EMAIL", "5"] in rows
    assert ["head hash", report.verification["head_hash"]] in rows
    assert ["tenant", "Acme Corp (acme)"] in rows


def _pdf_text(pdf: bytes, tmp_path) -> str:
    if shutil.which("pdftotext"):
        path = tmp_path / "report.pdf"
        path.write_bytes(pdf)
        return subprocess.run(
            ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, text=True
        ).stdout
    pypdf = pytest.importorskip("pypdf", reason="neither pdftotext nor pypdf is available")
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def test_pdf_is_readable(acme, period, tmp_path):
    report = report_build(tenant=acme, since=period[0], until=period[1])
    pdf = render_pdf(report)
    assert pdf.startswith(b"%PDF")
    text = _pdf_text(pdf, tmp_path)
    assert "ATP compliance report" in text
    assert "Acme Corp" in text
    assert report.verification["head_hash"] in text
    assert "model not allowed" in text


@pytest.mark.parametrize("fmt", ["json", "csv", "pdf"])
def test_report_api_downloads_and_is_audited(token_client, acme, period, fmt, manager_user):
    since, until = period
    response = token_client.get(
        REPORT,
        {"tenant": "acme", "since": since.isoformat(), "until": until.isoformat(), "format": fmt},
    )
    assert response.status_code == 200, response.content
    assert response["Content-Disposition"].startswith('attachment; filename="atp-compliance-acme')
    assert response["Content-Disposition"].endswith(f'.{fmt}"')
    if fmt == "json":
        assert response.json()["requests_by_status"] == {"success": 2, "error": 1}
    elif fmt == "pdf":
        assert response.content.startswith(b"%PDF")
    else:
        assert b"# Policy denials (3)" in response.content
    event = AuditEvent.objects.get(event_type="audit.report_exported")
    assert event.tenant_id == acme.pk
    assert event.data["format"] == fmt
    assert event.actor == manager_user.username


def test_report_api_takes_dates_and_all_tenants(token_client, acme):
    today = timezone.now().date()
    response = token_client.get(REPORT, {"since": str(today), "until": str(today)})
    assert response.status_code == 200
    body = response.json()
    assert body["tenant"] is None
    # A date `until` covers that whole day.
    assert body["until"].startswith(str(today + timedelta(days=1)))
    assert body["budget_events"]["count"] == 2


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"tenant": "nope", "since": "2026-01-01", "until": "2026-02-01"}, "tenant"),
        ({"since": "soon", "until": "2026-02-01"}, "since"),
        ({"since": "2026-01-01"}, "until"),
        ({"since": "2026-03-01", "until": "2026-02-01"}, "until"),
        ({"since": "2026-01-01", "until": "2026-02-01", "format": "docx"}, "format"),
    ],
)
def test_report_api_rejects_bad_input(token_client, acme, params, field):
    response = token_client.get(REPORT, params)
    assert response.status_code == 400
    assert field in response.json()
    assert not AuditEvent.objects.filter(event_type="audit.report_exported").exists()


def test_report_api_needs_the_permission(api_client, staff_user):
    api_client.force_login(staff_user)
    assert api_client.get(REPORT, {"since": "2026-01-01", "until": "2026-02-01"}).status_code == 403


def test_command_writes_the_report(acme, tmp_path):
    today = timezone.now().date()
    out = tmp_path / "report.json"
    call_command(
        "audit_report",
        "--tenant",
        "acme",
        "--since",
        str(today),
        "--until",
        str(today),
        "--format",
        "json",
        "-o",
        str(out),
        stderr=io.StringIO(),
    )
    data = json.loads(out.read_bytes())
    assert data["tenant"]["name"] == "Acme Corp"
    assert data["policy_denials"]["count"] == 3
    event = AuditEvent.objects.get(event_type="audit.report_exported")
    assert event.source == "cli"
    pdf = tmp_path / "report.pdf"
    call_command(
        "audit_report",
        "--since",
        str(today),
        "--until",
        str(today),
        "--format",
        "pdf",
        "-o",
        str(pdf),
        stderr=io.StringIO(),
    )
    assert pdf.read_bytes().startswith(b"%PDF")
    with pytest.raises(CommandError, match="--tenant"):
        call_command(
            "audit_report",
            "--tenant",
            "nope",
            "--since",
            "2026-01-01",
            "--until",
            "2026-01-02",
            "-o",
            str(out),
        )
    with pytest.raises(CommandError, match="--since"):
        call_command("audit_report", "--since", "never", "--until", "2026-01-02", "-o", str(out))
