"""Django admin for the audit log: read-only, because the chain is evidence."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.audit.models import AuditEvent, RetentionPolicy
from apps.audit.retention import retention_policy_delete, retention_policy_save


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
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
    show_full_result_count = False
    actions = None

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    list_display = ("tenant_id", "classification", "days", "updated_at")
    list_filter = ("classification",)
    search_fields = ("tenant_id", "classification")

    # Writes go through the retention services, which audit them.
    def save_model(self, request, obj, form, change) -> None:
        retention_policy_save(policy=obj)

    def delete_model(self, request, obj) -> None:
        retention_policy_delete(policy=obj)

    def delete_queryset(self, request, queryset) -> None:
        for policy in queryset:
            retention_policy_delete(policy=policy)
