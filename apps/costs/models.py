"""Rate limits, budgets, budget alerts and the usage ledger.

Limits and budgets are configuration: the data plane reads them from its snapshot
(apps.costs.limits compiles them) and counts against them in Redis or memory
(apps.costs.admission). The ledger is written behind, like the request log.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.tenants.models import Plan, validate_time_zone


class Scope(models.TextChoices):
    PLAN = "plan", "Plan"
    TENANT = "tenant", "Tenant"
    PROJECT = "project", "Project"
    KEY = "key", "API key"


class ScopedQuerySet(models.QuerySet):
    def for_tenants(self, tenant_ids):
        return self.filter(tenant_id__in=tenant_ids)


class Scoped(models.Model):
    """What a limit or budget applies to: a tenant, one of its projects or keys (and, for
    limits, every key on a plan). `tenant` is set for every scope but a plan's, so that
    tenant permissions cover the row."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    scope = models.CharField(max_length=16, choices=Scope.choices)
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    project = models.ForeignKey(
        "tenants.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    api_key = models.ForeignKey(
        "tenants.ApiKey", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        abstract = True

    def clean_scope(self) -> None:
        """Exactly the fields the scope needs, all of one tenant."""
        scope = self.scope
        wanted = {
            Scope.PLAN: (),
            Scope.TENANT: ("tenant",),
            Scope.PROJECT: ("tenant", "project"),
            Scope.KEY: ("tenant", "api_key"),
        }.get(scope)
        if wanted is None:
            raise ValidationError({"scope": f"Unknown scope '{scope}'."})
        for field in ("tenant", "project", "api_key"):
            present = getattr(self, f"{field}_id") is not None
            if field in wanted and not present:
                raise ValidationError(
                    {field: f"A {scope} scope needs a {field.replace('_', ' ')}."}
                )
            if field not in wanted and present and field != "tenant":
                raise ValidationError(
                    {field: f"A {scope} scope takes no {field.replace('_', ' ')}."}
                )
        if scope == Scope.PLAN and self.tenant_id is not None:
            raise ValidationError({"tenant": "A plan scope applies to every tenant."})
        if self.project_id is not None and self.project.tenant_id != self.tenant_id:
            raise ValidationError({"project": "The project belongs to another tenant."})
        if self.api_key_id is not None and self.api_key.tenant_id != self.tenant_id:
            raise ValidationError({"api_key": "The API key belongs to another tenant."})

    @property
    def target_label(self) -> str:
        if self.scope == Scope.PLAN:
            return f"plan {getattr(self, 'plan', '')}"
        if self.scope == Scope.PROJECT:
            return f"project {self.project}"
        if self.scope == Scope.KEY:
            return f"key {self.api_key.name if self.api_key_id else ''}"
        return f"tenant {self.tenant.slug if self.tenant_id else ''}"


class RateLimit(Scoped):
    """Requests per minute, tokens per minute, concurrent requests and cost per hour for
    one scope. Empty fields do not limit. Every limit that applies to a request is checked;
    the tightest decides. A tenant's row holds its resource limits."""

    plan = models.CharField(max_length=16, choices=Plan.choices, blank=True)
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_minute = models.PositiveBigIntegerField(null=True, blank=True)
    max_concurrent = models.PositiveIntegerField(null=True, blank=True)
    cost_per_hour_usd = models.DecimalField(
        max_digits=14,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
    )

    class Meta:
        ordering = ["scope", "tenant", "plan"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan"], condition=Q(scope="plan"), name="ratelimit_one_per_plan"
            ),
            models.UniqueConstraint(
                fields=["tenant"], condition=Q(scope="tenant"), name="ratelimit_one_per_tenant"
            ),
            models.UniqueConstraint(
                fields=["project"], condition=Q(scope="project"), name="ratelimit_one_per_project"
            ),
            models.UniqueConstraint(
                fields=["api_key"], condition=Q(scope="key"), name="ratelimit_one_per_key"
            ),
        ]

    def __str__(self) -> str:
        return f"limits of {self.target_label}"

    def clean(self) -> None:
        self.clean_scope()
        if self.scope == Scope.PLAN and not self.plan:
            raise ValidationError({"plan": "Name the plan these limits apply to."})
        if self.scope != Scope.PLAN and self.plan:
            raise ValidationError({"plan": "Only a plan scope names a plan."})


