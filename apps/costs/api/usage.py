"""`GET /api/v1/usage`: spend and tokens from the rollups, filtered and grouped; the
30-day spend forecast and the savings (with gain share) of a tenant.

Reads need `costs.view_usagerollup`, or `tenants.view_tenant` on the tenants read: a
tenant's member sees only their tenants' usage, and naming another tenant reads like
naming one that does not exist (a 400 on `tenant`, as elsewhere in the API).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.http import StreamingHttpResponse
from django.urls import path
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.audit.api.serializers import PeriodBoundField
from apps.audit.csvsafe import csv_row
from apps.costs import spend
from apps.costs.models import UsageRollup
from apps.costs.pricing import format_usd
from apps.costs.rollups import floor_day
from apps.tenants.api.permissions import tenant_for_action
from apps.tenants.api.serializers import TenantBriefSerializer
from atp_site.lib.api_input import LineField

CSV = "text/csv"
DEFAULT_DAYS = 30
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONEY = {"max_digits": 18, "decimal_places": 8}
ESTIMATE = {"max_digits": 18, "decimal_places": 6}


class FileFormatNegotiation(DefaultContentNegotiation):
    """Always JSON for DRF's own rendering (errors, JSON pages): `?format=csv` and
    `Accept: text/csv` pick the file format here, not a DRF renderer."""

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type


# --- input ----------------------------------------------------------------------------------


class TenantParamMixin(serializers.Serializer):
    def validate_tenant(self, value: str) -> str | None:
        # Resolved by the view, which also decides whether the caller may see it.
        return value.strip() or None


class UsageQuerySerializer(TenantParamMixin):
    start = PeriodBoundField(
        end=False,
        required=False,
        help_text="ISO 8601 date or datetime (UTC when no offset); default: 30 days before "
        "`end`, or the last 30 days including today.",
    )
    end = PeriodBoundField(
        end=True,
        required=False,
        help_text="Exclusive; a date includes that whole day. Default: no upper bound.",
    )
    tenant = LineField(required=False, max_length=100, help_text="The tenant's slug or id.")
    project = serializers.UUIDField(required=False, help_text="A project's id.")
    key = serializers.UUIDField(required=False, help_text="An API key's id.")
    model = LineField(required=False, max_length=200, help_text="A public model name.")
    provider = LineField(required=False, max_length=200, help_text="A provider's id or name.")
    route = LineField(required=False, max_length=200, help_text="A route's name.")
    group_by = LineField(
        required=False,
        max_length=200,
        help_text=f"Comma-separated, any of: {', '.join(spend.GROUPS)}. None: one row of totals.",
    )
    format = serializers.ChoiceField(
        choices=["json", "csv"],
        required=False,
        help_text="csv streams every row as a file (as does `Accept: text/csv`); json pages.",
    )

    def validate_group_by(self, value: str) -> list[str]:
        groups = [g.strip() for g in value.split(",") if g.strip()]
        for group in groups:
            if group not in spend.GROUPS:
                raise serializers.ValidationError(
                    f"Unknown group '{group}': use {', '.join(spend.GROUPS)}."
                )
        return list(dict.fromkeys(groups))

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("start"), attrs.get("end")
        if start is not None and end is not None and start >= end:
            raise serializers.ValidationError({"end": "Must be later than 'start'."})
        return attrs


class TenantQuerySerializer(TenantParamMixin):
    tenant = LineField(max_length=100, help_text="The tenant's slug or id.")


class SavingsQuerySerializer(TenantQuerySerializer):
    period = serializers.ChoiceField(choices=list(spend.PERIODS), default="month")
    start = PeriodBoundField(
        end=False,
        required=False,
        help_text="From the period holding it; default: the last 12 months (or weeks), or 30 days.",
    )
    end = PeriodBoundField(end=True, required=False, help_text="Exclusive; default: now.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("start"), attrs.get("end")
        if start is not None and end is not None and start >= end:
            raise serializers.ValidationError({"end": "Must be later than 'start'."})
        return attrs


# --- output (for the schema; rows are rendered by `_row`) -----------------------------------


class UsageRowSerializer(serializers.Serializer):
    """One group's usage: the columns of the groups asked for, then the measures."""

    tenant_id = serializers.UUIDField(required=False, allow_null=True)
    tenant = serializers.CharField(required=False, allow_null=True, help_text="Slug.")
    project_id = serializers.UUIDField(required=False, allow_null=True)
    project = serializers.CharField(required=False, allow_null=True, help_text="Slug.")
    api_key_id = serializers.UUIDField(required=False, allow_null=True)
    api_key = serializers.CharField(required=False, allow_null=True, help_text="Key name.")
    model = serializers.CharField(required=False)
    provider_id = serializers.UUIDField(required=False, allow_null=True)
    provider = serializers.CharField(required=False, allow_null=True, help_text="Name.")
    route = serializers.CharField(required=False)
    day = serializers.DateField(required=False)
    hour = serializers.DateTimeField(required=False)
    requests = serializers.IntegerField()
    cached_requests = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cached_input_tokens = serializers.IntegerField()
    cost_usd = serializers.DecimalField(**MONEY)
    baseline_cost_usd = serializers.DecimalField(
        **MONEY, help_text="The same tokens at the tenant's baseline model's prices."
    )
    savings_usd = serializers.DecimalField(**MONEY, help_text="Baseline minus cost.")
    cache_savings_usd = serializers.DecimalField(
        **MONEY, help_text="What the answers replayed from the cache would have cost."
    )


class UsagePageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = UsageRowSerializer(many=True)


class ForecastDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    cost_usd = serializers.DecimalField(**ESTIMATE)


class HoldoutSerializer(serializers.Serializer):
    days = serializers.IntegerField(help_text="The last days of history held out.")
    method = serializers.CharField(help_text="The method as fitted on the shorter history.")
    mae_usd = serializers.DecimalField(**ESTIMATE, help_text="Mean absolute error per day.")
    mape_percent = serializers.FloatField(
        allow_null=True, help_text="Mean absolute percentage error over days with spend."
    )
    naive_mae_usd = serializers.DecimalField(
        **ESTIMATE,
        allow_null=True,
        help_text="The error of repeating the same weekday of the week before.",
    )


class ForecastSerializer(serializers.Serializer):
    tenant = TenantBriefSerializer()
    method = serializers.CharField()
    history_start = serializers.DateField(allow_null=True)
    history_days = serializers.IntegerField(help_text="Complete days fitted on.")
    start = serializers.DateField(help_text="The first forecast day (today, UTC).")
    days = serializers.IntegerField()
    total_usd = serializers.DecimalField(**ESTIMATE)
    daily = ForecastDaySerializer(many=True)
    trend_per_day_usd = serializers.DecimalField(
        **ESTIMATE, allow_null=True, help_text="How much daily spend grows each day."
    )
    weekday_effects_usd = serializers.DictField(
        child=serializers.DecimalField(**ESTIMATE),
        allow_null=True,
        help_text="Each weekday's spend above or below the week's mean.",
    )
    holdout = HoldoutSerializer(allow_null=True)


class SavingsPeriodSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    requests = serializers.IntegerField()
    cost_usd = serializers.DecimalField(**MONEY)
    baseline_cost_usd = serializers.DecimalField(**MONEY)
    savings_usd = serializers.DecimalField(**MONEY)
    cache_savings_usd = serializers.DecimalField(**MONEY)
    gain_share_usd = serializers.DecimalField(**MONEY)


class SavingsSerializer(serializers.Serializer):
    tenant = TenantBriefSerializer()
    baseline_model = serializers.CharField()
    gain_share_percent = serializers.DecimalField(max_digits=5, decimal_places=2)
    period = serializers.CharField(help_text="day, week or month.")
    periods = SavingsPeriodSerializer(many=True)
    totals = SavingsPeriodSerializer()


