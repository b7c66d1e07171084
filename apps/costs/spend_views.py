"""Console pages of spend: the spend overview (`/spend/`) and the savings report
(`/spend/savings/`).

Every figure comes from the rollups through apps.costs.spend, whose selectors narrow what
they read to the tenants whose spend the viewer may see (`costs.view_usagerollup` globally,
or `tenants.view_tenant` on the tenant): a tenant's members see their tenant's spend and
nothing of another's, and another tenant in the filter is not a valid choice. A viewer who
may see one tenant only has it chosen for them, so their forecast and budgets show at once.

Days are UTC days, as the rollups count them; the current day is included so far.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone

from apps.costs import selectors, spend
from apps.costs.models import Budget, Scope, UsageRollup
from apps.costs.rollups import floor_day
from apps.tenants import permissions
from apps.tenants.models import ApiKey, Tenant
from apps.tenants.selectors import tenant_list
from atp_site.console.views import PageView, is_htmx

# The windows the overview offers, in days (the last N UTC days, today included).
WINDOW_DAYS = ((7, "Last 7 days"), (30, "Last 30 days"), (90, "Last 90 days"))
DEFAULT_DAYS = 30
# Rows of the top keys and top models tables.
TOP = 10
# Recent anomalies listed (newest first, within the window).
ANOMALIES = 10
# The CSV download: every dimension per day, for a spreadsheet to pivot as it likes.
CSV_GROUPS = ("day", "tenant", "project", "key", "model", "provider", "route")

# The months the savings report offers (calendar months, the current one so far).
SAVINGS_MONTHS = ((3, "Last 3 months"), (6, "Last 6 months"), (12, "Last 12 months"))
DEFAULT_MONTHS = 12
# Without a tenant chosen, the report covers the tenants that spent most in its months:
# one savings read per tenant, so the page stays bounded however many tenants there are.
SAVINGS_TENANTS = 25


# --- filters --------------------------------------------------------------------------------


class TenantFilterForm(forms.Form):
    """A tenant among those whose spend the viewer may see (by slug); empty: all of them."""

    tenant = forms.ModelChoiceField(
        queryset=Tenant.objects.none(),
        to_field_name="slug",
        required=False,
        empty_label="Every tenant",
    )

    # Periods shown selected when the query names none (a bound form shows only its data).
    defaults: dict[str, int] = {}

    def __init__(self, *args: Any, tenants: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tenant"].queryset = tenants
        if self.is_bound and any(not self.data.get(name) for name in self.defaults):
            data = self.data.copy()
            for name, value in self.defaults.items():
                if not data.get(name):
                    data[name] = str(value)
            self.data = data


class SpendFilterForm(TenantFilterForm):
    defaults = {"days": DEFAULT_DAYS}
    days = forms.TypedChoiceField(
        label="Period",
        choices=WINDOW_DAYS,
        coerce=int,
        required=False,
        empty_value=DEFAULT_DAYS,
    )


class SavingsFilterForm(TenantFilterForm):
    defaults = {"months": DEFAULT_MONTHS}
    months = forms.TypedChoiceField(
        label="Period",
        choices=SAVINGS_MONTHS,
        coerce=int,
        required=False,
        empty_value=DEFAULT_MONTHS,
    )


# --- figures --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """The `days` UTC days ending with today: [start, end), both midnights."""

    start: datetime
    end: datetime
    days: int

    @classmethod
    def last(cls, days: int, now: datetime) -> Window:
        end = floor_day(now) + timedelta(days=1)
        return cls(start=end - timedelta(days=days), end=end, days=days)

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(days=1)).date()


def budget_daily_limit(budget: Budget, day: date) -> Decimal | None:
    """What `budget` allows on `day`, spread evenly over its period: a daily budget's
    limit, a weekly one's seventh, a monthly one's share for the days of that month. A
    total budget never resets, so it has no daily equivalent (None)."""
    if budget.period == Budget.Period.DAILY:
        return budget.limit_usd
    if budget.period == Budget.Period.WEEKLY:
        return budget.limit_usd / 7
    if budget.period == Budget.Period.MONTHLY:
        return budget.limit_usd / calendar.monthrange(day.year, day.month)[1]
    return None


def _with_shares(rows: list[dict[str, Any]], total: Decimal) -> list[dict[str, Any]]:
    """Each row's share of the window's spend, in percent (for the bars)."""
    for row in rows:
        row["share"] = float(row["cost_usd"] / total * 100) if total > 0 else 0.0
    return rows


def _budgets(user: Any, tenant: Tenant) -> tuple[list[Budget], list[Budget]]:
    """The tenant's enabled tenant-wide budgets the viewer may see: those with a daily
    equivalent (drawn) and the total ones (named, not drawn)."""
    budgets = permissions.restrict(selectors.budget_list(), user, "view").filter(
        tenant=tenant, scope=Scope.TENANT, enabled=True
    )
    drawn, total = [], []
    for budget in budgets.order_by("name"):
        (total if budget.period == Budget.Period.TOTAL else drawn).append(budget)
    return drawn, total


def _chart(
    series: list[dict[str, Any]], budgets: list[Budget]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The chart's data (one point per day: unix seconds, spend, each budget's daily
    equivalent) and the same figures as table rows."""
    days = [row["bucket"].astimezone(UTC).date() for row in series]
    lines = [[budget_daily_limit(b, day) for day in days] for b in budgets]
    chart = {
        "t": [int(row["bucket"].timestamp()) for row in series],
        "cost": [float(row["cost_usd"]) for row in series],
        "budgets": [
            {
                "label": f"{b.name} ({b.get_period_display().lower()}, per day)",
                "values": [float(v) for v in line],
            }
            for b, line in zip(budgets, lines, strict=True)
        ],
    }
    table = [
        {
            "day": day,
            "cost_usd": row["cost_usd"],
            "requests": row["requests"],
            "budgets": [line[i] for line in lines],
        }
        for i, (day, row) in enumerate(zip(days, series, strict=True))
    ]
    return chart, table


