"""Filters of the console's request log and route lists (django-filter)."""

from __future__ import annotations

import django_filters
from django import forms

from apps.routing.models import RequestLog, Route
from apps.tenants import permissions
from apps.tenants.models import ApiKey, Tenant
from atp_site.console.filters import AnyYesNo


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


class RequestLogFilterSet(django_filters.FilterSet):
    """Each filter is served, with the newest-first sort, by an index of the request log
    (see the model's Meta.indexes and migration 0007)."""

    tenant = django_filters.ModelChoiceFilter(
        queryset=Tenant.objects.none(), empty_label="Any tenant"
    )
    api_key = django_filters.ModelChoiceFilter(
        queryset=ApiKey.objects.none(), empty_label="Any key", label="Key"
    )
    model = django_filters.CharFilter(label="Model")
    route = django_filters.CharFilter(label="Route")
    status = django_filters.ChoiceFilter(
        choices=RequestLog.Status.choices, empty_label="Any status"
    )
    since = django_filters.IsoDateTimeFilter(
        field_name="created_at",
        lookup_expr="gte",
        label="From",
        widget=DateTimeInput(),
    )
    until = django_filters.IsoDateTimeFilter(
        field_name="created_at",
        lookup_expr="lt",
        label="Until",
        widget=DateTimeInput(),
    )
    min_cost = django_filters.NumberFilter(
        field_name="cost_usd", lookup_expr="gte", label="Cost from (USD)", min_value=0
    )
    max_cost = django_filters.NumberFilter(
        field_name="cost_usd", lookup_expr="lte", label="Cost up to (USD)", min_value=0
    )

    class Meta:
        model = RequestLog
        fields = ["tenant", "api_key", "model", "route", "status"]

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        user = request.user if request is not None else None
        # Only tenants and keys the viewer may see are offered, or accepted.
        self.filters["tenant"].queryset = permissions.allowed_tenants(user, RequestLog, "view")
        self.filters["api_key"].queryset = permissions.restrict(
            ApiKey.objects.select_related("tenant").order_by("tenant__slug", "name"), user, "view"
        )
        for name in ("min_cost", "max_cost"):
            self.filters[name].field.widget.attrs.update(step="any", inputmode="decimal")


class RouteFilterSet(django_filters.FilterSet):
    strategy = django_filters.ChoiceFilter(
        choices=Route.Strategy.choices, empty_label="Any strategy"
    )
    tier = django_filters.ChoiceFilter(choices=Route.Tier.choices, empty_label="Any tier")
    enabled = django_filters.BooleanFilter(widget=AnyYesNo(), label="Enabled")

    class Meta:
        model = Route
        fields = ["strategy", "tier", "enabled"]
