"""Filters of the console's policy list (django-filter).

Only tenants whose policies the viewer may see are offered; another one is "not a valid
choice", so the list shows nothing rather than somebody else's policies.
"""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from apps.policies.models import Policy
from apps.tenants import permissions
from apps.tenants.models import Tenant
from atp_site.console.filters import AnyYesNo


def _visible_tenants(request) -> QuerySet[Tenant]:
    user = getattr(request, "user", None)
    if user is None:
        return Tenant.objects.none()
    return permissions.allowed_tenants(user, Policy, "view").order_by("slug")


class PolicyFilterSet(django_filters.FilterSet):
    tenant = django_filters.ModelChoiceFilter(
        queryset=_visible_tenants, empty_label="Any tenant", to_field_name="slug"
    )
    owner = django_filters.ChoiceFilter(
        label="Applies to",
        choices=[("global", "Every tenant (global)"), ("tenant", "One tenant")],
        empty_label="Global and tenants'",
        method="_owner",
    )
    enabled = django_filters.BooleanFilter(widget=AnyYesNo())
    mode = django_filters.ChoiceFilter(choices=Policy.Mode.choices, empty_label="Any mode")

    class Meta:
        model = Policy
        fields = ["tenant", "owner", "enabled", "mode"]

    def _owner(self, queryset: QuerySet[Policy], name: str, value: str) -> QuerySet[Policy]:
        if value == "global":
            return queryset.filter(tenant__isnull=True)
        if value == "tenant":
            return queryset.filter(tenant__isnull=False)
        return queryset
