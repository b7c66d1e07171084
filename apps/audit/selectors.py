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
    # The console's exact filters (indexed with the id: apps.audit.models).
    actor: str = ""
    action: str = ""
    classification: str = ""

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
            "actor",
            "action",
            "classification",
        )
        if getattr(filters, name)
    }
    return events.filter(**exact)


# --- console reads ----------------------------------------------------------------------------


def audit_event_get(*, user: User | None, sequence: int) -> AuditEvent | None:
    """One event by its sequence number, if `user` may read it."""
    return audit_event_scope(user=user).filter(sequence=sequence).first()


@dataclass(frozen=True, slots=True)
class EventIntegrity:
    """What one event's own evidence says, checked on the spot (not a chain walk)."""

    hash_matches: bool  # the stored hash is the hash of the stored fields
    signature: str  # "valid", "invalid" or "unknown key"
    previous_sequence: int | None  # the event before it, if still kept
    links_to_previous: bool | None  # its prev_hash is that event's hash (None: no previous)
    covering_head: Any  # the newest signed head at or after it (AuditSignedHead) or None


def audit_event_integrity(event: AuditEvent) -> EventIntegrity:
    from apps.audit import chain
    from apps.audit.models import AuditSignedHead

    values = {name: getattr(event, name) for name in chain.HASHED_FIELDS}
    try:
        signature = (
            "valid"
            if chain.signature_valid(event.hash, event.key_id, event.signature)
            else "invalid"
        )
    except chain.SigningKeyError:
        signature = "unknown key"
    previous = (
        AuditEvent.objects.filter(sequence__lt=event.sequence)
        .order_by("-sequence")
        .values("sequence", "hash")
        .first()
    )
    head = (
        AuditSignedHead.objects.filter(sequence__gte=event.sequence)
        .order_by("sequence", "-id")
        .first()
    )
    return EventIntegrity(
        hash_matches=chain.event_hash(values) == event.hash,
        signature=signature,
        previous_sequence=previous["sequence"] if previous else None,
        links_to_previous=(previous["hash"] == event.prev_hash) if previous else None,
        covering_head=head,
    )


def audit_tenants(*, user: User | None, action: str = "view") -> QuerySet[Tenant]:
    """The tenants whose audit records `user` may `action` (for filters and forms)."""
    return permissions.allowed_tenants(user, AuditEvent, action).order_by("slug")


def tenant_names() -> dict[str, str]:
    """Every tenant's slug by id (tables show slugs; events keep ids of deleted tenants)."""
    return {str(pk): slug for pk, slug in Tenant.objects.values_list("pk", "slug")}


@dataclass(frozen=True, slots=True)
class AuditorGrant:
    user: Any
    tenant: Tenant | None  # None: every tenant (a global permission or superuser)
    bodies: bool
    how: str  # "tenant grant", "role or permission", "superuser"


def auditor_grants() -> list[AuditorGrant]:
    """Who holds audit access, and to which tenants: per-tenant grants, then global holders."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType
    from guardian.models import UserObjectPermission

    users = get_user_model().objects.filter(is_active=True)
    grants: dict[tuple[Any, str], set[str]] = {}
    rows = UserObjectPermission.objects.filter(
        content_type=ContentType.objects.get_for_model(Tenant),
        permission__codename__in=["audit_tenant", "view_tenant_bodies"],
        user__is_active=True,
    ).values_list("user_id", "object_pk", "permission__codename")
    for user_id, object_pk, codename in rows:
        grants.setdefault((user_id, object_pk), set()).add(codename)
    tenants = {str(t.pk): t for t in Tenant.objects.filter(pk__in={k[1] for k in grants})}
    people = {u.pk: u for u in users.filter(pk__in={k[0] for k in grants})}
    result = [
        AuditorGrant(
            people[user_id], tenants[tenant_pk], "view_tenant_bodies" in held, "tenant grant"
        )
        for (user_id, tenant_pk), held in grants.items()
        if "audit_tenant" in held and user_id in people and tenant_pk in tenants
    ]
    result.sort(key=lambda g: (g.tenant.slug, g.user.get_username()))
    view = Permission.objects.filter(
        content_type__app_label="audit", codename__in=["view_auditevent"]
    )
    body = Permission.objects.filter(
        content_type__app_label="audit", codename__in=["view_exchange_body"]
    )
    global_holders = users.filter(
        Q(is_superuser=True) | Q(user_permissions__in=view) | Q(groups__permissions__in=view)
    ).distinct()
    with_bodies = set(
        users.filter(
            Q(is_superuser=True) | Q(user_permissions__in=body) | Q(groups__permissions__in=body)
        ).values_list("pk", flat=True)
    )
    for user in global_holders.order_by("username"):
        result.append(
            AuditorGrant(
                user,
                None,
                user.pk in with_bodies,
                "superuser" if user.is_superuser else "role or permission",
            )
        )
    return result


def subject_holdings(*, tenant: Tenant, subject: str) -> dict[str, int]:
    """How much `tenant` holds about `subject` (what an erasure would touch), counted only."""
    from apps.routing.services import request_log_for_subject

    return {
        "requests": len(request_log_for_subject(tenant_id=tenant.pk, subject=subject)),
        "exchanges": StoredExchange.objects.filter(tenant_id=tenant.pk, end_user=subject).count(),
        "audit_events": AuditEvent.objects.filter(
            Q(user_id=subject) | Q(actor=subject), tenant_id=tenant.pk
        ).count(),
    }
