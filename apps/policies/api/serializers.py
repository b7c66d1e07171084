"""Serializers of the policies management API. The rule language is checked by
apps.policies.validation in the services; these only shape the JSON."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.policies.models import Policy
from apps.tenants.models import Tenant
from atp_site.lib.api_input import LineField, ModelSerializer


class PolicySerializer(ModelSerializer):
    """A policy of one tenant (`tenant` set) or of every tenant (`tenant` null). `scope`
    and `rules` follow docs/policies.md; `warnings` lists what validation found that does
    not stop a save (unreachable rules)."""

    tenant = serializers.PrimaryKeyRelatedField(
        queryset=Tenant.objects.all(),
        required=False,
        allow_null=True,
        help_text="The tenant whose requests it governs; null: every tenant's.",
    )
    tenant_slug = serializers.SerializerMethodField()
    scope = serializers.JSONField(
        required=False,
        help_text='{"projects": [...], "keys": [...], "groups": [...], "classifications": '
        "[...]}; an absent or empty list: all.",
    )
    rules = serializers.JSONField(
        help_text='[{"id", "description", "when": [{"attr", "op", "value"}], "effect": {...}}]'
    )
    warnings = serializers.SerializerMethodField()

    class Meta:
        model = Policy
        fields = [
            "id",
            "tenant",
            "tenant_slug",
            "name",
            "description",
            "enabled",
            "mode",
            "priority",
            "scope",
            "rules",
            "version",
            "warnings",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "version", "created_at", "updated_at"]
        # Name uniqueness per tenant is checked by the service (409 naming the field).
        validators: list = []

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_tenant_slug(self, policy: Policy) -> str | None:
        return policy.tenant.slug if policy.tenant_id else None

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_warnings(self, policy: Policy) -> list[dict[str, str]]:
        return list(getattr(policy, "warnings", []) or [])


class PolicyUpdateSerializer(PolicySerializer):
    """A policy stays with its tenant; delete and create it to move it."""

    tenant = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)


class ValidateInputSerializer(serializers.Serializer):
    """A policy not saved, checked as it would be before a save (values are taken as sent,
    so validation can say what is wrong with each)."""

    tenant = LineField(
        required=False,
        allow_blank=True,
        help_text="Slug or id of the draft's tenant (none: a global draft); its policies "
        "and the global ones are what unreachable rules are judged against.",
    )
    id = serializers.IntegerField(required=False, help_text="The policy the draft replaces.")
    name = serializers.JSONField(required=False)
    description = serializers.JSONField(required=False)
    enabled = serializers.JSONField(required=False)
    mode = serializers.JSONField(required=False)
    priority = serializers.JSONField(required=False)
    scope = serializers.JSONField(required=False)
    rules = serializers.JSONField(required=False)


class SimulateInputSerializer(serializers.Serializer):
    request = serializers.DictField(
        help_text="The sample request: tenant, project, key, end_user, role, groups, "
        "endpoint, classification, entities, tokens, cost_usd, hour, weekday, model, hints."
    )
    tenant = LineField(required=False, allow_blank=True, help_text="Slug or id.")
    policies = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        max_length=100,
        help_text="Drafts evaluated in place of the stored policies of the same name.",
    )


class ImpactInputSerializer(serializers.Serializer):
    policy = serializers.DictField(help_text="The draft to preview.")
    tenant = LineField(required=False, allow_blank=True, help_text="Slug or id; none: global.")
    last = serializers.IntegerField(min_value=1, max_value=10_000, default=1000)


class ProblemSerializer(serializers.Serializer):
    path = serializers.CharField()
    code = serializers.CharField()
    message = serializers.CharField()
    severity = serializers.ChoiceField(choices=["error", "warning"])


class ValidateOutputSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    problems = ProblemSerializer(many=True)
