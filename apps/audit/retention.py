"""Retention: which policy covers a record, and the periodic purge of what has expired.

Request logs are kept under the classification `requests`, stored bodies under `bodies`;
every other classification (and a blank one, which covers them all) is what audit events
carry, so it governs evidence: such a policy may not go below ATP_AUDIT_MIN_RETENTION_DAYS,
changing it needs the dedicated permission `audit.change_audit_retention`, and the purge
never deletes an audit event younger than that floor whatever its own retention says.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.audit.models import RetentionPolicy, StoredExchange
from apps.audit.services import audit_purge_expired, audit_record
from apps.tenants.permissions import CHANGE_AUDIT_RETENTION

REQUESTS = "requests"  # the classification request logs are kept under
BODIES = "bodies"  # the classification stored prompt and response bodies are kept under


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


def is_audit_classification(classification: str) -> bool:
    """Whether a policy on `classification` can decide how long audit events are kept."""
    return (classification or "").strip() not in (REQUESTS, BODIES)


def audit_min_retention_days() -> int:
    return settings.ATP_AUDIT_MIN_RETENTION_DAYS


def may_change_retention(by: AbstractBaseUser | None, *classifications: str) -> bool:
    """Whether `by` may change policies on these classifications (None: an operator)."""
    if by is None or by.has_perm(CHANGE_AUDIT_RETENTION):
        return True
    return not any(is_audit_classification(c) for c in classifications)


def _check_audit_retention(by: AbstractBaseUser | None, *classifications: str) -> None:
    """Refuse a change to a policy on an audit classification without the permission."""
    if not may_change_retention(by, *classifications):
        raise PermissionDenied(
            "Retention of audit classifications (anything but 'requests' and 'bodies') "
            f"needs the permission {CHANGE_AUDIT_RETENTION}."
        )


def retention_floor_check(policy: RetentionPolicy) -> None:
    """Refuse a policy that would keep audit events less than ATP_AUDIT_MIN_RETENTION_DAYS."""
    floor = audit_min_retention_days()
    if is_audit_classification(policy.classification) and (policy.days or 0) < floor:
        raise ValidationError(
            {
                "days": f"Audit classifications are kept at least {floor} days "
                "(ATP_AUDIT_MIN_RETENTION_DAYS); use 'requests' or 'bodies' for request "
                "logs and stored bodies."
            }
        )


@transaction.atomic
def retention_policy_save(
    *, policy: RetentionPolicy, by: AbstractBaseUser | None = None
) -> RetentionPolicy:
    """Create or change a policy; the change is audited with before and after.

    `by` is the user asking: a policy on an audit classification, before or after the
    change, needs `audit.change_audit_retention`. Whoever asks, such a policy may not go
    below ATP_AUDIT_MIN_RETENTION_DAYS.
    """
    from apps.audit.snapshots import audit_change, snapshot_of, stored_snapshot

    before = stored_snapshot(policy) if policy.pk else None
    policy.classification = (policy.classification or "").strip()
    stored = RetentionPolicy.objects.filter(pk=policy.pk).values_list("classification", flat=True)
    _check_audit_retention(by, policy.classification, *stored)
    retention_floor_check(policy)
    clash = RetentionPolicy.objects.filter(
        tenant_id=policy.tenant_id, classification=policy.classification
    ).exclude(pk=policy.pk)
    if clash.exists():
        raise ValidationError(
            {
                "classification": ValidationError(
                    "A policy for this tenant and classification already exists.", code="unique"
                )
            }
        )
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
def retention_policy_delete(*, policy: RetentionPolicy, by: AbstractBaseUser | None = None) -> None:
    """Delete a policy (audited); one on an audit classification needs the permission."""
    from apps.audit.snapshots import audit_change, snapshot_of

    _check_audit_retention(by, policy.classification)
    before, pk, tenant_id = snapshot_of(policy), policy.pk, policy.tenant_id
    policy.delete()
    audit_change(
        event_type="retention_policy.deleted", resource_id=pk, tenant_id=tenant_id, before=before
    )


@dataclass(frozen=True, slots=True)
class RetentionReport:
    request_logs_purged: int
    audit_events_purged: int
    exchanges_purged: int = 0


def _purge_expired(rows: QuerySet, *, now: datetime, book: PolicyBook, classification: str) -> int:
    """Delete `rows` (with `tenant_id` and `created_at`) past their tenant's retention."""
    purged = 0
    special = book.tenants_with_own_policy(classification)
    for tenant, days in special.items():
        count, _ = rows.filter(tenant_id=tenant, created_at__lt=now - timedelta(days=days)).delete()
        purged += count
    everyone_else = rows.exclude(tenant_id__in=list(special)).filter(
        created_at__lt=now - timedelta(days=book.days_for(None, classification))
    )
    count, _ = everyone_else.delete()
    return purged + count


