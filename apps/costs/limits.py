"""What limits and budgets apply to each API key, compiled once per configuration snapshot.

The data plane never reads the limit tables: `compile_limits` turns them into one
`KeyLimits` per key when the snapshot is built, and `apps.costs.admission` counts against
it. Every rule that applies is checked; the tightest decides.

Plans (a `plan` on the tenant, overridden per key) bring default limits and a service
priority. A plan's limits apply to each key on that plan; an admin can change a plan's
figures with a plan-scoped rate limit.

| plan       | requests per minute | service priority |
| ---------- | ------------------- | ---------------- |
| enterprise | 100,000             | 0 (shed last)    |
| premium    | 10,000              | 1                |
| (none)     | no plan limit       | 1                |
| free       | 100                 | 2 (shed first)   |
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

# Money in the counters: integers of 1e-8 USD (ATP's cost quantum), exact in Redis
# and in Lua's doubles up to about $90 million.
UNITS_PER_USD = 100_000_000


def usd_to_units(amount: Decimal | int | float) -> int:
    return int(Decimal(amount) * UNITS_PER_USD)


def units_to_usd(units: int) -> Decimal:
    return Decimal(units) / UNITS_PER_USD


@dataclass(frozen=True, slots=True)
class PlanSpec:
    requests_per_minute: int | None
    priority: int


PLAN_DEFAULTS: dict[str, PlanSpec] = {
    "free": PlanSpec(100, 2),
    "premium": PlanSpec(10_000, 1),
    "enterprise": PlanSpec(100_000, 0),
}
NO_PLAN_PRIORITY = 1
PRIORITY_NAMES = {0: "high", 1: "standard", 2: "low"}

# Kinds of counted limits, their windows (seconds) and the words errors use.
REQUESTS, TOKENS, CONCURRENT, COST = "requests", "tokens", "concurrent", "cost"
WINDOWS = {REQUESTS: 60, TOKENS: 60, COST: 3600}
KIND_WORDS = {
    REQUESTS: "requests per minute",
    TOKENS: "tokens per minute",
    CONCURRENT: "concurrent requests",
    COST: "cost per hour (USD)",
}
LEVEL_ORDER = ("key", "project", "tenant", "plan")


@dataclass(frozen=True, slots=True)
class Rule:
    """One counted limit: `counter` names what is counted (shared by every key it covers)."""

    kind: str
    counter: str
    limit: int  # requests, tokens, slots, or 1e-8 USD units for COST
    level: str  # key, project, tenant, plan
    label: str  # "API key 'ci'", "tenant 'acme'", "plan 'free'"

    def describe(self) -> str:
        limit = self.limit
        shown = f"{units_to_usd(limit).normalize():f}" if self.kind == COST else f"{limit:,}"
        return f"{KIND_WORDS[self.kind]} of the {self.label} (limit {shown})"


@dataclass(frozen=True, slots=True)
class BudgetRule:
    id: str
    name: str
    level: str
    label: str
    limit: int  # units
    limit_usd: Decimal
    period: str
    tz: str
    action: str  # block, downgrade, alert
    downgrade_to: str
    thresholds: tuple[float, ...]
    # Spend already in the ledger for the period that was current when the snapshot was
    # built: the counter starts from it when Redis (or this process) has none.
    seed_period: float | None = None
    seed_units: int = 0

    @property
    def blocks(self) -> bool:
        return self.action != "alert"

    def bounds(self, now: float) -> tuple[float, float | None]:
        return period_bounds(self.period, self.tz, now)

    def seed_for(self, start: float) -> int:
        return self.seed_units if self.seed_period == start else 0


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """Everything admission checks for one key. `rules` is empty when only the plan's
    priority applies; `active` says whether a request needs the counters at all."""

    rules: tuple[Rule, ...] = ()
    budgets: tuple[BudgetRule, ...] = ()
    priority: int = NO_PLAN_PRIORITY
    plan: str = ""
    needs_tokens: bool = False  # a token, cost or budget rule: estimate the request
    active: bool = field(init=False, default=False)
    # Admission's compiled counters for the current windows and periods
    # (apps.costs.admission.Slice), by the budget a downgrade skips ("" for none).
    slices: dict = field(init=False, default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "active", bool(self.rules or self.budgets))


NO_LIMITS = KeyLimits()


# --- calendar periods -------------------------------------------------------------------

_bounds_cache: dict[tuple[str, str], tuple[float, float | None]] = {}
TOTAL_START = 0.0


def period_bounds(period: str, tz: str, now: float) -> tuple[float, float | None]:
    """The [start, end) of the period holding `now` (epoch seconds), calendar-aligned in
    the time zone `tz`; a `total` period starts at the epoch and never ends."""
    if period == "total":
        return TOTAL_START, None
    key = (period, tz)
    cached = _bounds_cache.get(key)
    if cached is not None and cached[0] <= now < cached[1]:
        return cached
    zone = ZoneInfo(tz or "UTC")
    local = datetime.fromtimestamp(now, zone)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        start, end = day, day + timedelta(days=1)
    elif period == "weekly":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    elif period == "monthly":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"unknown budget period {period!r}")
    # Re-attach the zone after the arithmetic so a DST change inside the period is honoured.
    start = start.replace(tzinfo=None).replace(tzinfo=zone)
    end = end.replace(tzinfo=None).replace(tzinfo=zone)
    bounds = (start.timestamp(), end.timestamp())
    _bounds_cache[key] = bounds
    return bounds


def period_start_datetime(start: float) -> datetime:
    return datetime.fromtimestamp(start, UTC)


# --- compilation ------------------------------------------------------------------------


def _rules_of(row, level: str, counter: str, label: str) -> list[Rule]:
    out = []
    for kind, value in (
        (REQUESTS, row.requests_per_minute),
        (TOKENS, row.tokens_per_minute),
        (CONCURRENT, row.max_concurrent),
        (COST, None if row.cost_per_hour_usd is None else usd_to_units(row.cost_per_hour_usd)),
    ):
        if value is not None:
            out.append(Rule(kind, f"{kind}:{counter}", int(value), level, label))
    return out


def plan_limits(plan_rows: Iterable) -> dict[str, dict]:
    """Each plan's figures: the defaults, replaced field by field by a plan-scoped row."""
    plans: dict[str, dict] = {
        name: {
            "requests_per_minute": spec.requests_per_minute,
            "tokens_per_minute": None,
            "max_concurrent": None,
            "cost_per_hour_usd": None,
        }
        for name, spec in PLAN_DEFAULTS.items()
    }
    for row in plan_rows:
        plans[row.plan] = {
            "requests_per_minute": row.requests_per_minute,
            "tokens_per_minute": row.tokens_per_minute,
            "max_concurrent": row.max_concurrent,
            "cost_per_hour_usd": row.cost_per_hour_usd,
        }
    return plans