# --- helpers --------------------------------------------------------------------------------


def _tenant(request: Request, value: str | None) -> Any:
    if value is None:
        return None
    return tenant_for_action(request.user, UsageRollup, "view", value)


def _provider_ids(value: str | None) -> tuple[uuid.UUID, ...] | None:
    """The providers `value` names (an id, or a name): a name no provider has matches none."""
    if value is None:
        return None
    try:
        return (uuid.UUID(value),)
    except ValueError:
        from apps.providers.selectors import provider_list

        return tuple(provider_list().filter(name=value).values_list("pk", flat=True))


def _filters(request: Request, data: dict[str, Any]) -> spend.UsageFilters:
    end = data.get("end")
    start = data.get("start")
    if start is None and end is None:
        start = floor_day(timezone.now()) - timedelta(days=DEFAULT_DAYS - 1)
    elif start is None:
        # At the calendar's first days there is nothing before `end` to leave out.
        days = min(DEFAULT_DAYS, (end - datetime.min.replace(tzinfo=UTC)).days)
        start = end - timedelta(days=days)
    tenant = _tenant(request, data.get("tenant"))
    return spend.UsageFilters(
        start=start,
        end=end,
        tenant_id=tenant.pk if tenant else None,
        project_id=data.get("project"),
        api_key_id=data.get("key"),
        model=data.get("model"),
        provider_ids=_provider_ids(data.get("provider")),
        route=data.get("route"),
    )


