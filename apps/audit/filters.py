"""Filters of the console's audit search, turned into the selectors' AuditEventFilters.

The list, and the export started from it, narrow by the same AuditEventFilters, so an
export holds exactly what the list showed (apps.audit.selectors.audit_event_filter).
"""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet

from apps.audit.models import AuditEvent, ScheduledRun
from apps.audit.selectors import AuditEventFilters, audit_event_filter, audit_tenants

CLASSIFICATIONS = (
    ("public", "public"),
    ("internal", "internal"),
    ("confidential", "confidential"),
    ("restricted", "restricted"),
)


class DateTimeLocal(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M")


class AuditEventFilterForm(forms.Form):
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since >= until:
            self.add_error("until", "Must be later than 'From'.")
        return cleaned


class AuditEventFilterSet(django_filters.FilterSet):
    """Tenant, event type (prefix), action, actor, outcome, classification and period."""

    tenant = django_filters.ModelChoiceFilter(
        queryset=None,
        method="_noop",
        empty_label="Any tenant",
        to_field_name="slug",
        label="Tenant",
    )
    event_type = django_filters.CharFilter(method="_noop", label="Event type starts with")
    action = django_filters.CharFilter(method="_noop")
    actor = django_filters.CharFilter(method="_noop")
    outcome = django_filters.ChoiceFilter(
        method="_noop", choices=AuditEvent.Outcome.choices, empty_label="Any outcome"
    )
    classification = django_filters.ChoiceFilter(
        method="_noop", choices=CLASSIFICATIONS, empty_label="Any classification"
    )
    since = django_filters.DateTimeFilter(method="_noop", label="From", widget=DateTimeLocal())
    until = django_filters.DateTimeFilter(method="_noop", label="Before", widget=DateTimeLocal())

    class Meta:
        model = AuditEvent
        fields: list[str] = []
        form = AuditEventFilterForm

    def __init__(self, *args: Any, action_name: str = "view", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        user = getattr(self.request, "user", None)
        self.filters["tenant"].queryset = audit_tenants(user=user, action=action_name)
        for name in ("event_type", "action", "actor"):
            self.form.fields[name].widget.attrs["maxlength"] = 200

    def _noop(self, queryset: QuerySet, name: str, value: object) -> QuerySet:
        return queryset  # applied together by the selector in filter_queryset

    def filters_value(self) -> AuditEventFilters:
        data = self.form.cleaned_data
        tenant = data.get("tenant")
        return AuditEventFilters(
            since=data.get("since"),
            until=data.get("until"),
            tenant_id=tenant.pk if tenant else None,
            event_type_prefix=(data.get("event_type") or "").strip(),
            action=(data.get("action") or "").strip(),
            actor=(data.get("actor") or "").strip(),
            outcome=data.get("outcome") or "",
            classification=data.get("classification") or "",
        )

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        return audit_event_filter(queryset, self.filters_value())


class ScheduledRunFilterSet(django_filters.FilterSet):
    """The runs of one periodic job and of one status."""

    task = django_filters.ChoiceFilter(choices=(), empty_label="Any job", label="Job")
    status = django_filters.ChoiceFilter(
        choices=ScheduledRun.Status.choices, empty_label="Any status"
    )

    class Meta:
        model = ScheduledRun
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from apps.audit.scheduled import duty_task_names

        self.filters["task"].extra["choices"] = [(name, name) for name in duty_task_names()]