class Budget(Scoped):
    """Spend allowed to a tenant, project or key per calendar period, in USD."""

    class Period(models.TextChoices):
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"
        MONTHLY = "monthly", "Monthly"
        TOTAL = "total", "Total (never resets)"

    class Action(models.TextChoices):
        BLOCK = "block", "Block requests"
        DOWNGRADE = "downgrade", "Downgrade to a cheaper model or route"
        ALERT = "alert", "Alert only"

    name = models.CharField(max_length=200)
    period = models.CharField(max_length=16, choices=Period.choices, default=Period.MONTHLY)
    limit_usd = models.DecimalField(
        max_digits=14, decimal_places=6, validators=[MinValueValidator(Decimal(0))]
    )
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_time_zone],
        help_text="IANA time zone of the period's boundaries (empty: the tenant's, else UTC).",
    )
    thresholds = models.JSONField(
        default=list, blank=True, help_text="Alert at these percentages of the limit."
    )
    action = models.CharField(max_length=16, choices=Action.choices, default=Action.BLOCK)
    downgrade_to = models.CharField(
        max_length=200, blank=True, help_text="Model or route used once the budget is spent."
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["tenant", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="budget_unique_name"),
            models.CheckConstraint(condition=~Q(scope="plan"), name="budget_not_on_plan"),
        ]

    DEFAULT_THRESHOLDS = (50, 80, 100)

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.scope == Scope.PLAN:
            raise ValidationError({"scope": "Budgets apply to a tenant, a project or a key."})
        self.clean_scope()
        marks = self.thresholds
        if not isinstance(marks, list) or not all(
            isinstance(m, int | float) and not isinstance(m, bool) and 0 < m <= 1000 for m in marks
        ):
            raise ValidationError(
                {"thresholds": "Give a list of percentages between 0 and 1000, e.g. [50, 80, 100]."}
            )
        self.thresholds = sorted({int(m) if float(m).is_integer() else m for m in marks})
        if self.action == self.Action.DOWNGRADE and not self.downgrade_to.strip():
            raise ValidationError(
                {"downgrade_to": "A downgrading budget names the model or route to use."}
            )

    @property
    def effective_thresholds(self) -> list:
        return list(self.thresholds) if self.thresholds else list(self.DEFAULT_THRESHOLDS)


