"""Management API of the audit log: search, export, compliance report, verification."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Max, QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers, viewsets
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
    ExchangeBodySerializer,
    ExchangeSerializer,
    ReportInputSerializer,
    RetentionPolicySerializer,
)
from apps.audit.bodies import exchange_reveal
from apps.audit.context import AuditActor, acting_as, session_digest
from apps.audit.exports import export_manifest, export_stream
from apps.audit.models import AuditEvent, RetentionPolicy, StoredExchange
from apps.audit.privacy import subject_erase, subject_export
from apps.audit.retention import retention_policy_delete, retention_policy_save
from apps.audit.selectors import (
    audit_event_list,
    audit_event_scope,
    audit_reader,
    audit_tenant_ids,
    exchange_body_allowed,
    exchange_scope,
)
from apps.audit.services import audit_record
from apps.audit.verify import verify_chain
from apps.tenants.api.views import ServiceModelViewSet

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


class IsAuditReader(permissions.BasePermission):
    """Staff, superusers, and users granted `tenants.audit_tenant` on at least one tenant.

    What each of them then sees is narrowed by apps.audit.selectors.audit_event_scope.
    """

    message = "You may not read the audit log."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and audit_reader(user))


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


@extend_schema(
    parameters=[
        OpenApiParameter("event_type_prefix", str, description="event_type starts with this.")
    ]
)
class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """Search the audit log, newest first. One event is addressed by its `sequence`."""

    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    ordering_fields = ["sequence", "occurred_at"]
    ordering = ["-sequence"]
    search_fields = ["event_type", "actor", "resource_id", "request_id", "action"]
    lookup_field = "sequence"
    lookup_value_regex = r"[0-9]+"
    permission_classes = [IsAuditReader]

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
    permission_classes = [IsAuditReader]

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=list(EXPORT_FORMATS))],
        responses={200: OpenApiTypes.BINARY},
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        fmt = _format(request, EXPORT_FORMATS, "csv")
        filterset = _valid_filters(request, audit_event_scope(user=request.user))
        filters = filterset.filters_value()
        # Before the set is fixed: a head signed before this moment is covered by it.
        exported_at = timezone.now()
        events = audit_event_list(filters, user=request.user)
        # Fix the exported set to what exists now, so the row count recorded below is
        # exactly what is streamed, and the export's own event is not part of it.
        last = events.aggregate(last=Max("sequence"))["last"] or 0
        events = events.filter(sequence__lte=last).order_by("sequence")
        rows = events.count()
        manifest = None
        if fmt != "csv":
            complete = not filters.as_dict() and audit_tenant_ids(user=request.user) is None
            manifest = export_manifest(
                fmt=fmt, filters=filters.as_dict(), complete=complete, exported_at=exported_at
            )
        audit_record(
            event_type="audit.exported",
            action="export",
            resource_type="audit_event",
            data={"filters": filters.as_dict(), "format": fmt, "rows": rows, "last": last},
            actor=request_actor(request),
        )
        response = StreamingHttpResponse(
            export_stream(events, fmt, manifest=manifest), content_type=EXPORT_CONTENT_TYPES[fmt]
        )
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="atp-audit-{stamp}.{fmt}"'
        response["X-ATP-Rows"] = str(rows)
        return response


class AuditReportView(APIView):
    """The compliance report of a tenant (or all) for a period, as JSON, CSV or PDF.

    `since` and `until` take ISO 8601 dates or datetimes; a date `until` includes that
    whole day. Downloading a report leaves an `audit.report_exported` event. A per-tenant
    auditor must name one of their tenants.
    """

    content_negotiation_class = FormatIsNotARenderer
    renderer_classes = [JSONRenderer]
    permission_classes = [IsAuditReader]

    @extend_schema(parameters=[ReportInputSerializer], responses={200: OpenApiTypes.BINARY})
    def get(self, request: Request) -> HttpResponse:
        params = ReportInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data: dict[str, Any] = params.validated_data
        fmt = data["format"]
        scope = audit_tenant_ids(user=request.user)
        if scope is not None:
            if data.get("tenant") is None:
                raise ValidationError({"tenant": "Required: you may read only some tenants."})
            if data["tenant"].pk not in scope:
                raise PermissionDenied("You may not read this tenant's audit records.")
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

    permission_classes = [IsAuditReader]

    @extend_schema(parameters=[VerifyInputSerializer], responses={200: dict})
    def get(self, request: Request) -> Response:
        params = VerifyInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        return Response(verify_chain(full=params.validated_data["full"]).as_dict())


class SubjectInputSerializer(serializers.Serializer):
    subject = serializers.CharField(max_length=256, trim_whitespace=True)


class SubjectExportView(APIView):
    """Everything held about a data subject, as JSON (the export is audited)."""

    @extend_schema(request=SubjectInputSerializer, responses={200: dict})
    def post(self, request: Request) -> Response:
        data = SubjectInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with acting_as(request_actor(request)):
            return Response(subject_export(subject=data.validated_data["subject"]))


class SubjectEraseView(APIView):
    """Erase a data subject from the request log; a tombstone event is audited."""

    @extend_schema(request=SubjectInputSerializer, responses={200: dict})
    def post(self, request: Request) -> Response:
        data = SubjectInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with acting_as(request_actor(request)):
            return Response(subject_erase(subject=data.validated_data["subject"]))


# --- stored exchanges -------------------------------------------------------------------------


class ExchangeFilterSet(django_filters.FilterSet):
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

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
    permission_classes = [IsAuditReader]
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
    """Retention policies per tenant and classification (staff only); writes are audited."""

    serializer_class = RetentionPolicySerializer
    filterset_fields = ["tenant_id", "classification"]
    ordering_fields = ["tenant_id", "classification", "days"]
    search_fields: list[str] = []

    def get_queryset(self) -> QuerySet[RetentionPolicy]:
        return RetentionPolicy.objects.all()

    def create_object(self, data: dict[str, Any]) -> RetentionPolicy:
        return retention_policy_save(policy=RetentionPolicy(**data))

    def update_object(self, instance: RetentionPolicy, data: dict[str, Any]) -> RetentionPolicy:
        for name, value in data.items():
            setattr(instance, name, value)
        return retention_policy_save(policy=instance)

    def delete_object(self, instance: RetentionPolicy) -> None:
        retention_policy_delete(policy=instance)
