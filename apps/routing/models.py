"""The request log (one row per data-plane request, written behind) and routing configuration."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.utils import timezone


class RequestLog(models.Model):
    """What happened to one /v1 request: who asked, what served it, what it cost.

    Foreign keys are plain ids (no database constraint) so that rows queued before a
    tenant, key or deployment was deleted still insert, and so batch inserts never
    wait on referenced rows. Nor do they have an index of their own: the indexes below
    lead with them where a page looks them up, and every index costs each insert.
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
        db_index=False,
        related_name="+",
    )
    api_key = models.ForeignKey(
        "tenants.ApiKey",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
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
        db_index=False,
        related_name="+",
    )
    provider = models.ForeignKey(
        "providers.Provider",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
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
    route = models.CharField(max_length=200, blank=True, help_text="Route that chose the model.")
    decision = models.JSONField(
        null=True, blank=True, help_text="The RouteDecision: ranking, estimates, reasoning."
    )
    task_cluster = models.IntegerField(null=True, blank=True)
    cache = models.CharField(
        max_length=16, blank=True, help_text="Response cache outcome: hit, semantic_hit, miss."
    )
    shadow_of = models.CharField(
        max_length=128, blank=True, help_text="A challenger's mirrored call: the champion request."
    )
    # Governance: the request's data classification, how many values of each entity type
    # were redacted (never the values), and what the policies decided (when any matched).
    classification = models.CharField(max_length=16, blank=True)
    redactions = models.JSONField(default=dict, blank=True)
    policy = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="reqlog_tenant_created"),
            models.Index(fields=["api_key", "-created_at"], name="reqlog_key_created"),
            models.Index(fields=["status", "-created_at"], name="reqlog_status_created"),
            models.Index(fields=["provider", "model", "-created_at"], name="reqlog_provider_model"),
            models.Index(fields=["-created_at"], name="reqlog_created"),
            # The console's filters and exact search, each with the newest-first sort.
            models.Index(fields=["model", "-created_at"], name="reqlog_model_created"),
            models.Index(fields=["route", "-created_at"], name="reqlog_route_created"),
            models.Index(fields=["end_user", "-created_at"], name="reqlog_enduser_created"),
            models.Index(fields=["cost_usd"], name="reqlog_cost"),
            # A champion request's mirrored calls; nearly every row has none, so only those
            # that do are indexed.
            models.Index(
                fields=["shadow_of"], name="reqlog_shadow_of", condition=~models.Q(shadow_of="")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.status}"


class Route(models.Model):
    """A named way of choosing a model: `auto`, `atp/fast`, ... or an admin's route group.

    The built-in routes exist without a row; a row with the same name overrides one and
    keeps its strategy and tier unless it sets them (blank: inherit). A route named like
    a model wraps that model: without candidates or a filter its candidates are that
    model's deployments, and a blank strategy spreads traffic like the bare model does
    (ATP_LOAD_BALANCING). Otherwise candidates are listed (public model names, in order)
    or selected by a filter, and a blank strategy and tier mean score and balanced.
    """

    class Strategy(models.TextChoices):
        SCORE = "score", "Score (quality, cost, latency, errors, carbon)"
        LEARNED = "learned", "Learned per task cluster (bandit)"
        ORDERED = "ordered", "Ordered: first healthy candidate"
        WEIGHTED = "weighted", "Weighted random"
        LEAST_INFLIGHT = "least_inflight", "Least in-flight requests"
        LOWEST_LATENCY = "lowest_latency", "Lowest observed latency"
        CHEAPEST = "cheapest", "Cheapest estimated cost"

    class Tier(models.TextChoices):
        FAST = "fast", "Fast"
        BALANCED = "balanced", "Balanced"
        HIGH = "high", "High"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    candidates = models.JSONField(
        default=list, blank=True, help_text="Public model names in order; empty: use the filter."
    )
    candidate_filter = models.JSONField(
        default=dict,
        blank=True,
        help_text=(
            "Select candidates among all models: capabilities, regions, providers, "
            "min_quality, max_input_price, max_output_price."
        ),
    )
    strategy = models.CharField(
        max_length=16,
        choices=Strategy.choices,
        blank=True,
        default="",
        help_text="Blank: the built-in route's, the wrapped model's balancing, or score.",
    )
    tier = models.CharField(
        max_length=16,
        choices=Tier.choices,
        blank=True,
        default="",
        help_text="Blank: the built-in route's, else balanced.",
    )
    fallbacks = models.JSONField(
        default=list, blank=True, help_text="Public model names tried after the candidates."
    )
    retry = models.JSONField(
        default=dict,
        blank=True,
        help_text="max_attempts, initial_backoff_ms, multiplier, max_backoff_ms, jitter.",
    )
    timeouts = models.JSONField(
        default=dict, blank=True, help_text="connect, first_byte, total (seconds) overrides."
    )
    exploration = models.BooleanField(
        default=True, help_text="Let the learned strategy try models it knows little about."
    )
    exploration_rate = models.FloatField(
        default=0.1, help_text="Upper bound on the share of requests spent exploring."
    )
    challenger = models.CharField(
        max_length=200, blank=True, help_text="Public model name mirrored in the background."
    )
    challenger_share = models.FloatField(
        default=0.0, help_text="Share of traffic (0..1) mirrored to the challenger."
    )
    cache_ttl_seconds = models.PositiveIntegerField(
        default=0, help_text="Exact response cache lifetime; 0 turns the cache off."
    )
    semantic_cache = models.BooleanField(default=False)
    semantic_threshold = models.FloatField(default=0.92)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class BanditArm(models.Model):
    """Persisted learning statistics of one model on one route and task cluster."""

    route = models.CharField(max_length=200)
    cluster = models.IntegerField()
    model = models.CharField(max_length=200)
    pulls = models.FloatField(default=0)
    reward_sum = models.FloatField(default=0)
    reward_sq_sum = models.FloatField(default=0)
    cost_sum = models.FloatField(default=0)
    latency_ms_sum = models.FloatField(default=0)
    failures = models.FloatField(default=0)
    feedback_count = models.FloatField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["route", "cluster", "model"]
        constraints = [
            models.UniqueConstraint(fields=["route", "cluster", "model"], name="bandit_arm_unique")
        ]

    def __str__(self) -> str:
        return f"{self.route}/{self.cluster}/{self.model}"


class LearnedState(models.Model):
    """Any other learned state persisted periodically (e.g. task cluster centroids)."""

    key = models.CharField(max_length=200, unique=True)
    data = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.key


class Feedback(models.Model):
    """A caller's score for one answer (`POST /v1/feedback`); feeds the learned routes."""

    request_id = models.CharField(max_length=128, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
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
    score = models.FloatField()
    comment = models.TextField(blank=True)
    route = models.CharField(max_length=200, blank=True)
    model = models.CharField(max_length=200, blank=True)
    task_cluster = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.request_id} {self.score}"


class ConfigVersion(models.Model):
    """The configuration version every process compares its snapshot with (one row, pk 1).

    Services bump it after each commit the data plane depends on (atp_site.lib.config_version);
    a data-plane process reads it once per ATP_SNAPSHOT_CHECK_SECONDS, from Redis when
    configured (which mirrors this row) or from here, so a change made by any process,
    the CLI included, reaches every other one.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    version = models.BigIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"configuration version {self.version}"
