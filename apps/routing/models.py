"""The request log: one row per data-plane request, written behind the response."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils import timezone


class RequestLog(models.Model):
    """What happened to one /v1 request: who asked, what served it, what it cost.

    Foreign keys are plain ids (no database constraint) so that rows queued before a
    tenant, key or deployment was deleted still insert, and so batch inserts never
    wait on referenced rows.
    """

    class Status(models.TextChoices):
        SUCCESS = "success", "Success"
        ERROR = "error", "Error"
        CANCELLED = "cancelled", "Cancelled"

    request_id = models.CharField(max_length=128, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    endpoint = models.CharField(max_length=64)
    tenant = models.ForeignKey(
        "tenants.Tenant",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    api_key = models.ForeignKey(
        "tenants.ApiKey",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    end_user = models.CharField(max_length=256, blank=True)
    requested_model = models.CharField(max_length=200, blank=True)
    model = models.CharField(max_length=200, blank=True, help_text="Public name that served it.")
    upstream_model = models.CharField(max_length=200, blank=True)
    deployment = models.ForeignKey(
        "providers.ModelDeployment",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    provider = models.ForeignKey(
        "providers.Provider",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    stream = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices)
    http_status = models.PositiveSmallIntegerField()
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cached_input_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    usage_estimated = models.BooleanField(
        default=False, help_text="Tokens were counted locally; the provider reported none."
    )
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal(0))
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Time to first token.")
    error_type = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="reqlog_tenant_created"),
            models.Index(fields=["api_key", "-created_at"], name="reqlog_key_created"),
            models.Index(fields=["status", "-created_at"], name="reqlog_status_created"),
            models.Index(fields=["provider", "model", "-created_at"], name="reqlog_provider_model"),
            models.Index(fields=["-created_at"], name="reqlog_created"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.status}"