def _trend(result: spend.TenantForecast | None) -> tuple[str, Decimal] | None:
    """How the fitted daily spend moves each day, in words and an amount to the
    microdollar: ("grows", 0.25), ("falls", 0.1) or ("stays", 0)."""
    slope = result.forecast.trend_per_day if result is not None else None
    if slope is None:
        return None
    amount = Decimal(f"{slope:.6f}")
    if amount > 0:
        return "grows", amount
    if amount < 0:
        return "falls", -amount
    return "stays", spend.ZERO


def _csv_url(window: Window, tenant: Tenant | None) -> str:
    """The usage API's CSV of the same days and tenant, one row per day and group."""
    query = {
        "format": "csv",
        "start": window.first_day.isoformat(),
        # A date as `end` includes that whole day.
        "end": window.last_day.isoformat(),
        "group_by": ",".join(CSV_GROUPS),
    }
    if tenant is not None:
        query["tenant"] = tenant.slug
    return f"{reverse('costs-api:usage')}?{urlencode(query)}"


def spend_overview(user: Any, *, tenant: Tenant | None, days: int, now: datetime) -> dict:
    """Everything the spend page shows for `user`, over the last `days` days and one
    tenant (or every tenant the user may see)."""
    window = Window.last(days, now)
    filters = spend.UsageFilters(
        start=window.start, end=window.end, tenant_id=tenant.pk if tenant else None
    )
    totals = spend.usage_totals(user=user, filters=filters)
    tenants = spend.spend_by_tenant(user=user, filters=filters)
    cost = totals["cost_usd"]
    drawn, total_budgets = _budgets(user, tenant) if tenant is not None else ([], [])
    chart, table = _chart(spend.spend_series(user=user, filters=filters), drawn)
    keys = spend.usage_rows(user=user, filters=filters, group_by=["key", "tenant"])[:TOP]
    anomalies = spend.spend_anomaly_list(user=user, tenant=tenant).filter(
        hour_start__gte=window.start
    )[:ANOMALIES]
    forecast = (
        spend.spend_forecast(user=user, tenant=tenant, today=window.last_day)
        if tenant is not None
        else None
    )
    return {
        "window": window,
        "tenant": tenant,
        "totals": totals,
        "tokens": totals["input_tokens"] + totals["output_tokens"],
        "gain_share_usd": sum((row["gain_share_usd"] for row in tenants), spend.ZERO),
        "tenants": _with_shares(tenants, cost),
        "keys": _with_shares(keys, cost),
        "models": _with_shares(spend.spend_top(user=user, filters=filters, by="model"), cost),
        "routes": _with_shares(
            spend.spend_top(user=user, filters=filters, by="route", limit=None), cost
        ),
        "chart": chart,
        "days": table,
        "budgets": drawn,
        "total_budgets": total_budgets,
        "forecast": forecast,
        "trend": _trend(forecast),
        "anomalies": list(anomalies),
        "csv_url": _csv_url(window, tenant),
        "may_view_keys": permissions.may(user, ApiKey, "view"),
    }


