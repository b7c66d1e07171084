"""Reads of the audit log for the console, the management API, exports and reports."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db.models import Q, QuerySet

from apps.audit.models import AuditEvent, StoredExchange
from apps.tenants import permissions
from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_resolve as tenant_resolve

User = AbstractBaseUser | AnonymousUser


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


def audit_tenant_ids(*, user: User | None, action: str = "view") -> frozenset[uuid.UUID] | None:
    """The tenants whose audit records `user` may `action` (view, export, report); None
    means every tenant.

    Decided by apps.tenants.permissions: superusers and internal callers (no user) read
    everything, as does a holder of `audit.<action>_auditevent` or of `tenants.audit_tenant`
    globally; a user granted `tenants.audit_tenant` on some tenants (django-guardian) reads
    those; anyone else, anonymous and inactive users included, reads nothing.
    """
    return permissions.tenant_ids(user, AuditEvent, action)


def audit_reader(user: User | None, action: str = "view") -> bool:
    """Whether `user` may `action` any part of the audit log at all."""
    return permissions.may(user, AuditEvent, action)


def audit_event_scope(
    *, user: AbstractBaseUser | AnonymousUser | None = None, action: str = "view"
) -> QuerySet:
    """Every audit event `user` may read (or export, ...): where read access to the log narrows.

    A per-tenant auditor sees only events recorded for their tenants (never the
    tenant-less ones: sign-ins, providers, other tenants' changes). The API, exports and
    reports all start here, so they narrow together.
    """
    return permissions.restrict(AuditEvent.objects.all(), user, action)


def exchange_scope(*, user: User | None = None) -> QuerySet[StoredExchange]:
    """The stored exchanges whose metadata `user` may list (the audit log's tenant scope)."""
    return permissions.restrict(StoredExchange.objects.all(), user, "view")


def exchange_body_allowed(*, user: User, exchange: StoredExchange) -> bool:
    """Whether `user` may read `exchange`'s decrypted bodies.

    Superusers may; so may a user holding `audit.view_exchange_body` (every tenant) or
    `tenants.view_tenant_bodies` globally or on the exchange's tenant (django-guardian).
    Being staff or an auditor is not enough: bodies are the most sensitive data ATP keeps.
    """
    return permissions.may_on(user, exchange, "view_body")


def subject_bodies_allowed(*, user: User | None, tenant: Tenant) -> bool:
    """Whether a data-subject export for `tenant` made by `user` may include bodies."""
    return permissions.may_for_tenant(user, StoredExchange, "view_body", tenant.pk)


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
