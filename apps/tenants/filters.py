"""Filters of the console's tenant and API key lists (django-filter)."""

from __future__ import annotations

from datetime import timedelta

import django_filters
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.tenants import permissions, selectors
from apps.tenants.models import ApiKey, Project, Tenant
from atp_site.console.filters import AnyYesNo


class TenantFilterSet(django_filters.FilterSet):
    is_active = django_filters.BooleanFilter(widget=AnyYesNo(), label="Active")

    class Meta:
        model = Tenant
        fields = ["is_active"]


def _visible_tenants(request) -> QuerySet[Tenant]:
    # Only tenants the viewer may see are offered; another one is "not a valid choice".
    user = getattr(request, "user", None)
    return permissions.allowed_tenants(user, Tenant, "view") if user else Tenant.objects.none()


class ProjectFilterSet(django_filters.FilterSet):
    tenant = django_filters.ModelChoiceFilter(
        queryset=_visible_tenants, empty_label="Any tenant", to_field_name="slug"
    )

    class Meta:
        model = Project
        fields = ["tenant"]


class ApiKeyFilterSet(django_filters.FilterSet):
    STATUSES = (("active", "Active"), ("revoked", "Revoked"), ("expired", "Expired"))
    EXPIRIES = (
        ("7d", "Within 7 days"),
        ("30d", "Within 30 days"),
        ("never", "Never"),
    )

    tenant = django_filters.ModelChoiceFilter(
        queryset=_visible_tenants, empty_label="Any tenant", to_field_name="slug"
    )
    status = django_filters.ChoiceFilter(
        choices=STATUSES, empty_label="Any status", method="filter_status"
    )
    expiry = django_filters.ChoiceFilter(
        choices=EXPIRIES, empty_label="Any expiry", method="filter_expiry", label="Expires"
    )

    class Meta:
        model = ApiKey
        fields = ["tenant", "status", "expiry"]

    def filter_status(self, queryset: QuerySet[ApiKey], name: str, value: str) -> QuerySet:
        return selectors.api_key_status_filter(queryset, value)

    def filter_expiry(self, queryset: QuerySet[ApiKey], name: str, value: str) -> QuerySet:
        if value == "never":
            return queryset.filter(expires_at__isnull=True)
        days = {"7d": 7, "30d": 30}.get(value)
        if days is None:
            return queryset
        now = timezone.now()
        return queryset.filter(
            Q(expires_at__gt=now) & Q(expires_at__lte=now + timedelta(days=days))
        )
