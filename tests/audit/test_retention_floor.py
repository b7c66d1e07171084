"""Retention cannot erase the evidence: audit classifications have a floor, changing their
policies needs a dedicated permission, and every purge is audited with its count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from apps.audit.models import AuditEvent, RetentionPolicy
from apps.audit.retention import retention_policy_delete, retention_policy_save, retention_run
from apps.audit.services import PendingEvent, audit_append
from apps.audit.verify import verify_chain
from apps.tenants.models import Tenant

pytestmark = pytest.mark.django_db

URL = "/api/v1/retention-policies/"


def policy(classification: str, days: int, tenant: Tenant | None = None) -> RetentionPolicy:
    return RetentionPolicy(
        tenant_id=tenant.pk if tenant else None, classification=classification, days=days
    )


@pytest.mark.parametrize("classification", ["internal", "restricted", "confidential", ""])
def test_a_policy_below_the_floor_on_an_audit_classification_is_refused(classification):
    with pytest.raises(ValidationError) as exc:
        retention_policy_save(policy=policy(classification, 364))
    assert "365" in exc.value.message_dict["days"][0]
    assert not RetentionPolicy.objects.exists()
    retention_policy_save(policy=policy(classification, 365))


@pytest.mark.parametrize("classification", ["requests", "bodies"])
def test_request_logs_and_bodies_have_no_floor(classification):
    retention_policy_save(policy=policy(classification, 1))


def test_the_floor_is_a_setting(settings):
    settings.ATP_AUDIT_MIN_RETENTION_DAYS = 30
    retention_policy_save(policy=policy("internal", 30))
    with pytest.raises(ValidationError):
        retention_policy_save(policy=policy("restricted", 29))


def test_the_api_answers_400_naming_days(admin_client):
    resp = admin_client.post(
        URL, {"classification": "internal", "days": 1}, content_type="application/json"
    )
    assert resp.status_code == 400 and "days" in resp.json()


def test_the_purge_keeps_every_event_younger_than_the_floor(settings):
    settings.ATP_AUDIT_RETENTION_DAYS = 3650
    month_ago = timezone.now() - timedelta(days=30)
    audit_append(
        [
            # An event's own retention below the floor...
            PendingEvent(
                event_type="test.short", action="write", occurred_at=month_ago, retention_days=1
            ),
            PendingEvent(event_type="test.policy", action="write", occurred_at=month_ago),
        ]
    )
    # ...and a policy written before the floor existed.
    RetentionPolicy.objects.create(classification="internal", days=1)
    report = retention_run()
    assert report.audit_events_purged == 0
    assert AuditEvent.objects.filter(event_type__startswith="test.").count() == 2
    assert verify_chain().ok


def test_past_the_floor_the_policy_applies_again(settings):
    settings.ATP_AUDIT_RETENTION_DAYS = 3650
    long_ago = timezone.now() - timedelta(days=400)
    audit_append([PendingEvent(event_type="test.old", action="write", occurred_at=long_ago)])
    RetentionPolicy.objects.create(classification="internal", days=1)
    assert retention_run().audit_events_purged == 1
    assert not AuditEvent.objects.filter(event_type="test.old").exists()
    assert verify_chain().ok


def test_every_purge_is_audited_with_its_count_even_when_nothing_went():
    report = retention_run()
    assert (report.request_logs_purged, report.exchanges_purged, report.audit_events_purged) == (
        0,
        0,
        0,
    )
    events = {
        e.event_type: e.data for e in AuditEvent.objects.filter(event_type__startswith="retention.")
    }
    assert events["retention.request_logs_purged"] == {"purged": 0}
    assert events["retention.exchanges_purged"] == {"purged": 0}
    assert events["retention.audit_events_purged"]["purged"] == 0
    assert events["retention.audit_events_purged"]["min_retention_days"] == 365


# --- the dedicated permission ----------------------------------------------------------------


def test_changing_retention_of_audit_classifications_needs_the_permission(manager_user, grant):
    with pytest.raises(PermissionDenied):
        retention_policy_save(policy=policy("internal", 400), by=manager_user)
    requests = retention_policy_save(policy=policy("requests", 30), by=manager_user)
    # Turning a request-log policy into an audit one is changing audit retention too.
    requests.classification = "confidential"
    requests.days = 400
    with pytest.raises(PermissionDenied):
        retention_policy_save(policy=requests, by=manager_user)
    audit = retention_policy_save(policy=policy("internal", 400))  # an operator, from the CLI
    with pytest.raises(PermissionDenied):
        retention_policy_delete(policy=audit, by=manager_user)
    grant(manager_user, "audit.change_audit_retention")
    retention_policy_delete(policy=audit, by=manager_user)


def test_the_api_refuses_audit_classifications_without_the_permission(
    manager_client, manager_user, grant
):
    payload = {"classification": "internal", "days": 400}
    assert manager_client.post(URL, payload, format="json").status_code == 403
    assert manager_client.post(URL, {}, format="json").status_code == 400  # days is required
    assert manager_client.post(URL, {"days": 400}, format="json").status_code == 403  # blank
    grant(manager_user, "audit.change_audit_retention")
    assert manager_client.post(URL, payload, format="json").status_code == 201


def test_the_django_admin_shows_the_refusal_as_a_form_error(client, manager_user, grant):
    grant(manager_user, "audit.add_retentionpolicy", "audit.change_retentionpolicy")
    client.force_login(manager_user)
    resp = client.post(
        "/admin/audit/retentionpolicy/add/",
        {"tenant_id": "", "classification": "internal", "days": 400},
    )
    assert resp.status_code == 200 and "audit.change_audit_retention" in resp.content.decode()
    assert not RetentionPolicy.objects.exists()
    grant(manager_user, "audit.change_audit_retention")
    resp = client.post(
        "/admin/audit/retentionpolicy/add/",
        {"tenant_id": "", "classification": "internal", "days": 30},
    )
    assert resp.status_code == 200 and "at least 365 days" in resp.content.decode()
    resp = client.post(
        "/admin/audit/retentionpolicy/add/",
        {"tenant_id": "", "classification": "internal", "days": 400},
    )
    assert resp.status_code == 302 and RetentionPolicy.objects.get().days == 400
