"""Reads of rate limits, budgets, budget alerts and notifiers for the console.

These are unscoped; callers narrow them by the viewer's permissions with
apps.tenants.permissions.restrict, the one place that decides who sees what.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from django.db.models import QuerySet

from apps.costs.models import Budget, BudgetAlert, Notifier, RateLimit, Scope

logger = logging.getLogger(__name__)


def rate_limit_list() -> QuerySet[RateLimit]:
    return RateLimit.objects.select_related("tenant", "project__tenant", "api_key")


def rate_limit_of(
    *,
    scope: str,
    plan: str = "",
    tenant: Any = None,
    project: Any = None,
    api_key: Any = None,
) -> RateLimit | None:
    """The limits already set for one target: there is at most one row per target."""
    target = {
        Scope.PLAN: {"plan": plan},
        Scope.TENANT: {"tenant": tenant},
        Scope.PROJECT: {"project": project},
        Scope.KEY: {"api_key": api_key},
    }.get(scope)
    if target is None:
        return None
    return rate_limit_list().filter(scope=scope, **target).first()


def budget_list() -> QuerySet[Budget]:
    return Budget.objects.select_related("tenant", "project__tenant", "api_key")


def budget_alert_list(*, budget: Budget | None = None) -> QuerySet[BudgetAlert]:
    alerts = BudgetAlert.objects.select_related("budget", "tenant")
    if budget is not None:
        alerts = alerts.filter(budget=budget)
    return alerts


def notifier_list() -> QuerySet[Notifier]:
    return Notifier.objects.select_related("tenant")


# --- live spend -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PeriodSpend:
    """A budget's current period and what the gateway's counters hold for it."""

    start: datetime | None  # None: a total budget, counted since it was made
    end: datetime | None
    time_zone: str
    limit_usd: Decimal
    # None: no counter yet for this period (nothing admitted since the period began, or
    # since the counters were last emptied), or the counters could not be read.
    settled_usd: Decimal | None = None
    reserved_usd: Decimal | None = None

    @property
    def counted(self) -> bool:
        return self.settled_usd is not None

    @property
    def percent(self) -> float | None:
        if self.settled_usd is None or not self.limit_usd:
            return None
        return float(self.settled_usd / self.limit_usd * 100)

    @property
    def left_usd(self) -> Decimal | None:
        if self.settled_usd is None:
            return None
        return max(self.limit_usd - self.settled_usd, Decimal(0))

    @property
    def bar(self) -> float:
        """The percentage a progress bar shows (0 to 100)."""
        return max(0.0, min(self.percent or 0.0, 100.0))


def budget_time_zone(budget: Budget) -> str:
    """The zone the budget's periods follow: its own, else its tenant's, else UTC (as the
    data plane compiles it in apps.costs.limits.compile_limits)."""
    return budget.time_zone or (budget.tenant.time_zone if budget.tenant_id else "") or "UTC"


def budget_period_spend(budget: Budget, *, now: float | None = None) -> PeriodSpend:
    """The current period of `budget` and its spend in the shared counters (one read of
    one counter). Before any request of the period was admitted there is no counter: the
    ledger's total for the period stands in, the figure the counter will start from. A
    counter that cannot be read leaves the figures empty (logged); the page still shows
    the period."""
    from apps.costs import limits
    from apps.costs.admission import budget_key, get_counters

    now = time.time() if now is None else now
    tz = budget_time_zone(budget)
    start, end = limits.period_bounds(budget.period, tz, now)
    spend = PeriodSpend(
        start=None if budget.period == Budget.Period.TOTAL else limits.period_start_datetime(start),
        end=limits.period_start_datetime(end) if end is not None else None,
        time_zone=tz,
        limit_usd=budget.limit_usd,
    )
    try:
        # budget_key reads the rule's id only.
        found = get_counters().spend(budget_key(SimpleNamespace(id=str(budget.pk)), start))
    except Exception:
        logger.warning("could not read the spend counter of budget %s", budget.pk, exc_info=True)
        return spend
    if found is None:
        total = limits.ledger_spend(budget, start)
        if total is None:
            return spend
        found = (limits.usd_to_units(total), 0)
    settled, reserved = found
    return PeriodSpend(
        start=spend.start,
        end=spend.end,
        time_zone=tz,
        limit_usd=budget.limit_usd,
        settled_usd=limits.units_to_usd(settled),
        reserved_usd=limits.units_to_usd(reserved),
    )
