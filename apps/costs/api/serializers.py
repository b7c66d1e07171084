"""Serializers of the costs management API: rate limits, budgets, budget alerts and
notifiers. A notifier's signing secret is write-only; no response carries it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.costs.models import Budget, BudgetAlert, Notifier, RateLimit, Scope
from apps.costs.selectors import PeriodSpend, budget_period_spend
from apps.tenants.models import ApiKey, Plan, Project, Tenant
from atp_site.lib.api_input import ModelSerializer

# The field naming a scope's target.
TARGET_FIELD = {
    Scope.PLAN: "plan",
    Scope.TENANT: "tenant",
    Scope.PROJECT: "project",
    Scope.KEY: "api_key",
}
BUDGET_SCOPES = [(s.value, s.label) for s in Scope if s != Scope.PLAN]
PLANS = [(p.value, p.label) for p in Plan if p != Plan.NONE]


def _related(queryset: Any, help_text: str) -> serializers.PrimaryKeyRelatedField:
    """A scope's target, by id; the views narrow the choices to what the caller may see."""
    return serializers.PrimaryKeyRelatedField(
        queryset=queryset, required=False, allow_null=True, help_text=help_text
    )


TENANT_HELP = "The tenant; implied by a project or key."
PROJECT_HELP = "The project (scope `project`)."
API_KEY_HELP = "The live API key (scope `key`)."


def _target_tenant(attrs: dict[str, Any], instance: Any) -> Tenant | None:
    if instance is not None:
        return instance.tenant
    for name in ("tenant", "project", "api_key"):
        value = attrs.get(name)
        if value is not None:
            return value if name == "tenant" else value.tenant
    return None