class _Figures:
    def __init__(self, figures: dict) -> None:
        self.__dict__.update(figures)


def compile_limits(keys: Iterable, *, now: float | None = None) -> dict[str, KeyLimits]:
    """KeyLimits for every key id, from the limit, budget and ledger tables (cold path:
    a few queries per snapshot build, none per request)."""
    import time

    from apps.costs.models import Budget, RateLimit, Scope

    now = time.time() if now is None else now
    limits = list(RateLimit.objects.select_related("tenant", "project", "api_key"))
    plans = plan_limits(r for r in limits if r.scope == Scope.PLAN)
    by_target: dict[tuple[str, str], RateLimit] = {}
    for row in limits:
        if row.scope == Scope.TENANT:
            by_target[("tenant", str(row.tenant_id))] = row
        elif row.scope == Scope.PROJECT:
            by_target[("project", str(row.project_id))] = row
        elif row.scope == Scope.KEY:
            by_target[("key", str(row.api_key_id))] = row
    budgets: dict[tuple[str, str], list[BudgetRule]] = {}
    rows = list(Budget.objects.filter(enabled=True).select_related("tenant", "project", "api_key"))
    seeds = _period_spend(rows, now)
    for row in rows:
        target = {
            Scope.TENANT: ("tenant", str(row.tenant_id)),
            Scope.PROJECT: ("project", str(row.project_id)),
            Scope.KEY: ("key", str(row.api_key_id)),
        }[row.scope]
        tz = row.time_zone or (row.tenant.time_zone if row.tenant_id else "") or "UTC"
        start, _ = period_bounds(row.period, tz, now)
        budgets.setdefault(target, []).append(
            BudgetRule(
                id=str(row.id),
                name=row.name,
                level=target[0],
                label=row.target_label,
                limit=usd_to_units(row.limit_usd),
                limit_usd=row.limit_usd,
                period=row.period,
                tz=tz,
                action=row.action,
                downgrade_to=row.downgrade_to,
                thresholds=tuple(float(t) for t in row.effective_thresholds),
                seed_period=start,
                seed_units=seeds.get(row.id, 0),
            )
        )
    out: dict[str, KeyLimits] = {}
    for key in keys:
        kid, tid = str(key.id), str(key.tenant_id)
        pid = str(key.project_id) if key.project_id else None
        plan = key.plan or key.tenant.plan
        rules: list[Rule] = []
        found: list[BudgetRule] = []
        targets = [("key", kid, f"API key '{key.name}'")]
        if pid:
            targets.append(("project", pid, f"project '{key.project.slug}'"))
        targets.append(("tenant", tid, f"tenant '{key.tenant.slug}'"))
        for level, ident, label in targets:
            row = by_target.get((level, ident))
            if row is not None:
                rules += _rules_of(row, level, f"{level}:{ident}", label)
            found += budgets.get((level, ident), ())
        if plan:
            rules += _rules_of(
                _Figures(plans[plan]), "plan", f"plan:{plan}:key:{kid}", f"plan '{plan}'"
            )
        spec = PLAN_DEFAULTS.get(plan)
        out[kid] = KeyLimits(
            rules=tuple(rules),
            budgets=tuple(found),
            priority=spec.priority if spec else NO_PLAN_PRIORITY,
            plan=plan,
            needs_tokens=bool(found) or any(r.kind in (TOKENS, COST) for r in rules),
        )
    return out


def ledger_spend(budget, start: float) -> Decimal | None:
    """What the ledger holds against `budget` (a Budget row) since `start` (epoch
    seconds), or None when it holds nothing."""
    from django.db.models import Sum

    from apps.costs.models import Scope, UsageRecord

    qs = UsageRecord.objects.filter(created_at__gte=period_start_datetime(start))
    if budget.scope == Scope.TENANT:
        qs = qs.filter(tenant_id=budget.tenant_id)
    elif budget.scope == Scope.PROJECT:
        qs = qs.filter(project_id=budget.project_id)
    else:
        qs = qs.filter(api_key_id=budget.api_key_id)
    return qs.aggregate(total=Sum("cost_usd"))["total"]


def _period_spend(rows: list, now: float) -> dict:
    """Each budget's spend in the ledger since its current period began."""
    spend = {}
    for row in rows:
        tz = row.time_zone or (row.tenant.time_zone if row.tenant_id else "") or "UTC"
        start, _ = period_bounds(row.period, tz, now)
        total = ledger_spend(row, start)
        spend[row.id] = usd_to_units(total) if total else 0
    return spend