def _cell(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format_usd(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _row(row: dict[str, Any]) -> dict[str, Any]:
    return {name: _cell(value) for name, value in row.items()}


def _wants_csv(request: Request, data: dict[str, Any]) -> bool:
    fmt = data.get("format")
    if fmt is not None:
        return fmt == "csv"
    accept = request.META.get("HTTP_ACCEPT", "")
    return CSV in accept and "application/json" not in accept


def _csv_stream(columns: list[str], rows: list[dict[str, Any]]) -> Iterator[str]:
    """A header row, then the rows; cells a spreadsheet would run as formulas (a model or
    route name starting with `=`, say) are neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(csv_row(["" if row.get(c) is None else _cell(row.get(c)) for c in columns]))
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _estimate(value: float | None) -> str | None:
    return None if value is None else f"{value:.6f}"


# --- views ----------------------------------------------------------------------------------


class UsageView(APIView):
    """Requests, tokens, cost, baseline cost, savings and cache savings from the hourly and
    daily rollups, filtered and grouped.

    Hours (or days) overlapping [start, end) are counted; the rollups trail the ledger by
    up to a few minutes. JSON is paginated (`limit`, `offset`); CSV (`format=csv` or
    `Accept: text/csv`) streams every row.
    """

    permission_model = UsageRollup
    permission_action = "view"
    content_negotiation_class = FileFormatNegotiation
    renderer_classes = [JSONRenderer]

    @extend_schema(
        parameters=[
            UsageQuerySerializer,
            OpenApiParameter("limit", int, description="Rows per page (JSON)."),
            OpenApiParameter("offset", int, description="Rows to skip (JSON)."),
        ],
        responses={
            (200, "application/json"): UsagePageSerializer,
            (200, CSV): OpenApiResponse(
                OpenApiTypes.STR, description="A header row, then one group a row."
            ),
        },
    )
    def get(self, request: Request) -> Response | StreamingHttpResponse:
        params = UsageQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        group_by = data.get("group_by") or []
        rows = spend.usage_rows(
            user=request.user, filters=_filters(request, data), group_by=group_by
        )
        if _wants_csv(request, data):
            response = StreamingHttpResponse(
                _csv_stream(spend.usage_columns(group_by), rows), content_type=CSV
            )
            response["Content-Disposition"] = 'attachment; filename="atp-usage.csv"'
            return response
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response([_row(row) for row in page or []])


class UsageForecastView(APIView):
    """A tenant's spend forecast for the next 30 days (from today, UTC), with the method
    and its error on held-out history (apps.costs.forecast)."""

    permission_model = UsageRollup
    permission_action = "view"

    @extend_schema(parameters=[TenantQuerySerializer], responses={200: ForecastSerializer})
    def get(self, request: Request) -> Response:
        params = TenantQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        tenant = _tenant(request, params.validated_data["tenant"])
        if tenant is None:
            raise ValidationError({"tenant": ["This field may not be blank."]})
        result = spend.spend_forecast(user=request.user, tenant=tenant)
        forecast = result.forecast
        holdout = forecast.holdout
        return Response(
            {
                "tenant": {"id": str(tenant.pk), "slug": tenant.slug, "name": tenant.name},
                "method": forecast.method,
                "history_start": _cell(result.history_start),
                "history_days": forecast.history_days,
                "start": forecast.start.isoformat(),
                "days": len(forecast.daily),
                "total_usd": _estimate(forecast.total),
                "daily": [
                    {
                        "day": (forecast.start + timedelta(days=i)).isoformat(),
                        "cost_usd": _estimate(v),
                    }
                    for i, v in enumerate(forecast.daily)
                ],
                "trend_per_day_usd": _estimate(forecast.trend_per_day),
                "weekday_effects_usd": (
                    {WEEKDAYS[w]: _estimate(v) for w, v in forecast.weekday_effects.items()}
                    if forecast.weekday_effects is not None
                    else None
                ),
                "holdout": (
                    {
                        "days": holdout.days,
                        "method": holdout.method,
                        "mae_usd": _estimate(holdout.mae),
                        "mape_percent": (
                            round(holdout.mape, 2) if holdout.mape is not None else None
                        ),
                        "naive_mae_usd": _estimate(holdout.naive_mae),
                    }
                    if holdout is not None
                    else None
                ),
            }
        )


class UsageSavingsView(APIView):
    """A tenant's realized savings per period: cost against the baseline model's cost,
    cache savings, and the gain share (`tenant.gain_share_percent` of positive savings)."""

    permission_model = UsageRollup
    permission_action = "view"

    @extend_schema(parameters=[SavingsQuerySerializer], responses={200: SavingsSerializer})
    def get(self, request: Request) -> Response:
        params = SavingsQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        tenant = _tenant(request, data["tenant"])
        if tenant is None:
            raise ValidationError({"tenant": ["This field may not be blank."]})
        try:
            report = spend.savings_by_period(
                user=request.user,
                tenant=tenant,
                period=data["period"],
                start=data.get("start"),
                end=data.get("end"),
            )
        except spend.RangeTooLong:
            raise ValidationError(
                {"start": [f"Too many {data['period']}s: at most {spend.MAX_SERIES_POINTS}."]}
            ) from None

        def period(p: spend.SavingsPeriod) -> dict[str, Any]:
            return {
                "start": p.start.isoformat(),
                "end": p.end.isoformat(),
                "requests": p.requests,
                "cost_usd": format_usd(p.cost_usd),
                "baseline_cost_usd": format_usd(p.baseline_cost_usd),
                "savings_usd": format_usd(p.savings_usd),
                "cache_savings_usd": format_usd(p.cache_savings_usd),
                "gain_share_usd": format_usd(p.gain_share_usd),
            }

        return Response(
            {
                "tenant": {"id": str(tenant.pk), "slug": tenant.slug, "name": tenant.name},
                "baseline_model": report.baseline_model,
                "gain_share_percent": f"{report.gain_share_percent:.2f}",
                "period": report.period,
                "periods": [period(p) for p in report.periods],
                "totals": period(report.totals),
            }
        )


urlpatterns: list = [
    path("usage/", UsageView.as_view(), name="usage"),
    path("usage/forecast/", UsageForecastView.as_view(), name="usage-forecast"),
    path("usage/savings/", UsageSavingsView.as_view(), name="usage-savings"),
]
