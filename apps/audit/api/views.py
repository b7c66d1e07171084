"""Management API of the audit log: search, export, compliance report, verification."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers, viewsets
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.audit import reports
from apps.audit.api.filters import AuditEventFilterSet
from apps.audit.api.serializers import (
    AuditEventSerializer,
    ComplianceReportSerializer,
    ExchangeBodySerializer,
    ExchangeSerializer,
    ExportManifestSerializer,
    ReportInputSerializer,
    RetentionPolicySerializer,
    ScheduledRunSerializer,
)
from apps.audit.bodies import exchange_reveal
from apps.audit.context import AuditActor, acting_as, session_digest
from apps.audit.exports import prepare_export
from apps.audit.models import AuditEvent, RetentionPolicy, ScheduledRun, StoredExchange
from apps.audit.privacy import subject_erase, subject_export
from apps.audit.retention import retention_policy_delete, retention_policy_save
from apps.audit.selectors import (
    audit_event_scope,
    audit_tenant_ids,
    exchange_body_allowed,
    exchange_scope,
    subject_bodies_allowed,
)
from apps.audit.services import audit_record
from apps.audit.verify import verify_chain
from apps.tenants import permissions
from apps.tenants.api.permissions import tenant_for_action
from apps.tenants.api.views import ServiceModelViewSet
from atp_site.lib.api_input import IsoDateTimeFilter, LineField
from atp_site.lib.openapi import filterset_parameters

EXPORT_FORMATS = ("csv", "json", "jsonl")
EXPORT_CONTENT_TYPES = {
    "csv": "text/csv",
    "json": "application/json",
    "jsonl": "application/x-ndjson",
}


class FormatIsNotARenderer(DefaultContentNegotiation):
    """Negotiate on Accept only: here `?format=` picks the file format, not a DRF renderer."""

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type


def request_actor(request: Request) -> AuditActor:
    """Who is reading the log, for the audit event the read itself leaves."""
    user = request.user
    session = getattr(request, "session", None)
    return AuditActor(
        user_id=str(user.pk or ""),
        actor=user.get_username(),
        source=AuditEvent.Source.API,
        session_id=session_digest(session.session_key if session else None),
        request_id=getattr(request._request, "request_id", ""),
        ip_address=request.META.get("REMOTE_ADDR") or None,
    )


def _format(request: Request, allowed: tuple[str, ...], default: str) -> str:
    fmt = request.query_params.get("format", default).strip().lower()
    if fmt not in allowed:
        raise ValidationError({"format": f"Must be one of: {', '.join(allowed)}."})
    return fmt


def _valid_filters(request: Request, queryset: QuerySet) -> AuditEventFilterSet:
    filterset = AuditEventFilterSet(request.query_params, queryset=queryset, request=request)
    if not filterset.is_valid():
        raise ValidationError(filterset.errors)
    return filterset


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """Search the audit log, newest first. One event is addressed by its `sequence`."""

    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    ordering_fields = ["sequence", "occurred_at"]
    ordering = ["-sequence"]
    search_fields = ["event_type", "actor", "resource_id", "request_id", "action"]
    lookup_field = "sequence"
    lookup_value_regex = r"[0-9]+"
    # audit.view_auditevent, or tenants.audit_tenant on the tenants whose events are read.
    permission_model = AuditEvent

    def get_queryset(self) -> QuerySet[AuditEvent]:
        return audit_event_scope(user=self.request.user)


class AuditExportView(APIView):
    """Download every event matching the search filters (`format=csv|json|jsonl`).

    The export is unpaginated, in sequence order, and leaves an `audit.exported` event
    naming the filters and the number of rows. CSV cells never start a spreadsheet
    formula; JSON and JSON Lines end with a signed manifest for offline verification
    (apps.audit.exports).
    """

    content_negotiation_class = FormatIsNotARenderer
    renderer_classes = [JSONRenderer]
    permission_model = AuditEvent
    permission_action = "export"

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "format",
                str,
                enum=list(EXPORT_FORMATS),
                default="csv",
                description="csv (a header row, then one event a row), json (an array of "
                "events ending with the signed manifest) or jsonl (one event a line, then "
                "the signed manifest).",
            ),
            *filterset_parameters(AuditEventFilterSet),
        ],
        responses={
            (200, EXPORT_CONTENT_TYPES["csv"]): OpenApiResponse(
                OpenApiTypes.STR, description="The events, as a file to download."
            ),
            (200, EXPORT_CONTENT_TYPES["json"]): PolymorphicProxySerializer(
                component_name="AuditExportRecord",
                serializers=[AuditEventSerializer, ExportManifestSerializer],
                resource_type_field_name=None,
                many=True,
            ),
            (200, EXPORT_CONTENT_TYPES["jsonl"]): OpenApiTypes.STR,
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        fmt = _format(request, EXPORT_FORMATS, "csv")
        scope = audit_event_scope(user=request.user, action="export")
        filterset = _valid_filters(request, scope)
        export = prepare_export(
            user=request.user,
            filters=filterset.filters_value(),
            fmt=fmt,
            actor=request_actor(request),
        )
        response = StreamingHttpResponse(export.stream(), content_type=EXPORT_CONTENT_TYPES[fmt])
        response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
        response["X-ATP-Rows"] = str(export.rows)
        return response


class AuditReportView(APIView):
    """The compliance report of a tenant (or all) for a period, as JSON, CSV or PDF.

    `since` and `until` take ISO 8601 dates or datetimes; a date `until` includes that
    whole day. Downloading a report leaves an `audit.report_exported` event. A per-tenant
    auditor must name one of their tenants.
    """

    content_negotiation_class = FormatIsNotARenderer
    renderer_classes = [JSONRenderer]
    permission_model = AuditEvent
    permission_action = "report"

    @extend_schema(
        parameters=[ReportInputSerializer],
        responses={
            (200, reports.CONTENT_TYPES["json"]): OpenApiResponse(
                ComplianceReportSerializer, description="The report, as a file to download."
            ),
            (200, reports.CONTENT_TYPES["csv"]): OpenApiTypes.STR,
            (200, reports.CONTENT_TYPES["pdf"]): OpenApiTypes.BINARY,
        },
    )
    def get(self, request: Request) -> HttpResponse:
        params = ReportInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data: dict[str, Any] = params.validated_data
        fmt = data["format"]
        if data.get("tenant") is not None:
            data["tenant"] = tenant_for_action(request.user, AuditEvent, "report", data["tenant"])
        elif audit_tenant_ids(user=request.user, action="report") is not None:
            raise ValidationError({"tenant": "Required: you may read only some tenants."})
        report = reports.report_build(
            tenant=data.get("tenant"), since=data["since"], until=data["until"], full=data["full"]
        )
        body = reports.report_render(report, fmt)
        audit_record(
            event_type="audit.report_exported",
            action="export",
            tenant_id=report.tenant["id"] if report.tenant else None,
            resource_type="compliance_report",
            data={
                "format": fmt,
                "since": data["since"].isoformat(),
                "until": data["until"].isoformat(),
                "tenant": report.tenant["slug"] if report.tenant else "",
                "head_sequence": report.verification["head_sequence"],
                "head_hash": report.verification["head_hash"],
            },
            actor=request_actor(request),
        )
        response = HttpResponse(body, content_type=reports.CONTENT_TYPES[fmt])
        filename = reports.report_filename(report, fmt)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class VerifyInputSerializer(serializers.Serializer):
    full = serializers.BooleanField(
        default=False, help_text="Walk the whole chain, not only what is new."
    )


class AuditVerifyView(APIView):
    """Verify the audit chain and report OK with the head, or the first broken link.

    From the latest verified checkpoint; `full=true` walks the whole chain.
    """

    permission_model = AuditEvent
    permission_action = "verify"

    @extend_schema(parameters=[VerifyInputSerializer], responses={200: dict})
    def get(self, request: Request) -> Response:
        params = VerifyInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        return Response(verify_chain(full=params.validated_data["full"]).as_dict())


class SubjectInputSerializer(serializers.Serializer):
    tenant = LineField(max_length=100, help_text="The tenant's slug or id.")
    subject = LineField(
        max_length=256, trim_whitespace=True, help_text="The id the tenant sends as `user`."
    )


def _subject_request(request: Request, action: str) -> tuple[Any, str]:
    """The (tenant, subject) a data-subject request names, once the caller may act on it."""
    data = SubjectInputSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    tenant = tenant_for_action(request.user, AuditEvent, action, data.validated_data["tenant"])
    return tenant, data.validated_data["subject"]


class SubjectExportView(APIView):
    """Everything held about a data subject of one tenant, as JSON (the export is audited).

    Needs `audit.export_data_subject`, or `tenants.export_tenant_subjects` on the tenant.
    Stored bodies are included, decrypted, only for holders of the body permission on the
    tenant, and each one revealed leaves an `exchange.viewed` event.
    """

    permission_model = AuditEvent
    permission_action = "export_subject"

    @extend_schema(request=SubjectInputSerializer, responses={200: dict})
    def post(self, request: Request) -> Response:
        tenant, subject = _subject_request(request, "export_subject")
        bodies = subject_bodies_allowed(user=request.user, tenant=tenant)
        with acting_as(request_actor(request)):
            return Response(subject_export(tenant=tenant, subject=subject, bodies=bodies))


class SubjectEraseView(APIView):
    """Erase a data subject of one tenant; a tombstone event is audited.

    Needs the dedicated `audit.erase_data_subject`, or `tenants.erase_tenant_subjects` on
    the tenant.
    """

    permission_model = AuditEvent
    permission_action = "erase_subject"

    @extend_schema(request=SubjectInputSerializer, responses={200: dict})
    def post(self, request: Request) -> Response:
        tenant, subject = _subject_request(request, "erase_subject")
        with acting_as(request_actor(request)):
            return Response(subject_erase(tenant=tenant, subject=subject))


# --- stored exchanges -------------------------------------------------------------------------


class ExchangeFilterSet(django_filters.FilterSet):
    since = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = StoredExchange
        fields = ["request_id", "tenant_id", "end_user", "model", "classification"]


class ExchangeViewSet(viewsets.ReadOnlyModelViewSet):
    """Stored prompt and response bodies (tenants with `store_bodies` on).

    The list shows metadata to every audit reader, narrowed to their tenants. One
    exchange's decrypted bodies need `audit.view_exchange_body`, or
    `tenants.view_tenant_bodies` on its tenant (403 otherwise); each viewing leaves an
    `exchange.viewed` audit event.
    """

    serializer_class = ExchangeSerializer
    filterset_class = ExchangeFilterSet
    permission_model = StoredExchange
    ordering_fields = ["created_at"]
    ordering = ["-created_at"]
    search_fields: list[str] = []

    def get_queryset(self) -> QuerySet[StoredExchange]:
        if getattr(self, "swagger_fake_view", False):
            return StoredExchange.objects.none()
        return exchange_scope(user=self.request.user)

    @extend_schema(responses={200: ExchangeBodySerializer})
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        exchange = self.get_object()
        if not exchange_body_allowed(user=request.user, exchange=exchange):
            raise PermissionDenied("You may not view stored bodies of this tenant.")
        revealed = exchange_reveal(exchange=exchange, actor=request_actor(request))
        data = {
            **ExchangeSerializer(exchange).data,
            "request_body": revealed.request_body,
            "response_body": revealed.response_body,
            "body_error": revealed.error,
        }
        return Response(data)


# --- retention policies -----------------------------------------------------------------------


class RetentionPolicyViewSet(ServiceModelViewSet):
    """Retention policies per tenant and classification; writes are audited.

    A policy of one tenant needs the permission there (`tenants.manage_tenant_retention`
    on it, or the global model permission); a policy for every tenant the global one. A
    policy on an audit classification (anything but `requests` and `bodies`, blank
    included) also needs the dedicated `audit.change_audit_retention` and may not go below
    ATP_AUDIT_MIN_RETENTION_DAYS.
    """

    serializer_class = RetentionPolicySerializer
    permission_model = RetentionPolicy
    filterset_fields = ["tenant_id", "classification"]
    ordering_fields = ["tenant_id", "classification", "days"]
    search_fields: list[str] = []

    def base_queryset(self) -> QuerySet[RetentionPolicy]:
        return RetentionPolicy.objects.all()

    def _check_tenant(self, tenant_id: Any, action: str) -> None:
        user = self.request.user
        if tenant_id is None:
            if not permissions.may_for_tenant(user, RetentionPolicy, action, None):
                raise PermissionDenied("Only a global permission covers every tenant's policy.")
            return
        tenant_for_action(user, RetentionPolicy, action, str(tenant_id), field="tenant_id")

    def create_object(self, data: dict[str, Any]) -> RetentionPolicy:
        self._check_tenant(data.get("tenant_id"), "add")
        return retention_policy_save(policy=RetentionPolicy(**data), by=self.request.user)

    def update_object(self, instance: RetentionPolicy, data: dict[str, Any]) -> RetentionPolicy:
        if "tenant_id" in data and data["tenant_id"] != instance.tenant_id:
            self._check_tenant(data["tenant_id"], "change")
        for name, value in data.items():
            setattr(instance, name, value)
        return retention_policy_save(policy=instance, by=self.request.user)

    def delete_object(self, instance: RetentionPolicy) -> None:
        retention_policy_delete(policy=instance, by=self.request.user)


class ScheduledRunFilterSet(django_filters.FilterSet):
    task = django_filters.CharFilter(help_text="The job's task name, e.g. costs.rollup_usage.")
    status = django_filters.ChoiceFilter(choices=ScheduledRun.Status.choices)
    since = IsoDateTimeFilter(field_name="started_at", lookup_expr="gte")

    class Meta:
        model = ScheduledRun
        fields: list[str] = []


class ScheduledRunViewSet(viewsets.ReadOnlyModelViewSet):
    """Runs of the periodic jobs, newest first (`task`, `status`, `since` filter them).

    Platform-wide records: global holders of audit.view_scheduledrun only."""

    serializer_class = ScheduledRunSerializer
    filterset_class = ScheduledRunFilterSet
    ordering_fields = ["started_at", "duration_ms"]
    ordering = ["-started_at", "-id"]
    permission_model = ScheduledRun

    def get_queryset(self) -> QuerySet[ScheduledRun]:
        from apps.audit.scheduled import run_list

        return permissions.restrict(run_list(), self.request.user, "view")
