"""Reads of the audit log for the console, the management API, exports and reports."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db.models import Q, QuerySet
from guardian.shortcuts import get_objects_for_user

from apps.audit.models import AuditEvent, StoredExchange
from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_list

AUDIT_TENANT = "tenants.audit_tenant"
VIEW_TENANT_BODIES = "tenants.view_tenant_bodies"
VIEW_EXCHANGE_BODY = "audit.view_exchange_body"

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


def audit_tenant_ids(*, user: User | None) -> frozenset[uuid.UUID] | None:
    """The tenants whose audit records `user` may read; None means every tenant.

    Staff and superusers read everything, as does a user holding `tenants.audit_tenant`
    globally (through a group or directly) and internal callers (no user). Anyone else
    reads the tenants on which they were granted that permission as a django-guardian
    object permission; anonymous and inactive users read nothing.
    """
    if user is None:
        return None
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    if user.is_staff or user.is_superuser or user.has_perm(AUDIT_TENANT):
        return None
    tenants = get_objects_for_user(
        user, AUDIT_TENANT, klass=Tenant, accept_global_perms=False, with_superuser=False
    )
    return frozenset(tenants.values_list("pk", flat=True))


def audit_reader(user: User | None) -> bool:
    """Whether `user` may read any part of the audit log at all."""
    return audit_tenant_ids(user=user) != frozenset()


def audit_event_scope(*, user: AbstractBaseUser | AnonymousUser | None = None) -> QuerySet:
    """Every audit event `user` may read: the one place read access to the log narrows.

    A per-tenant auditor sees only events recorded for their tenants (never the
    tenant-less ones: sign-ins, providers, other tenants' changes). The API, exports and
    reports all start here, so they narrow together.
    """
    events = AuditEvent.objects.all()
    tenants = audit_tenant_ids(user=user)
    if tenants is None:
        return events
    return events.filter(tenant_id__in=tenants) if tenants else events.none()


def exchange_scope(*, user: User | None = None) -> QuerySet[StoredExchange]:
    """The stored exchanges whose metadata `user` may list (the audit log's tenant scope)."""
    exchanges = StoredExchange.objects.all()
    tenants = audit_tenant_ids(user=user)
    if tenants is None:
        return exchanges
    return exchanges.filter(tenant_id__in=tenants) if tenants else exchanges.none()


def exchange_body_allowed(*, user: User, exchange: StoredExchange) -> bool:
    """Whether `user` may read `exchange`'s decrypted bodies.

    Superusers may; so may a user holding `audit.view_exchange_body` (every tenant) or
    `tenants.view_tenant_bodies` globally or on the exchange's tenant (django-guardian).
    Being staff or an auditor is not enough: bodies are the most sensitive data ATP keeps.
    """
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser or user.has_perm(VIEW_EXCHANGE_BODY) or user.has_perm(VIEW_TENANT_BODIES):
        return True
    if exchange.tenant_id is None:
        return False
    tenant = Tenant.objects.filter(pk=exchange.tenant_id).first()
    return tenant is not None and user.has_perm(VIEW_TENANT_BODIES, tenant)


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