def _months_back(moment: datetime, months: int) -> datetime:
    """The start of the calendar month `months - 1` months before the one holding
    `moment` (so `months` months, the current one included)."""
    start = spend.period_floor(moment, "month")
    index = start.year * 12 + start.month - 1 - (months - 1)
    return start.replace(year=index // 12, month=index % 12 + 1)


def savings_overview(user: Any, *, tenant: Tenant | None, months: int, now: datetime) -> dict:
    """Realized savings and gain share per calendar month of one tenant, or of the
    SAVINGS_TENANTS tenants (of those `user` may see) that spent most in those months."""
    start = _months_back(now, months)
    if tenant is not None:
        chosen, more = [tenant], 0
    else:
        ranked = spend.spend_top(
            user=user, filters=spend.UsageFilters(start=start), by="tenant", limit=None
        )
        ids = [row["tenant_id"] for row in ranked if row["tenant_id"] is not None]
        found = tenant_list().in_bulk(ids[:SAVINGS_TENANTS])
        chosen = [found[pk] for pk in ids[:SAVINGS_TENANTS] if pk in found]
        more = max(len(ids) - SAVINGS_TENANTS, 0)
    reports = [
        spend.savings_by_period(user=user, tenant=t, period="month", start=start, now=now)
        for t in chosen
    ]
    return {
        "start": start,
        "months": months,
        "tenant": tenant,
        "reports": reports,
        "more": more,
        "savings_usd": sum((r.totals.savings_usd for r in reports), spend.ZERO),
        "gain_share_usd": sum((r.totals.gain_share_usd for r in reports), spend.ZERO),
        "cost_usd": sum((r.totals.cost_usd for r in reports), spend.ZERO),
        "baseline_cost_usd": sum((r.totals.baseline_cost_usd for r in reports), spend.ZERO),
        "cache_savings_usd": sum((r.totals.cache_savings_usd for r in reports), spend.ZERO),
    }


# --- pages ----------------------------------------------------------------------------------


class SpendPageView(PageView):
    """A spend page: a filter form over the tenants whose spend the viewer may see, and
    figures that htmx swaps in place when a filter changes (`figures_template`)."""

    permission = ("costs.usagerollup", "view")
    form_class: type[TenantFilterForm]
    figures_template: str
    figures_id: str

    def only_tenant(self) -> Tenant | None:
        """The tenant of a viewer who may see one tenant's spend only."""
        allowed = permissions.tenant_ids(self.request.user, UsageRollup, "view")
        if allowed is None or len(allowed) != 1:
            return None
        return tenant_list().filter(pk__in=allowed).first()

    def get_form(self) -> TenantFilterForm:
        data = self.request.GET.copy()
        if not data.get("tenant") and (only := self.only_tenant()) is not None:
            data["tenant"] = only.slug
        tenants = permissions.allowed_tenants(self.request.user, UsageRollup, "view")
        return self.form_class(data, tenants=tenants.order_by("slug"))

    def figures(self, data: dict[str, Any]) -> dict[str, Any]:
        """The page's figures for the form's cleaned data."""
        raise NotImplementedError

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = self.get_form()
        valid = form.is_valid()
        context = self.get_context_data(
            form=form,
            figures=self.figures(form.cleaned_data) if valid else None,
            figures_id=self.figures_id,
            # Kept when moving between the spend pages.
            tenant_query=f"?tenant={form.cleaned_data['tenant'].slug}"
            if valid and form.cleaned_data["tenant"]
            else "",
        )
        if is_htmx(request) and request.htmx.target == self.figures_id:
            return self.render(self.figures_template, context)
        return self.render(self.template_name, context)


class SpendView(SpendPageView):
    """Spend, requests, tokens, savings and gain share over the last days; spend per day
    with the chosen tenant's budgets; top keys, models and routes; the tenant's 30-day
    forecast and recent spend anomalies; a CSV of the same figures from the usage API."""

    title = "Spend"
    template_name = "costs/spend/spend.html"
    figures_template = "costs/spend/partials/figures.html"
    figures_id = "spend-figures"
    form_class = SpendFilterForm

    def figures(self, data: dict[str, Any]) -> dict[str, Any]:
        return spend_overview(
            self.request.user, tenant=data["tenant"], days=data["days"], now=timezone.now()
        )


class SavingsView(SpendPageView):
    """Realized savings against each tenant's baseline model, cache savings and gain share,
    per calendar month."""

    title = "Savings"
    template_name = "costs/spend/savings.html"
    figures_template = "costs/spend/partials/savings.html"
    figures_id = "savings-figures"
    form_class = SavingsFilterForm

    def figures(self, data: dict[str, Any]) -> dict[str, Any]:
        return savings_overview(
            self.request.user, tenant=data["tenant"], months=data["months"], now=timezone.now()
        )
