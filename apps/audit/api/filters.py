"""Query-string filters of the audit search and export, validated into AuditEventFilters."""

from __future__ import annotations

import uuid
from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from apps.audit.models import AuditEvent
from apps.audit.selectors import AuditEventFilters, audit_event_filter, tenant_resolve
from apps.tenants import permissions
from atp_site.lib.api_input import IsoDateTimeFilter


class AuditEventFilterForm(forms.Form):
    """Resolves `tenant` (slug or UUID) and checks that the period is not inverted."""

    # The user searching (None: an internal caller), set by AuditEventFilterSet.
    user: Any = None

    def clean_tenant(self) -> uuid.UUID | None:
        value = (self.cleaned_data.get("tenant") or "").strip()
        if not value:
            return None
        try:
            # A UUID is taken as given: events outlive the tenants they describe.
            return uuid.UUID(value)
        except ValueError:
            tenant = tenant_resolve(value)
        # A tenant the searcher may not see reads as one that does not exist.
        if tenant is None or not (
            self.user is None
            or permissions.may_on(self.user, tenant, "view")
            or permissions.may_for_tenant(self.user, AuditEvent, "view", tenant.pk)
        ):
            raise forms.ValidationError(f"No tenant with slug '{value}'.")
        return tenant.pk

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since >= until:
            self.add_error("until", "Must be later than 'since'.")
        return cleaned


class AuditEventFilterSet(django_filters.FilterSet):
    """The audit search filters. Every filter is applied by `audit_event_list`."""

    since = extend_schema_field(OpenApiTypes.DATETIME)(
        IsoDateTimeFilter(method="_noop", help_text="occurred_at >= this ISO 8601 datetime.")
    )
    until = extend_schema_field(OpenApiTypes.DATETIME)(
        IsoDateTimeFilter(method="_noop", help_text="occurred_at < this ISO 8601 datetime.")
    )
    tenant = django_filters.CharFilter(method="_noop", help_text="Tenant slug or UUID.")
    user = django_filters.CharFilter(method="_noop", help_text="User id or actor.")
    event_type = django_filters.CharFilter(method="_noop")
    event_type__startswith = django_filters.CharFilter(
        method="_noop", help_text="event_type starts with this."
    )
    event_type_prefix = django_filters.CharFilter(
        method="_noop", help_text="event_type starts with this."
    )
    outcome = django_filters.ChoiceFilter(method="_noop", choices=AuditEvent.Outcome.choices)
    source = django_filters.ChoiceFilter(method="_noop", choices=AuditEvent.Source.choices)
    resource_type = django_filters.CharFilter(method="_noop")
    resource_id = django_filters.CharFilter(method="_noop")
    request_id = django_filters.CharFilter(method="_noop")

    class Meta:
        model = AuditEvent
        fields: list[str] = []
        form = AuditEventFilterForm

    def get_form_class(self) -> type[forms.Form]:
        user = getattr(self.request, "user", None)
        return type("AuditEventFilterForm", (super().get_form_class(),), {"user": user})

    def _noop(self, queryset: QuerySet, name: str, value: object) -> QuerySet:
        # The filters are applied together by the selector in `filter_queryset`.
        return queryset

    def filters_value(self) -> AuditEventFilters:
        """The validated query string as the selector's filters (call after is_valid)."""
        data = self.form.cleaned_data
        return AuditEventFilters(
            since=data.get("since"),
            until=data.get("until"),
            tenant_id=data.get("tenant"),
            user=data.get("user") or "",
            event_type=data.get("event_type") or "",
            event_type_prefix=(
                data.get("event_type_prefix") or data.get("event_type__startswith") or ""
            ),
            outcome=data.get("outcome") or "",
            source=data.get("source") or "",
            resource_type=data.get("resource_type") or "",
            resource_id=data.get("resource_id") or "",
            request_id=data.get("request_id") or "",
        )

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        return audit_event_filter(queryset, self.filters_value())
