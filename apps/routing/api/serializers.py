"""Serializers of the routes management API."""

from __future__ import annotations

from rest_framework import serializers

from apps.routing.models import Route
from atp_site.lib.api_input import LineField, ModelSerializer


class RouteSerializer(ModelSerializer):
    """A route. The JSON settings are checked key by key by apps.routing.route_services."""

    candidates = serializers.ListField(
        child=LineField(max_length=200),
        required=False,
        help_text="Public model names in order; empty: select by candidate_filter.",
    )
    fallbacks = serializers.ListField(
        child=LineField(max_length=200),
        required=False,
        help_text="Public model names tried after the candidates.",
    )
    candidate_filter = serializers.DictField(
        required=False,
        help_text=(
            "capabilities, regions, providers (lists of strings); min_quality (0..1); "
            "max_input_price, max_output_price (USD per million tokens)."
        ),
    )
    retry = serializers.DictField(
        required=False,
        help_text="max_attempts, initial_backoff_ms, multiplier, max_backoff_ms, jitter.",
    )
    timeouts = serializers.DictField(
        required=False, help_text="connect, first_byte, total: seconds (> 0)."
    )

    class Meta:
        model = Route
        fields = [
            "id",
            "name",
            "description",
            "enabled",
            "strategy",
            "tier",
            "candidates",
            "candidate_filter",
            "fallbacks",
            "retry",
            "timeouts",
            "exploration",
            "exploration_rate",
            "challenger",
            "challenger_share",
            "cache_ttl_seconds",
            "semantic_cache",
            "semantic_threshold",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        # Name uniqueness is checked by the service, which names the field.
        validators: list = []
        extra_kwargs = {"name": {"validators": []}}


# The console's "Try it" box takes as much (apps.routing.forms, which imports this module).
MAX_PROMPT = 20_000


class RouteSimulateInputSerializer(serializers.Serializer):
    """A prompt to rank as `POST /v1/route` would, nothing sent upstream."""

    route = LineField(
        max_length=200, default="auto", help_text="The route (or model) a caller names."
    )
    prompt = serializers.CharField(max_length=MAX_PROMPT, help_text="What a caller would send.")
    hints = serializers.DictField(
        required=False,
        help_text="The request's `atp` object: quality, max_cost_usd, latency_slo_ms, region, "
        "required_capabilities, carbon_aware.",
    )
    max_tokens = serializers.IntegerField(required=False, min_value=1, max_value=1_000_000)
    key = serializers.UUIDField(
        required=False,
        allow_null=True,
        help_text="Rank as this API key would (its allowed models, its tenant's preferences); "
        "omitted: a neutral key that may use every model.",
    )
