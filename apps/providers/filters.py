"""Filters of the console's provider and model lists (django-filter)."""

from __future__ import annotations

import django_filters

from apps.providers.models import Provider


class ProviderFilterSet(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=Provider.Kind.choices, empty_label="Any protocol")
    enabled = django_filters.BooleanFilter(
        widget=django_filters.widgets.BooleanWidget(), label="Enabled"
    )

    class Meta:
        model = Provider
        fields = ["kind", "enabled"]
