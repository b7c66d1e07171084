"""Reads of tenants, API keys and admin tokens for the console and the management API."""

from __future__ import annotations

import uuid

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import QuerySet

from apps.tenants.models import AdminToken, ApiKey, Tenant

# These are unscoped; callers narrow them by the user's permissions with
# apps.tenants.permissions.restrict, the one place that decides who sees what.


def tenant_list() -> QuerySet[Tenant]:
    return Tenant.objects.all()


def tenant_resolve(value: str) -> Tenant | None:
    """The tenant named by a slug or a UUID, or None when there is no such tenant."""
    value = value.strip()
    try:
        return tenant_list().filter(pk=uuid.UUID(value)).first()
    except ValueError:
        return tenant_list().filter(slug=value).first()


def api_key_list(*, tenant: Tenant | None = None) -> QuerySet[ApiKey]:
    keys = ApiKey.objects.select_related("tenant", "created_by")
    if tenant is not None:
        keys = keys.filter(tenant=tenant)
    return keys


def admin_token_list(*, user: AbstractBaseUser) -> QuerySet[AdminToken]:
    """A user's own tokens; nobody lists another user's tokens through the API."""
    return AdminToken.objects.filter(user=user)
