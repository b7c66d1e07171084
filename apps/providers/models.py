"""Providers (upstream endpoints with credentials) and the model deployments they serve."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from apps.providers.credentials import env_reference_error
from atp_site.lib import crypto


class Provider(models.Model):
    """One upstream endpoint speaking one wire protocol, with its credentials and timeouts."""

    class Kind(models.TextChoices):
        OPENAI = "openai", "OpenAI"
        OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible server"
        ANTHROPIC = "anthropic", "Anthropic"
        GEMINI = "gemini", "Google Gemini"
        OLLAMA = "ollama", "Ollama"
        SIMULATOR = "simulator", "Built-in simulator"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.SlugField(max_length=100, unique=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    base_url = models.URLField(max_length=500, blank=True)
    # Credentials: either encrypted at rest here, or the name of an environment variable
    # read when the data plane builds its snapshot (`env:NAME` in config files).
    api_key_encrypted = models.TextField(blank=True, editable=False)
    api_key_env = models.CharField(max_length=200, blank=True)
    region = models.CharField(max_length=64, blank=True)
    connect_timeout = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.01)])
    first_byte_timeout = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.01)]
    )
    total_timeout = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.01)])
    options = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            # Dedicated: a new URL receives the provider's key, and a credential source can
            # point at the server's environment.
            ("change_provider_credentials", "Can change a provider's base URL and credentials"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.kind != self.Kind.SIMULATOR and not self.base_url:
            raise ValidationError({"base_url": "A base URL is required for this provider kind."})
        if self.api_key_env and (problem := env_reference_error(self.api_key_env)):
            raise ValidationError({"api_key_env": problem})

    def set_api_key(self, plaintext: str) -> None:
        self.api_key_encrypted = crypto.encrypt(plaintext)

    @property
    def has_stored_api_key(self) -> bool:
        return bool(self.api_key_encrypted)


class Capability(models.TextChoices):
    CHAT = "chat", "Chat"
    EMBEDDINGS = "embeddings", "Embeddings"
    TOOLS = "tools", "Tools"
    VISION = "vision", "Vision"
    JSON = "json", "JSON mode"
    STREAMING = "streaming", "Streaming"


PRICE = {"max_digits": 12, "decimal_places": 6, "validators": [MinValueValidator(Decimal(0))]}


class ModelDeployment(models.Model):
    """A model as callers name it, served by one provider under its upstream name.

    An unlisted deployment (`listed` off) is hidden from callers: absent from /v1/models and
    not callable by its own names, but routes may still name it, so a route can put its
    own fallbacks, retries, timeouts and cache in front of it under one public name.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="deployments")
    public_name = models.CharField(max_length=200)
    upstream_model = models.CharField(max_length=200)
    aliases = models.JSONField(default=list, blank=True)
    # Prices in USD per million tokens.
    input_price = models.DecimalField(default=Decimal(0), **PRICE)
    output_price = models.DecimalField(default=Decimal(0), **PRICE)
    cached_input_price = models.DecimalField(null=True, blank=True, **PRICE)
    cache_write_price = models.DecimalField(null=True, blank=True, **PRICE)
    reasoning_price = models.DecimalField(null=True, blank=True, **PRICE)
    context_window = models.PositiveIntegerField(default=128_000)
    max_output_tokens = models.PositiveIntegerField(null=True, blank=True)
    capabilities = models.JSONField(default=list, blank=True)
    quality_score = models.FloatField(default=0.5, validators=[MinValueValidator(0.0)])
    region = models.CharField(max_length=64, blank=True)
    weight = models.PositiveIntegerField(default=100)
    enabled = models.BooleanField(default=True)
    listed = models.BooleanField(
        default=True,
        help_text=(
            "Shown in GET /v1/models and callable by its own name. Off: reachable only "
            "through routes (candidates, fallbacks, challengers, or a route of this name)."
        ),
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["public_name", "provider__name"]
        permissions = [
            # Prices alone, for whoever keeps the price list (the cost-admin role) without
            # changing how models are served.
            ("change_deployment_prices", "Can change a model deployment's prices"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "public_name"], name="deployment_unique_name_per_provider"
            ),
            models.CheckConstraint(
                condition=models.Q(quality_score__gte=0) & models.Q(quality_score__lte=1),
                name="deployment_quality_between_0_and_1",
            ),
        ]
        indexes = [models.Index(fields=["public_name"], name="deployment_public_name")]

    def __str__(self) -> str:
        return f"{self.public_name} @ {self.provider_id}"

    def clean(self) -> None:
        if not isinstance(self.aliases, list) or not all(isinstance(a, str) for a in self.aliases):
            raise ValidationError({"aliases": "Aliases must be a list of names."})
        valid = set(Capability.values)
        if not isinstance(self.capabilities, list) or not set(self.capabilities) <= valid:
            raise ValidationError(
                {"capabilities": f"Capabilities must be a list drawn from {sorted(valid)}."}
            )


class HealthCheck(models.Model):
    """One probe of a provider by the periodic health job; the newest per provider is its
    current health, and a bounded history (ATP_HEALTH_HISTORY rows) is kept behind it."""

    class Status(models.TextChoices):
        UP = "up", "Up"
        DEGRADED = "degraded", "Degraded"
        DOWN = "down", "Down"

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="health_checks")
    status = models.CharField(max_length=16, choices=Status.choices)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    checked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-checked_at"]
        indexes = [
            # The latest check per provider, and trimming each provider's history.
            models.Index(fields=["provider", "-checked_at"], name="healthcheck_provider_latest"),
        ]

    def __str__(self) -> str:
        return f"{self.provider_id} {self.status} at {self.checked_at:%Y-%m-%d %H:%M:%S}"
