"""Serializers of the tenants management API; key hashes never leave the server."""

from __future__ import annotations

from rest_framework import serializers

from apps.tenants.models import AdminToken, ApiKey, Tenant
from atp_site.lib.api_input import LineField, ModelSerializer


class TenantSerializer(ModelSerializer):
    class Meta:
        model = Tenant
        fields = [
            "id",
            "slug",
            "name",
            "is_active",
            "store_bodies",
            "cost_mode",
            "preferred_regions",
            "carbon_aware",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]


class TenantBriefSerializer(ModelSerializer):
    class Meta:
        model = Tenant
        fields = ["id", "slug", "name"]


class ApiKeySerializer(ModelSerializer):
    allowed_models = serializers.ListField(child=LineField(max_length=200), required=False)
    is_revoked = serializers.BooleanField(read_only=True)
    is_expired = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "tenant",
            "name",
            "prefix",
            "allowed_models",
            "expires_at",
            "revoked_at",
            "is_revoked",
            "is_expired",
            "created_at",
            "created_by",
        ]
        read_only_fields = ["id", "prefix", "revoked_at", "created_at", "created_by"]
        # Name uniqueness among live keys is checked by the service, which names the field.
        validators: list = []


class ApiKeyUpdateSerializer(ApiKeySerializer):
    """A key stays with its tenant; only its name, allow-list and expiry change."""

    class Meta(ApiKeySerializer.Meta):
        read_only_fields = [*ApiKeySerializer.Meta.read_only_fields, "tenant"]


class ApiKeyCreatedSerializer(ApiKeySerializer):
    """A new key with its plaintext, which is shown in this one response only."""

    key = serializers.CharField(read_only=True, help_text="The key; it is not shown again.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class AdminTokenSerializer(ModelSerializer):
    class Meta:
        model = AdminToken
        fields = ["id", "name", "prefix", "expires_at", "revoked_at", "last_used_at", "created_at"]
        read_only_fields = ["id", "prefix", "revoked_at", "last_used_at", "created_at"]


class AdminTokenCreatedSerializer(AdminTokenSerializer):
    """A new admin token with its plaintext, which is shown in this one response only."""

    token = serializers.CharField(read_only=True, help_text="The token; it is not shown again.")

    class Meta(AdminTokenSerializer.Meta):
        fields = [*AdminTokenSerializer.Meta.fields, "token"]
