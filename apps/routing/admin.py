"""Django admin for routing: the request log and learned statistics (read-only), routes."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from apps.providers.selectors import deployment_resilience_list
from apps.routing import cache, route_services, selectors
from apps.routing.engine.learning import learned_summary
from apps.routing.models import BanditArm, RequestLog, Route
from apps.routing.route_services import ROUTE_FIELDS, route_clean
from atp_site.lib.admin import ReadOnlyAdmin


@admin.register(RequestLog)
class RequestLogAdmin(ReadOnlyAdmin):
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


class RouteForm(forms.ModelForm):
    """Runs the route service's checks so mistakes come back as form errors, not 500s."""

    class Meta:
        model = Route
        fields = sorted(ROUTE_FIELDS)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        candidate = copy.copy(self.instance)
        for field in ROUTE_FIELDS:
            if field in cleaned:
                setattr(candidate, field, cleaned[field])
        try:
            route_clean(candidate)
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                self.add_error(None if field == NON_FIELD_ERRORS else field, messages)
        return cleaned


@admin.register(Route)
class RouteAdmin(admin.ModelAdmin):
    """Routes; every write goes through apps.routing.route_services (audited, versioned)."""

    form = RouteForm
    list_display = ["name", "enabled", "strategy", "tier", "challenger", "updated_at"]
    list_filter = ["enabled", "strategy", "tier", "semantic_cache"]
    search_fields = ["name", "description"]
    readonly_fields = ["id", "created_at", "updated_at"]

    def save_model(self, request: HttpRequest, obj: Route, form: forms.ModelForm, change: bool):
        data = {f: form.cleaned_data[f] for f in ROUTE_FIELDS if f in form.cleaned_data}
        if change:
            route_services.route_update(route=obj, **data)
        else:
            obj.__dict__.update(route_services.route_create(**data).__dict__)

    def delete_model(self, request: HttpRequest, obj: Route) -> None:
        route_services.route_delete(route=obj)

    def get_urls(self):
        urls = [
            path(
                "overview/",
                self.admin_site.admin_view(self.overview_view),
                name="routing_route_overview",
            )
        ]
        return urls + super().get_urls()

    def overview_view(self, request: HttpRequest) -> HttpResponse:
        """Routes, challengers, learned statistics, breakers and cache in one page."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        since = timezone.now() - timedelta(days=1)
        context = {
            **self.admin_site.each_context(request),
            "title": "Routing overview",
            "since": since,
            "usage": selectors.route_usage(since=since),
            "challengers": selectors.challenger_comparison(since=since),
            "learned": learned_summary(),
            "deployments": deployment_resilience_list(),
            "cache": cache.cache_stats(),
        }
        return TemplateResponse(request, "admin/routing/overview.html", context)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Route]) -> None:
        for route in queryset:
            route_services.route_delete(route=route)


@admin.register(BanditArm)
class BanditArmAdmin(ReadOnlyAdmin):
    """What the learned strategy knows per route, task cluster and model (read-only)."""

    list_display = [
        "route",
        "cluster",
        "model",
        "pulls",
        "mean_reward",
        "failures",
        "feedback_count",
        "mean_cost_usd",
        "mean_latency_ms",
        "updated_at",
    ]
    list_filter = ["route", "cluster"]
    search_fields = ["route", "model"]
    ordering = ["route", "cluster", "-pulls"]

    @admin.display(description="mean reward")
    def mean_reward(self, arm: BanditArm) -> str:
        return f"{arm.reward_sum / arm.pulls:.3f}" if arm.pulls else "-"

    @admin.display(description="mean cost (USD)")
    def mean_cost_usd(self, arm: BanditArm) -> str:
        return f"{arm.cost_sum / arm.pulls:.6f}" if arm.pulls else "-"

    @admin.display(description="mean latency (ms)")
    def mean_latency_ms(self, arm: BanditArm) -> str:
        return f"{arm.latency_ms_sum / arm.pulls:.0f}" if arm.pulls else "-"
