"""Filters of the console's provider and model lists (django-filter)."""

from __future__ import annotations

import django_filters

from apps.providers.models import Capability, HealthCheck, ModelDeployment, Provider
from apps.providers.selectors import provider_list
from atp_site.console.filters import AnyYesNo


class ProviderFilterSet(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(
        label="Protocol", choices=Provider.Kind.choices, empty_label="Any protocol"
    )
    health = django_filters.ChoiceFilter(
        label="Health",
        choices=HealthCheck.Status.choices,
        empty_label="Any health",
        field_name="health_status",
    )
    enabled = django_filters.BooleanFilter(widget=AnyYesNo(), label="Enabled")

    class Meta:
        model = Provider
        fields = ["kind", "health", "enabled"]


def _providers(request):
    return provider_list()


class DeploymentFilterSet(django_filters.FilterSet):
    provider = django_filters.ModelChoiceFilter(queryset=_providers, empty_label="Any provider")
    capability = django_filters.ChoiceFilter(
        label="Capability",
        choices=Capability.choices,
        empty_label="Any capability",
        method="filter_capability",
    )
    enabled = django_filters.BooleanFilter(widget=AnyYesNo(), label="Enabled")
    listed = django_filters.BooleanFilter(widget=AnyYesNo(), label="Listed")

    class Meta:
        model = ModelDeployment
        fields = ["provider", "capability", "enabled", "listed"]

    def filter_capability(self, queryset, name, value):
        # A JSON list of names: match the quoted name in its text (SQLite and PostgreSQL).
        return queryset.filter(capabilities__icontains=f'"{value}"') if value else queryset
