"""Reads of tenants, API keys and admin tokens for the console and the management API."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from apps.tenants.models import AdminToken, ApiKey, Project, Tenant

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


def project_list(*, tenant: Tenant | None = None) -> QuerySet[Project]:
    projects = Project.objects.select_related("tenant").annotate(
        live_keys=Count("api_keys", filter=Q(api_keys__revoked_at__isnull=True))
    )
    if tenant is not None:
        projects = projects.filter(tenant=tenant)
    return projects


def api_key_list(*, tenant: Tenant | None = None) -> QuerySet[ApiKey]:
    keys = ApiKey.objects.select_related("tenant", "project", "created_by")
    if tenant is not None:
        keys = keys.filter(tenant=tenant)
    return keys


def admin_token_list(*, user: AbstractBaseUser) -> QuerySet[AdminToken]:
    """A user's own tokens; nobody lists another user's tokens through the API."""
    return AdminToken.objects.filter(user=user)


# --- console reads ----------------------------------------------------------------------------
# Usage figures come from the request log through its (tenant, -created_at) and
# (api_key, -created_at) indexes, bounded by a time window and by the rows on one page.


def tenant_list_with_key_counts() -> QuerySet[Tenant]:
    """Tenants with `live_keys`: how many of their keys are not revoked."""
    return Tenant.objects.annotate(
        live_keys=Count("api_keys", filter=Q(api_keys__revoked_at__isnull=True))
    )


def api_key_status_filter(queryset: QuerySet[ApiKey], status: str) -> QuerySet[ApiKey]:
    """Keys in one state: `active` (usable now), `revoked`, or `expired` (not revoked)."""
    now = timezone.now()
    if status == "active":
        return queryset.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )
    if status == "revoked":
        return queryset.filter(revoked_at__isnull=False)
    if status == "expired":
        return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
    return queryset


@dataclass(frozen=True)
class Usage:
    """What requests in a window added up to."""

    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


_USAGE = {
    "requests": Count("pk"),
    "errors": Count("pk", filter=Q(status="error")),
    "input_tokens": Sum("input_tokens"),
    "output_tokens": Sum("output_tokens"),
    "cost_usd": Sum("cost_usd"),
}


_ZERO = {
    "requests": 0,
    "errors": 0,
    "input_tokens": 0,
    "output_tokens": 0,
    "cost_usd": Decimal(0),
}


def _usage_of(row: dict[str, Any]) -> Usage:
    return Usage(**{name: row.get(name) or default for name, default in _ZERO.items()})


def _request_logs() -> QuerySet:
    from apps.routing.models import RequestLog

    return RequestLog.objects.all()


def tenant_usage(*, tenant_ids: Iterable[uuid.UUID], since: datetime) -> dict[uuid.UUID, Usage]:
    """Usage since `since` per tenant, for the given tenants only (one grouped query)."""
    ids = list(tenant_ids)
    if not ids:
        return {}
    rows = (
        _request_logs()
        .filter(tenant_id__in=ids, created_at__gte=since)
        .order_by()
        .values("tenant_id")
        .annotate(**_USAGE)
    )
    return {row["tenant_id"]: _usage_of(row) for row in rows}


def api_key_usage(*, api_key: ApiKey, since: datetime) -> Usage:
    """Usage of one key since `since`."""
    row = (
        _request_logs()
        .filter(api_key_id=api_key.pk, created_at__gte=since)
        .order_by()
        .aggregate(**_USAGE)
    )
    return _usage_of(row)


def api_key_last_used(*, api_key: ApiKey) -> datetime | None:
    """When the key last made a request, from the newest request log row."""
    return (
        _request_logs()
        .filter(api_key_id=api_key.pk)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )


def user_dedicated_permissions(*, user: AbstractBaseUser) -> list[tuple[str, Tenant | None]]:
    """The dedicated permissions granted to `user` by name: (permission, tenant or None)."""
    from django.contrib.contenttypes.models import ContentType
    from guardian.models import UserObjectPermission

    from apps.tenants.permissions import DEDICATED

    held: list[tuple[str, Tenant | None]] = []
    for app_label, codename in user.user_permissions.values_list(
        "content_type__app_label", "codename"
    ):
        if f"{app_label}.{codename}" in DEDICATED:
            held.append((f"{app_label}.{codename}", None))
    rows = UserObjectPermission.objects.filter(
        user=user, content_type=ContentType.objects.get_for_model(Tenant)
    ).values_list("object_pk", "permission__content_type__app_label", "permission__codename")
    found = [(pk, f"{app}.{codename}") for pk, app, codename in rows]
    tenants = Tenant.objects.in_bulk([pk for pk, name in found if name in DEDICATED])
    for pk, name in found:
        if name in DEDICATED:
            tenant = tenants.get(uuid.UUID(pk))
            if tenant is not None:
                held.append((name, tenant))
    return sorted(held, key=lambda item: (item[0], item[1].slug if item[1] else ""))