def request_logs_purge_expired(*, now: datetime, book: PolicyBook) -> int:
    """Delete request logs past their tenant's retention for the 'requests' class."""
    from apps.routing.models import RequestLog

    return _purge_expired(RequestLog.objects.all(), now=now, book=book, classification=REQUESTS)


def exchanges_purge_expired(*, now: datetime, book: PolicyBook) -> int:
    """Delete stored bodies past their tenant's retention for the 'bodies' class."""
    return _purge_expired(StoredExchange.objects.all(), now=now, book=book, classification=BODIES)


def spills_purged(*, now: datetime, books: dict[str, PolicyBook], audit_book: PolicyBook) -> int:
    """Drop rows waiting in this data directory's spill and dead-letter files (rows the
    database could not take yet) that are past the retention they would have in the
    database; audited when any went."""
    from apps.routing.writebehind import spill_purge_expired

    floor = audit_min_retention_days()

    def days_for(classification: str, tenant_id) -> int:
        book = books.get(classification)
        if book is not None:
            return book.days_for(tenant_id, classification)
        # Audit events waiting to be appended keep the same floor as the chain's.
        return max(audit_book.days_for(tenant_id, classification), floor)

    purged = spill_purge_expired(now=now, days_for=days_for)
    if purged:
        audit_record(
            event_type="retention.spilled_rows_purged",
            action="purge",
            resource_type="write_behind_spill",
            data={"purged": purged},
        )
    return purged


def retention_run(*, now: datetime | None = None) -> RetentionReport:
    """Purge expired request logs, stored bodies and the audit chain's expired prefix.

    Every purge is audited with its count, also when it removed nothing, so the log shows
    that retention ran. Audit events younger than ATP_AUDIT_MIN_RETENTION_DAYS are kept
    whatever their policy or their own retention says.
    """
    now = now or timezone.now()
    with transaction.atomic():
        book = PolicyBook(settings.ATP_REQUEST_LOG_RETENTION_DAYS)
        logs = request_logs_purge_expired(now=now, book=book)
        audit_record(
            event_type="retention.request_logs_purged",
            action="purge",
            resource_type="request_log",
            data={"purged": logs},
        )
    with transaction.atomic():
        bodies_book = PolicyBook(settings.ATP_BODY_RETENTION_DAYS)
        exchanges = exchanges_purge_expired(now=now, book=bodies_book)
        audit_record(
            event_type="retention.exchanges_purged",
            action="purge",
            resource_type="exchange",
            data={"purged": exchanges},
        )
    audit_book = PolicyBook(settings.ATP_AUDIT_RETENTION_DAYS)
    floor = audit_min_retention_days()
    report = audit_purge_expired(
        now=now,
        default_days=settings.ATP_AUDIT_RETENTION_DAYS,
        days_for=audit_book.days_for,
        min_days=floor,
    )
    audit_record(
        event_type="retention.audit_events_purged",
        action="purge",
        resource_type="audit_chain",
        data={
            "purged": report.purged,
            "first_sequence": report.first_sequence,
            "min_retention_days": floor,
        },
        classification="restricted",
    )
    spills_purged(now=now, books={REQUESTS: book, BODIES: bodies_book}, audit_book=audit_book)
    return RetentionReport(
        request_logs_purged=logs, audit_events_purged=report.purged, exchanges_purged=exchanges
    )
