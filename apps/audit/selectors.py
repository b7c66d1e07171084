"""Reads of the audit log for the console, the management API, exports and reports."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db.models import Q, QuerySet

from apps.audit.models import AuditEvent
from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_list


@dataclass(frozen=True, slots=True)
class AuditEventFilters:
    """What a search narrows by; empty values do not narrow.

    `since` is inclusive and `until` exclusive, so consecutive periods never count an
    event twice. `user` matches either the user id or the actor as shown.
    """

    since: datetime | None = None
    until: datetime | None = None
    tenant_id: uuid.UUID | None = None
    user: str = ""
    event_type: str = ""
    event_type_prefix: str = ""
    outcome: str = ""
    source: str = ""
    resource_type: str = ""
    resource_id: str = ""
    request_id: str = ""

    def as_dict(self) -> dict[str, str]:
        """The filters that are set, as strings (what an export records about itself)."""
        result = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value in (None, ""):
                continue
            result[f.name] = value.isoformat() if isinstance(value, datetime) else str(value)
        return result


def audit_event_scope(*, user: AbstractBaseUser | AnonymousUser | None = None) -> QuerySet:
    """Every audit event `user` may read: the one place read access to the log narrows.

    Staff read the whole log (the management API admits only staff). Per-tenant auditor
    roles narrow here once they exist, so the API, exports and reports follow together.
    """
    events = AuditEvent.objects.all()
    if user is None or getattr(user, "is_staff", False):
        return events
    return events.none()


def audit_event_list(
    filters: AuditEventFilters | None = None,
    *,
    user: AbstractBaseUser | AnonymousUser | None = None,
) -> QuerySet[AuditEvent]:
    """Audit events visible to `user` (everything when None) narrowed by `filters`."""
    events = audit_event_scope(user=user)
    return events if filters is None else audit_event_filter(events, filters)


def audit_event_filter(events: QuerySet[AuditEvent], filters: AuditEventFilters) -> QuerySet:
    """`events` narrowed by `filters` (for querysets already scoped by audit_event_scope)."""
    if filters.since is not None:
        events = events.filter(occurred_at__gte=filters.since)
    if filters.until is not None:
        events = events.filter(occurred_at__lt=filters.until)
    if filters.tenant_id is not None:
        events = events.filter(tenant_id=filters.tenant_id)
    if filters.user:
        events = events.filter(Q(user_id=filters.user) | Q(actor=filters.user))
    if filters.event_type_prefix:
        events = events.filter(event_type__startswith=filters.event_type_prefix)
    exact: dict[str, Any] = {
        name: getattr(filters, name)
        for name in (
            "event_type",
            "outcome",
            "source",
            "resource_type",
            "resource_id",
            "request_id",
        )
        if getattr(filters, name)
    }
    return events.filter(**exact)


def tenant_resolve(value: str) -> Tenant | None:
    """The tenant named by a slug or a UUID, or None when there is no such tenant."""
    value = value.strip()
    try:
        return tenant_list().filter(pk=uuid.UUID(value)).first()
    except ValueError:
        return tenant_list().filter(slug=value).first()
