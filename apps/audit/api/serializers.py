"""Serializers of the audit log's management API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.audit.models import AuditEvent, RetentionPolicy, ScheduledRun, StoredExchange
from apps.audit.reports import FORMATS, parse_period_bound
from atp_site.lib.api_input import LineField, ModelSerializer


class AuditEventSerializer(ModelSerializer):
    """Every field of an event. Hashes, signature and key id are evidence, not secrets."""

    class Meta:
        model = AuditEvent
        fields = [
            "sequence",
            "event_id",
            "event_type",
            "occurred_at",
            "tenant_id",
            "user_id",
            "actor",
            "source",
            "session_id",
            "request_id",
            "ip_address",
            "resource_type",
            "resource_id",
            "action",
            "outcome",
            "data",
            "before",
            "after",
            "classification",
            "retention_days",
            "prev_hash",
            "hash",
            "key_id",
            "signature",
        ]
        read_only_fields = fields


@extend_schema_field(
    {
        "anyOf": [
            {"type": "string", "format": "date"},
            {"type": "string", "format": "date-time"},
        ]
    }
)
class PeriodBoundField(serializers.Field):
    """An ISO 8601 date or datetime; a date `until` means the end of that day."""

    default_error_messages = {"invalid": "Enter an ISO 8601 date or datetime."}

    def __init__(self, *, end: bool, **kwargs: Any) -> None:
        self.end = end
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> datetime:
        bound = parse_period_bound(str(data), end=self.end)
        if bound is None:
            self.fail("invalid")
        return bound

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()


class ReportInputSerializer(serializers.Serializer):
    tenant = LineField(
        required=False, allow_blank=True, help_text="Slug or UUID; all tenants when absent."
    )
    since = PeriodBoundField(end=False)
    until = PeriodBoundField(end=True)
    format = serializers.ChoiceField(choices=FORMATS, default="json")
    full = serializers.BooleanField(
        default=False, help_text="Verify the whole chain, not only what is new."
    )

    def validate_tenant(self, value: str) -> str | None:
        # Resolved by the view, which also decides whether the caller may see it.
        return value.strip() or None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": "Must be later than 'since'."})
        return attrs


class ExchangeSerializer(ModelSerializer):
    """A stored exchange's metadata; the bodies are only in ExchangeBodySerializer."""

    class Meta:
        model = StoredExchange
        fields = [
            "id",
            "request_id",
            "tenant_id",
            "api_key_id",
            "end_user",
            "endpoint",
            "model",
            "http_status",
            "created_at",
            "classification",
        ]
        read_only_fields = fields


class ExchangeBodySerializer(ExchangeSerializer):
    """A stored exchange with its bodies decrypted (each read is audited)."""

    request_body = serializers.JSONField(read_only=True, allow_null=True)
    response_body = serializers.JSONField(read_only=True, allow_null=True)
    body_error = serializers.CharField(read_only=True, allow_blank=True)

    class Meta(ExchangeSerializer.Meta):
        fields = [*ExchangeSerializer.Meta.fields, "request_body", "response_body", "body_error"]
        read_only_fields = fields


class RetentionPolicySerializer(ModelSerializer):
    """A retention policy. `tenant_id` empty: every tenant; `classification` empty: any."""

    tenant_id = serializers.UUIDField(required=False, allow_null=True, default=None)
    classification = LineField(max_length=32, required=False, allow_blank=True, default="")
    days = serializers.IntegerField(min_value=1, max_value=36500)

    class Meta:
        model = RetentionPolicy
        fields = ["id", "tenant_id", "classification", "days", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        # Uniqueness per tenant and classification is checked by the service, naming a field.
        validators: list = []

    def validate_classification(self, value: str) -> str:
        return value.strip()


class ReportTenantSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    slug = serializers.CharField()
    name = serializers.CharField()


class ComplianceReportSerializer(serializers.Serializer):
    """The JSON compliance report (apps.audit.reports.ComplianceReport.as_dict)."""

    tenant = ReportTenantSerializer(allow_null=True, help_text="Null: all tenants.")
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    generated_at = serializers.DateTimeField()
    requests_by_classification = serializers.DictField(child=serializers.IntegerField())
    requests_by_status = serializers.DictField(child=serializers.IntegerField())
    policy_denials = serializers.DictField()
    redactions_by_entity = serializers.DictField(child=serializers.IntegerField())
    budget_events = serializers.DictField()
    spend = serializers.DictField()
    admin_changes = serializers.DictField()
    access = serializers.DictField()
    verification = serializers.DictField(
        help_text="The chain's verification: status (ok or broken), head and checkpoint."
    )


class ExportManifestSerializer(serializers.Serializer):
    """The last record of a JSON or JSON Lines export: its signed manifest."""

    atp_export = serializers.DictField(
        help_text="The export's filters, row count, first and last sequence, last hash and "
        "events digest, signed with the audit head key (verify offline with its public key)."
    )


class ScheduledRunSerializer(ModelSerializer):
    """One run of a periodic job (apps.audit.scheduled)."""

    class Meta:
        model = ScheduledRun
        fields = [
            "id",
            "task",
            "status",
            "started_at",
            "finished_at",
            "duration_ms",
            "attempt",
            "result",
            "error",
            "retry_in",
            "task_id",
            "hostname",
            "pid",
        ]
        read_only_fields = fields
