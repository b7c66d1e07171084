"""Django admin for the request log: read-only, since rows are the record of what happened."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from apps.routing.models import RequestLog


@admin.register(RequestLog)
class RequestLogAdmin(admin.ModelAdmin):
    list_display = [
        "request_id",
        "created_at",
        "endpoint",
        "tenant",
        "model",
        "provider",
        "status",
        "http_status",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "latency_ms",
    ]
    list_filter = ["status", "endpoint", "stream", "usage_estimated", "created_at"]
    search_fields = ["request_id", "model", "requested_model", "end_user", "error_type"]
    list_select_related = ["tenant", "provider"]
    raw_id_fields = ["tenant", "api_key", "deployment", "provider"]
    date_hierarchy = "created_at"
    # The table grows without bound; an exact COUNT(*) per page view is too slow.
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RequestLog | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: RequestLog | None = None) -> bool:
        return False
