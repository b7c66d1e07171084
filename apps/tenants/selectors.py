"""Reads of tenants, API keys and admin tokens for the console and the management API."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import QuerySet

from apps.tenants.models import AdminToken, ApiKey, Tenant

# Permission scoping (per-tenant object permissions) is added here, once per entity, so
# every list in the console and the API narrows the same way.


def tenant_list() -> QuerySet[Tenant]:
    return Tenant.objects.all()


def api_key_list(*, tenant: Tenant | None = None) -> QuerySet[ApiKey]:
    keys = ApiKey.objects.select_related("tenant", "created_by")
    if tenant is not None:
        keys = keys.filter(tenant=tenant)
    return keys


def admin_token_list(*, user: AbstractBaseUser) -> QuerySet[AdminToken]:
    """A user's own tokens; nobody lists another user's tokens through the API."""
    return AdminToken.objects.filter(user=user)
