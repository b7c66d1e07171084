"""Granting per-tenant audit access (django-guardian object permissions), audited."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from guardian.shortcuts import assign_perm, remove_perm

from apps.audit.services import audit_record
from apps.tenants.models import Tenant
from apps.tenants.permissions import AUDIT_TENANT, VIEW_TENANT_BODIES


@transaction.atomic
def auditor_grant(*, user: AbstractBaseUser, tenant: Tenant, bodies: bool = False) -> list[str]:
    """Let `user` read `tenant`'s audit records, and with `bodies` its stored bodies too."""
    from apps.tenants.roles import recorded_by_service

    granted = [AUDIT_TENANT] + ([VIEW_TENANT_BODIES] if bodies else [])
    with recorded_by_service():  # one event below, not one per permission
        for permission in granted:
            assign_perm(permission, user, tenant)
    audit_record(
        event_type="auditor.granted",
        action="grant",
        tenant_id=tenant.pk,
        resource_type="user",
        resource_id=str(user.pk),
        data={"username": user.get_username(), "permissions": granted},
        classification="restricted",
    )
    return granted


@transaction.atomic
def auditor_revoke(
    *, user: AbstractBaseUser, tenant: Tenant, bodies_only: bool = False
) -> list[str]:
    """Take back `user`'s access to `tenant`'s bodies, and unless `bodies_only` its audit."""
    from apps.tenants.roles import recorded_by_service

    revoked = [VIEW_TENANT_BODIES] + ([] if bodies_only else [AUDIT_TENANT])
    with recorded_by_service():  # one event below, not one per permission
        for permission in revoked:
            remove_perm(permission, user, tenant)
    audit_record(
        event_type="auditor.revoked",
        action="revoke",
        tenant_id=tenant.pk,
        resource_type="user",
        resource_id=str(user.pk),
        data={"username": user.get_username(), "permissions": revoked},
        classification="restricted",
    )
    return revoked
