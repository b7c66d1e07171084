"""Retention: which policy covers a record, and the periodic purge of what has expired."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.audit.models import RetentionPolicy
from apps.audit.services import audit_purge_expired, audit_record

REQUESTS = "requests"  # the classification request logs are kept under


class PolicyBook:
    """All retention policies, loaded once, answering 'how many days' for a record."""

    def __init__(self, default_days: int) -> None:
        self.default_days = default_days
        self._days = {
            (str(p.tenant_id) if p.tenant_id else None, p.classification): p.days
            for p in RetentionPolicy.objects.all()
        }

    def days_for(self, tenant_id: uuid.UUID | str | None, classification: str) -> int:
        tenant = str(tenant_id) if tenant_id else None
        keys = [(tenant, classification), (tenant, "")] if tenant else []
        keys += [(None, classification), (None, "")]
        for key in keys:
            days = self._days.get(key)
            if days is not None:
                return days
        return self.default_days

    def tenants_with_own_policy(self, classification: str) -> dict[str, int]:
        return {
            tenant: self.days_for(tenant, classification)
            for tenant, _ in self._days
            if tenant is not None
        }


@transaction.atomic
def retention_policy_save(*, policy: RetentionPolicy) -> RetentionPolicy:
    """Create or change a policy; the change is audited with before and after."""
    from apps.audit.snapshots import audit_change, snapshot_of, stored_snapshot

    before = stored_snapshot(policy) if policy.pk else None
    policy.full_clean()
    policy.save()
    audit_change(
        event_type="retention_policy.updated" if before else "retention_policy.created",
        resource_id=policy.pk,
        tenant_id=policy.tenant_id,
        before=before,
        after=snapshot_of(policy),
    )
    return policy


@transaction.atomic
def retention_policy_delete(*, policy: RetentionPolicy) -> None:
    from apps.audit.snapshots import audit_change, snapshot_of

    before, pk, tenant_id = snapshot_of(policy), policy.pk, policy.tenant_id
    policy.delete()
    audit_change(
        event_type="retention_policy.deleted", resource_id=pk, tenant_id=tenant_id, before=before
    )


@dataclass(frozen=True, slots=True)
class RetentionReport:
    request_logs_purged: int
    audit_events_purged: int


def request_logs_purge_expired(*, now: datetime, book: PolicyBook) -> int:
    """Delete request logs past their tenant's retention for the 'requests' class."""
    from apps.routing.models import RequestLog

    purged = 0
    special = book.tenants_with_own_policy(REQUESTS)
    for tenant, days in special.items():
        count, _ = RequestLog.objects.filter(
            tenant_id=tenant, created_at__lt=now - timedelta(days=days)
        ).delete()
        purged += count
    everyone_else = RequestLog.objects.exclude(tenant_id__in=list(special)).filter(
        created_at__lt=now - timedelta(days=book.days_for(None, REQUESTS))
    )
    count, _ = everyone_else.delete()
    return purged + count


def retention_run(*, now: datetime | None = None) -> RetentionReport:
    """Purge expired request logs and the expired prefix of the audit chain (audited)."""
    now = now or timezone.now()
    with transaction.atomic():
        book = PolicyBook(settings.ATP_REQUEST_LOG_RETENTION_DAYS)
        logs = request_logs_purge_expired(now=now, book=book)
        if logs:
            audit_record(
                event_type="retention.request_logs_purged",
                action="purge",
                resource_type="request_log",
                data={"purged": logs},
            )
    audit_book = PolicyBook(settings.ATP_AUDIT_RETENTION_DAYS)
    report = audit_purge_expired(
        now=now, default_days=settings.ATP_AUDIT_RETENTION_DAYS, days_for=audit_book.days_for
    )
    return RetentionReport(request_logs_purged=logs, audit_events_purged=report.purged)
