"""Django admin for the audit log: read-only, because the chain is evidence."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from apps.audit.models import (
    AuditEvent,
    AuditSignedHead,
    RetentionPolicy,
    ScheduledRun,
    StoredExchange,
)
from apps.audit.retention import (
    may_change_retention,
    retention_floor_check,
    retention_policy_delete,
    retention_policy_save,
)
from atp_site.lib.admin import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Browse and search events; nothing here can add, change or delete one."""

    list_display = [
        "sequence",
        "occurred_at",
        "event_type",
        "outcome",
        "actor",
        "source",
        "tenant_id",
        "resource_type",
        "resource_id",
        "classification",
    ]
    list_filter = ["event_type", "outcome", "source", "classification"]
    search_fields = [
        "=sequence",
        "event_type",
        "actor",
        "user_id",
        "resource_type",
        "resource_id",
        "request_id",
        "=hash",
    ]
    date_hierarchy = "occurred_at"
    ordering = ["-sequence"]


@admin.register(AuditSignedHead)
class AuditSignedHeadAdmin(ReadOnlyAdmin):
    """Signed heads and verification checkpoints: evidence, so read-only like the events."""

    list_display = ["id", "signed_at", "sequence", "reason", "verified", "key"]
    list_filter = ["reason", "verified"]
    search_fields = ["=sequence", "=hash"]
    date_hierarchy = "signed_at"
    ordering = ["-id"]


class RetentionPolicyForm(forms.ModelForm):
    """Reports the retention services' refusals as form errors instead of failing the save."""

    request: HttpRequest | None = None

    class Meta:
        model = RetentionPolicy
        fields = ["tenant_id", "classification", "days"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        classification = (cleaned.get("classification") or "").strip()
        stored = [self.initial.get("classification", "")] if self.instance.pk else []
        user = self.request.user if self.request else None
        if not may_change_retention(user, classification, *stored):
            raise ValidationError(
                "Retention of audit classifications needs the permission "
                "audit.change_audit_retention."
            )
        if cleaned.get("days") is not None:
            try:
                retention_floor_check(
                    RetentionPolicy(classification=classification, days=cleaned["days"])
                )
            except ValidationError as exc:
                self.add_error(None, exc.messages)
        return cleaned


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    form = RetentionPolicyForm
    list_display = ("tenant_id", "classification", "days", "updated_at")
    list_filter = ("classification",)
    search_fields = ("tenant_id", "classification")

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any):
        form = super().get_form(request, obj, **kwargs)
        return type(form.__name__, (form,), {"request": request})

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not may_change_retention(request.user, obj.classification):
            return False
        return super().has_delete_permission(request, obj)

    # Writes go through the retention services, which audit them and refuse audit
    # classifications below the floor or without `audit.change_audit_retention`.
    def save_model(self, request, obj, form, change) -> None:
        retention_policy_save(policy=obj, by=request.user)

    def delete_model(self, request, obj) -> None:
        retention_policy_delete(policy=obj, by=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for policy in queryset:
            retention_policy_delete(policy=policy, by=request.user)


@admin.register(StoredExchange)
class StoredExchangeAdmin(ReadOnlyAdmin):
    """Stored exchanges' metadata only: bodies are read through the audited API, never here."""

    list_display = [
        "request_id",
        "created_at",
        "tenant_id",
        "end_user",
        "endpoint",
        "model",
        "http_status",
        "classification",
    ]
    list_filter = ["classification", "endpoint"]
    search_fields = ["=request_id", "=tenant_id", "end_user", "model"]
    date_hierarchy = "created_at"
    exclude = ["request_encrypted", "response_encrypted"]


@admin.register(ScheduledRun)
class ScheduledRunAdmin(ReadOnlyAdmin):
    """Runs of the periodic jobs, as atp_site.duties recorded them (read-only)."""

    list_display = ["started_at", "task", "status", "duration_ms", "attempt", "hostname"]
    list_filter = ["status", "task"]
    search_fields = ["task", "error", "=task_id"]
    date_hierarchy = "started_at"
    ordering = ["-started_at"]
