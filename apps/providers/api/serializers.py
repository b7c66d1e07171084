"""Serializers of the providers management API; provider credentials are write-only."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_basic_type
from drf_spectacular.types import OpenApiTypes
from rest_framework import serializers

from apps.providers.credentials import env_reference_error
from apps.providers.models import Capability, ModelDeployment, Provider
from apps.providers.selectors import provider_list
from apps.providers.services import PRICE_FIELDS
from atp_site.lib.api_input import LineField, ModelSerializer


class ProviderSerializer(ModelSerializer):
    api_key = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        allow_null=True,
        style={"input_type": "password"},
        help_text="Stored encrypted and never returned. Empty or null removes the stored key.",
    )
    has_api_key = serializers.BooleanField(source="has_stored_api_key", read_only=True)

    class Meta:
        model = Provider
        fields = [
            "id",
            "name",
            "kind",
            "base_url",
            "api_key",
            "has_api_key",
            "api_key_env",
            "region",
            "connect_timeout",
            "first_byte_timeout",
            "total_timeout",
            "options",
            "enabled",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {
            "api_key_env": {
                "help_text": "An environment variable holding the key: a name ending in "
                "_API_KEY or starting with ATP_PROVIDER_ (ATP_PROVIDER_ENV_ALLOW adds patterns)."
            }
        }

    def validate_api_key_env(self, value: str) -> str:
        value = (value or "").strip()
        if value and (problem := env_reference_error(value)):
            raise serializers.ValidationError(problem)
        return value


class ProviderBriefSerializer(ModelSerializer):
    class Meta:
        model = Provider
        fields = ["id", "name", "kind"]


class ProviderBriefField(serializers.PrimaryKeyRelatedField):
    """Written as a provider id, read back as a brief provider object."""

    def use_pk_only_optimization(self) -> bool:
        return False

    def to_representation(self, value: Provider) -> dict[str, Any]:
        return ProviderBriefSerializer(value).data

    def get_choices(self, cutoff: int | None = None) -> dict[str, str]:
        # The default keys choices by to_representation(), which is a dict here.
        queryset = self.get_queryset()
        if cutoff is not None:
            queryset = queryset[:cutoff]
        return {str(p.pk): self.display_value(p) for p in queryset}


class ProviderBriefFieldSchema(OpenApiSerializerFieldExtension):
    """In the OpenAPI schema, a ProviderBriefField is a provider id in requests and a
    brief provider object in responses."""

    target_class = ProviderBriefField

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        if direction == "request":
            return build_basic_type(OpenApiTypes.UUID)
        return auto_schema.resolve_serializer(ProviderBriefSerializer, direction).ref


class DeploymentSerializer(ModelSerializer):
    provider = ProviderBriefField(queryset=provider_list())
    aliases = serializers.ListField(child=LineField(max_length=200), required=False)
    capabilities = serializers.ListField(
        child=serializers.ChoiceField(choices=Capability.choices), required=False
    )

    class Meta:
        model = ModelDeployment
        fields = [
            "id",
            "provider",
            "public_name",
            "upstream_model",
            "aliases",
            "input_price",
            "output_price",
            "cached_input_price",
            "cache_write_price",
            "reasoning_price",
            "context_window",
            "max_output_tokens",
            "capabilities",
            "quality_score",
            "region",
            "weight",
            "enabled",
            "listed",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        # Prices are decimal strings ("0.150000", USD per million tokens): Django REST
        # framework's default for decimal fields, kept so no digit is lost to a float.
        extra_kwargs = {
            "quality_score": {"max_value": 1.0},
            **{
                name: {
                    "help_text": "USD per million tokens, as an exact decimal string.",
                    # No default for the main prices: never free by omission.
                    "required": name in ("input_price", "output_price"),
                }
                for name in (
                    "input_price",
                    "output_price",
                    "cached_input_price",
                    "cache_write_price",
                    "reasoning_price",
                )
            },
        }
        # Uniqueness per provider is checked by the service, which names the field.
        validators: list = []


class DeploymentUpdateSerializer(DeploymentSerializer):
    """A deployment stays with its provider."""

    provider = ProviderBriefField(read_only=True)


class DeploymentPricesSerializer(ModelSerializer):
    """Prices alone (USD per million tokens, exact decimal strings); a price left out keeps
    its value."""

    class Meta:
        model = ModelDeployment
        fields = list(PRICE_FIELDS)
        extra_kwargs = {name: {"required": False} for name in PRICE_FIELDS}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("Give at least one price.")
        return attrs


class ProviderTestResultSerializer(serializers.Serializer):
    """One connectivity test: the upstream's status, how long it took, and why it failed."""

    provider = serializers.UUIDField(source="provider_id")
    status = serializers.CharField(help_text="up, degraded or down")
    latency_ms = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True, help_text="Never holds the provider's key.")
    checked_at = serializers.DateTimeField()
