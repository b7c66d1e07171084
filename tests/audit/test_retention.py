"""Retention policies per tenant and classification, and the purge job."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent, RetentionPolicy
from apps.audit.retention import PolicyBook, retention_policy_save, retention_run
from apps.audit.services import PendingEvent, audit_append
from apps.audit.tasks import retention_run_task
from apps.audit.verify import verify_chain
from apps.routing.models import RequestLog
from apps.tenants.models import Tenant

pytestmark = pytest.mark.django_db


def policy(days: int, tenant=None, classification: str = "") -> RetentionPolicy:
    return retention_policy_save(
        policy=RetentionPolicy(
            tenant_id=tenant.id if tenant else None, classification=classification, days=days
        )
    )


def old_log(tenant, days_ago: int, request_id: str) -> None:
    RequestLog.objects.create(
        request_id=request_id,
        endpoint="chat.completions",
        tenant_id=tenant.id if tenant else None,
        status="success",
        http_status=200,
        cost_usd=Decimal(0),
        created_at=timezone.now() - timedelta(days=days_ago),
    )


def test_most_specific_policy_wins():
    acme = Tenant.objects.create(slug="acme", name="Acme")
    policy(1000)
    policy(500, classification="restricted")
    policy(400, tenant=acme)
    policy(370, tenant=acme, classification="restricted")
    book = PolicyBook(default_days=9999)
    assert book.days_for(acme.id, "restricted") == 370
    assert book.days_for(acme.id, "internal") == 400
    assert book.days_for(uuid.uuid4(), "restricted") == 500
    assert book.days_for(None, "internal") == 1000
    RetentionPolicy.objects.all().delete()
    assert PolicyBook(default_days=9999).days_for(acme.id, "internal") == 9999


def test_policy_changes_are_audited():
    created = policy(400)
    created.days = 600
    retention_policy_save(policy=created)
    types = list(AuditEvent.objects.values_list("event_type", flat=True))
    assert types == ["retention_policy.created", "retention_policy.updated"]
    assert AuditEvent.objects.last().after["days"] == 600


def test_retention_run_purges_request_logs_per_tenant(settings):
    settings.ATP_REQUEST_LOG_RETENTION_DAYS = 90
    acme = Tenant.objects.create(slug="acme", name="Acme")
    other = Tenant.objects.create(slug="other", name="Other")
    policy(10, tenant=acme, classification="requests")
    old_log(acme, 20, "acme-old")
    old_log(acme, 5, "acme-new")
    old_log(other, 20, "other-kept")
    old_log(other, 100, "other-old")
    old_log(None, 100, "no-tenant-old")
    report = retention_run()
    assert report.request_logs_purged == 3
    assert set(RequestLog.objects.values_list("request_id", flat=True)) == {
        "acme-new",
        "other-kept",
    }
    assert AuditEvent.objects.filter(event_type="retention.request_logs_purged").exists()


def test_retention_run_purges_the_expired_audit_prefix_and_keeps_the_chain(settings):
    settings.ATP_AUDIT_RETENTION_DAYS = 3650
    long_ago = timezone.now() - timedelta(days=400)
    audit_append(
        [
            PendingEvent(
                event_type="test.event",
                action="write",
                occurred_at=long_ago,
                classification="internal",
            )
            for _ in range(3)
        ]
    )
    policy(365, classification="internal")
    report = retention_run_task.apply().get()
    assert report["audit_events_purged"] == 3
    assert not AuditEvent.objects.filter(event_type="test.event").exists()
    assert verify_chain().ok