class BudgetAlert(models.Model):
    """A budget crossed one of its thresholds in one period. The unique constraint makes
    each alert, and its notifications, happen once per threshold per period."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    period_start = models.DateTimeField()
    threshold = models.FloatField()
    spent_usd = models.DecimalField(max_digits=18, decimal_places=8)
    limit_usd = models.DecimalField(max_digits=14, decimal_places=6)
    created_at = models.DateTimeField(default=timezone.now)
    notified_at = models.DateTimeField(null=True, blank=True)
    notify_attempts = models.PositiveIntegerField(default=0)
    # Notifier ids this alert reached: a retry sends only to the others.
    delivered_to = models.JSONField(default=list, blank=True)
    notify_error = models.TextField(blank=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["budget", "period_start", "threshold"], name="budgetalert_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.budget} at {self.threshold:g}%"


class Notifier(models.Model):
    """Where budget alerts go: e-mail through Django's mail backend, or a webhook whose
    body is signed with HMAC-SHA256 (header `X-ATP-Signature: sha256=<hex>`)."""

    class Kind(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Signed webhook"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # None: alerts of every tenant (platform notifiers).
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    target = models.CharField(
        max_length=2000, help_text="E-mail addresses (comma-separated) or the webhook's URL."
    )
    secret = models.CharField(
        max_length=200, blank=True, help_text="Webhook signing secret (never shown again)."
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class UsageRecord(models.Model):
    """The ledger: one row per settled request that was served (a cache hit included, at
    no cost). Plain ids, as on the request log, so queued rows always insert."""

    request_id = models.CharField(max_length=128, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    tenant_id = models.UUIDField(null=True, blank=True)
    project_id = models.UUIDField(null=True, blank=True)
    api_key_id = models.UUIDField(null=True, blank=True)
    end_user = models.CharField(max_length=256, blank=True)
    model = models.CharField(max_length=200, blank=True)
    provider_id = models.UUIDField(null=True, blank=True)
    deployment_id = models.UUIDField(null=True, blank=True)
    route = models.CharField(max_length=200, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cached_input_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(0))
    cached = models.BooleanField(default=False, help_text="Answered from the response cache.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant_id", "created_at"], name="usage_tenant_time"),
            models.Index(fields=["created_at"], name="usage_time"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.cost_usd}"


class UsageRollup(models.Model):
    """The ledger summed per hour or per day and per tenant, project, key, model, provider
    and route (the spend pages and `GET /api/v1/usage` read these, not the ledger). Rebuilt
    idempotently: a bucket's rows are replaced as a whole."""

    class Grain(models.TextChoices):
        HOUR = "hour", "Hour"
        DAY = "day", "Day"

    grain = models.CharField(max_length=8, choices=Grain.choices)
    bucket_start = models.DateTimeField()
    tenant_id = models.UUIDField(null=True, blank=True)
    project_id = models.UUIDField(null=True, blank=True)
    api_key_id = models.UUIDField(null=True, blank=True)
    model = models.CharField(max_length=200, blank=True)
    provider_id = models.UUIDField(null=True, blank=True)
    route = models.CharField(max_length=200, blank=True)
    requests = models.PositiveIntegerField(default=0)
    cached_requests = models.PositiveIntegerField(default=0)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cached_input_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(0))
    # What the same requests would have cost on the tenant's baseline model, and what a
    # cache hit saved (the cost of the answer it replayed).
    baseline_cost_usd = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(0))
    cache_savings_usd = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(0))

    class Meta:
        ordering = ["-bucket_start"]
        indexes = [
            models.Index(fields=["grain", "bucket_start"], name="rollup_grain_time"),
            models.Index(fields=["grain", "tenant_id", "bucket_start"], name="rollup_tenant_time"),
        ]

    def __str__(self) -> str:
        return f"{self.grain} {self.bucket_start:%Y-%m-%d %H:%M} {self.cost_usd}"


class PriceVersion(models.Model):
    """A deployment's prices from `effective_from` on: the pricing catalog's history. The
    price in force at a moment is the latest version that started at or before it."""

    class Source(models.TextChoices):
        MANUAL = "manual", "Set by an admin"
        CATALOG = "catalog", "Price catalog refresh"
        CONFIG = "config", "Configuration file"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    deployment = models.ForeignKey(
        "providers.ModelDeployment", on_delete=models.CASCADE, related_name="price_versions"
    )
    effective_from = models.DateTimeField(default=timezone.now)
    input_price = models.DecimalField(max_digits=14, decimal_places=6)
    output_price = models.DecimalField(max_digits=14, decimal_places=6)
    cached_input_price = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    cache_write_price = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    reasoning_price = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MANUAL)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["deployment", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "effective_from"], name="priceversion_unique_start"
            )
        ]

    def __str__(self) -> str:
        return f"{self.deployment_id} from {self.effective_from:%Y-%m-%d}"


class RollupCursor(models.Model):
    """How far the rollups have read the ledger: the highest UsageRecord id already rolled
    up. Rows above it are new (or late) and their hours are rolled up again next run."""

    name = models.CharField(max_length=32, unique=True)
    last_record_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.last_record_id}"


class SpendAnomaly(models.Model):
    """A tenant's spend in one hour far above its usual spend at that hour
    (apps.costs.anomalies). The unique constraint makes each alert, and its notifications,
    happen once per tenant per hour."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    hour_start = models.DateTimeField()
    spent_usd = models.DecimalField(max_digits=18, decimal_places=8)
    median_usd = models.DecimalField(
        max_digits=18, decimal_places=8, help_text="Median spend of the same hour on past days."
    )
    score = models.FloatField(help_text="Robust z-score of the hour's spend.")
    threshold = models.FloatField()
    history_days = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    notified_at = models.DateTimeField(null=True, blank=True)
    notify_attempts = models.PositiveIntegerField(default=0)
    # Notifier ids this anomaly reached: a retry sends only to the others.
    delivered_to = models.JSONField(default=list, blank=True)
    notify_error = models.TextField(blank=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-hour_start"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "hour_start"], name="spendanomaly_once")
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.hour_start:%Y-%m-%d %H:00} {self.spent_usd}"