class RateLimitSerializer(ModelSerializer):
    """Limits of one scope: every key on a plan, a tenant, one of its projects or keys.
    Empty figures do not limit."""

    scope = serializers.ChoiceField(choices=Scope.choices)
    plan = serializers.ChoiceField(
        choices=PLANS, required=False, allow_blank=True, help_text="The plan (scope `plan`)."
    )
    tenant = _related(Tenant.objects.all(), TENANT_HELP)
    project = _related(Project.objects.all(), PROJECT_HELP)
    api_key = _related(ApiKey.objects.all(), API_KEY_HELP)
    target = serializers.CharField(source="target_label", read_only=True)

    class Meta:
        model = RateLimit
        fields = [
            "id",
            "scope",
            "plan",
            "tenant",
            "project",
            "api_key",
            "target",
            "requests_per_minute",
            "tokens_per_minute",
            "max_concurrent",
            "cost_per_hour_usd",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {
            "cost_per_hour_usd": {"help_text": "USD, as an exact decimal string."},
        }
        # One row per target: checked in validate(), which names the target's field.
        validators: list = []

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is None:
            scope = attrs.get("scope")
            field = TARGET_FIELD.get(scope)
            value = attrs.get(field) if field else None
            if value and RateLimit.objects.filter(scope=scope, **{field: value}).exists():
                name = value.name if isinstance(value, ApiKey) else value
                message = f"The {scope} '{name}' already has rate limits; change those instead."
                raise serializers.ValidationError({field: message}, code="unique")
        return attrs


class RateLimitUpdateSerializer(RateLimitSerializer):
    """Limits stay with their target; delete and create them to move them."""

    scope = serializers.ChoiceField(choices=Scope.choices, read_only=True)
    plan = serializers.CharField(read_only=True)
    tenant = serializers.PrimaryKeyRelatedField(read_only=True)
    project = serializers.PrimaryKeyRelatedField(read_only=True)
    api_key = serializers.PrimaryKeyRelatedField(read_only=True)


class PercentField(serializers.FloatField):
    """A percentage, read back as a whole number when it is one (80, not 80.0)."""

    def to_internal_value(self, data: Any) -> int | float:
        value = super().to_internal_value(data)
        return int(value) if float(value).is_integer() else value

    def to_representation(self, value: Any) -> int | float:
        value = float(value)
        return int(value) if value.is_integer() else value


class BudgetSerializer(ModelSerializer):
    """Spend allowed to a tenant, project or key per calendar period, in USD."""

    scope = serializers.ChoiceField(choices=BUDGET_SCOPES)
    tenant = _related(Tenant.objects.all(), TENANT_HELP)
    project = _related(Project.objects.all(), PROJECT_HELP)
    api_key = _related(ApiKey.objects.all(), API_KEY_HELP)
    target = serializers.CharField(source="target_label", read_only=True)
    thresholds = serializers.ListField(
        child=PercentField(min_value=0, max_value=1000),
        required=False,
        max_length=20,
        help_text="Alert at these percentages of the limit (default 50, 80, 100).",
    )
    period_start = serializers.SerializerMethodField(
        help_text="When the current period began, in UTC (null for a `total` budget)."
    )
    period_end = serializers.SerializerMethodField(
        help_text="When the current period ends, in UTC (null for a `total` budget)."
    )
    spent_usd = serializers.SerializerMethodField(
        help_text="Spend settled in the current period, USD, as an exact decimal string, from "
        "the counters the gateway admits against; null when they hold none for this period "
        "yet (nothing admitted since it began) or cannot be read."
    )

    class Meta:
        model = Budget
        fields = [
            "id",
            "scope",
            "tenant",
            "project",
            "api_key",
            "target",
            "name",
            "period",
            "limit_usd",
            "time_zone",
            "thresholds",
            "action",
            "downgrade_to",
            "enabled",
            "period_start",
            "period_end",
            "spent_usd",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {"limit_usd": {"help_text": "USD, as an exact decimal string."}}
        # Name uniqueness per tenant: checked in validate(), which names the field.
        validators: list = []

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        tenant = _target_tenant(attrs, self.instance)
        name = attrs.get("name", getattr(self.instance, "name", None))
        if tenant is not None and name:
            clash = Budget.objects.filter(tenant=tenant, name=name)
            if self.instance is not None:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                raise serializers.ValidationError(
                    {"name": f"A budget named '{name}' already exists for this tenant."},
                    code="unique",
                )
        return attrs

    def _current(self, budget: Budget) -> PeriodSpend:
        # Read once per budget for the three fields.
        cached = getattr(budget, "_period_spend", None)
        if cached is None:
            cached = budget._period_spend = budget_period_spend(budget)
        return cached

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_period_start(self, budget: Budget) -> str | None:
        start = self._current(budget).start
        return serializers.DateTimeField().to_representation(start) if start else None

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_period_end(self, budget: Budget) -> str | None:
        end = self._current(budget).end
        return serializers.DateTimeField().to_representation(end) if end else None

    @extend_schema_field(OpenApiTypes.DECIMAL)
    def get_spent_usd(self, budget: Budget) -> str | None:
        settled = self._current(budget).settled_usd
        return None if settled is None else f"{settled.quantize(Decimal('0.00000001')):f}"


class BudgetUpdateSerializer(BudgetSerializer):
    """A budget stays with its target; delete and create it to move it."""

    scope = serializers.ChoiceField(choices=BUDGET_SCOPES, read_only=True)
    tenant = serializers.PrimaryKeyRelatedField(read_only=True)
    project = serializers.PrimaryKeyRelatedField(read_only=True)
    api_key = serializers.PrimaryKeyRelatedField(read_only=True)


class BudgetAlertSerializer(ModelSerializer):
    """A budget crossed one of its thresholds in one period (read-only)."""

    budget_name = serializers.CharField(source="budget.name", read_only=True)
    threshold = PercentField(read_only=True)

    class Meta:
        model = BudgetAlert
        fields = [
            "id",
            "budget",
            "budget_name",
            "tenant",
            "period_start",
            "threshold",
            "spent_usd",
            "limit_usd",
            "created_at",
            "notified_at",
            "notify_attempts",
        ]
        read_only_fields = fields


class NotifierSerializer(ModelSerializer):
    """Where budget alerts go: e-mail addresses or a webhook signed with `secret`."""

    tenant = serializers.PrimaryKeyRelatedField(
        queryset=Tenant.objects.all(),
        required=False,
        allow_null=True,
        help_text="Alerts of this tenant only; null: of every tenant.",
    )
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=200,
        style={"input_type": "password"},
        help_text="The webhook's signing secret; never returned. Omitted on update: kept.",
    )
    has_secret = serializers.SerializerMethodField()

    class Meta:
        model = Notifier
        fields = [
            "id",
            "name",
            "kind",
            "tenant",
            "target",
            "secret",
            "has_secret",
            "enabled",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_has_secret(self, notifier: Notifier) -> bool:
        return bool(notifier.secret)


class NotifierUpdateSerializer(NotifierSerializer):
    """A notifier keeps its kind and tenant."""

    tenant = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta(NotifierSerializer.Meta):
        read_only_fields = [*NotifierSerializer.Meta.read_only_fields, "kind"]
