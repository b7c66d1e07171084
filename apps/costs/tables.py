"""The console's tables of rate limits, budgets, budget alerts and notifiers."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from apps.costs.models import BudgetAlert, Notifier, Scope
from atp_site.console.tables import Column, Page, Table


def _tenant(row: Any) -> str | None:
    return row.tenant.slug if row.tenant_id else None


def _applies_to(row: Any) -> str:
    """What a limit or budget applies to, as its page names it."""
    if row.scope == Scope.PLAN:
        return f"{row.get_plan_display()} plan"
    if row.scope == Scope.PROJECT:
        return f"Project {row.project}"
    if row.scope == Scope.KEY:
        return f"Key {row.api_key.name}"
    return f"Tenant {row.tenant.slug}"


def _figure(value: Any, unit: str = "") -> str | None:
    if value is None:
        return None
    return f"{value:,}{unit}"


def alert_delivery(alert: BudgetAlert) -> str:
    """`notified`, `pending` (not tried yet) or `failing` (tried; retried with backoff)."""
    if alert.notified_at is not None:
        return "notified"
    if alert.notify_attempts:
        return "failing"
    return "pending"


def notifier_destination(notifier: Notifier) -> str:
    """Where a notifier sends, as lists show it: a webhook's scheme and host only (its path
    and query often carry a token), e-mail addresses as they are."""
    if notifier.kind == Notifier.Kind.WEBHOOK:
        parts = urlsplit(notifier.target)
        host = parts.hostname or ""
        return f"{parts.scheme}://{host}/…" if parts.scheme and host else "(webhook)"
    return notifier.target


class RateLimitTable(Table):
    columns = (
        Column("applies_to", "Applies to", _applies_to, link="costs:ratelimit-detail"),
        Column("scope", accessor="get_scope_display", order_by="scope"),
        Column("tenant", accessor=_tenant, classes="mono"),
        Column(
            "requests_per_minute",
            "Requests / min",
            lambda r: _figure(r.requests_per_minute),
            classes="num",
        ),
        Column(
            "tokens_per_minute",
            "Tokens / min",
            lambda r: _figure(r.tokens_per_minute),
            classes="num",
        ),
        Column("max_concurrent", "Concurrent", lambda r: _figure(r.max_concurrent), classes="num"),
        Column(
            "cost_per_hour_usd",
            "Cost / hour",
            template="console/cells/usd.html",
            classes="num",
        ),
        Column("updated_at", "Changed", order_by=None, template="console/cells/datetime.html"),
    )
    default_order = "scope"
    empty_title = "No rate limits yet"
    empty_text = (
        "Rate limits cap requests, tokens, concurrent requests and cost per hour for a plan, a "
        "tenant, a project or one key. Without one, only the plan's defaults apply."
    )
    empty_action = ("costs:ratelimit-add", "Add a rate limit", ("costs.ratelimit", "add"))


class BudgetTable(Table):
    columns = (
        Column("name", order_by=None, link="costs:budget-detail"),
        Column("applies_to", "Applies to", _applies_to),
        Column("period", accessor="get_period_display", order_by="period"),
        Column(
            "limit_usd",
            "Limit",
            order_by=None,
            template="console/cells/usd.html",
            classes="num",
        ),
        Column("action", "When spent", accessor="get_action_display"),
        Column("enabled", template="console/cells/boolean.html"),
        Column("created_at", "Created", order_by=None, template="console/cells/datetime.html"),
    )
    default_order = "name"
    empty_title = "No budgets yet"
    empty_text = (
        "A budget caps what a tenant, project or key spends per day, week or month: it alerts "
        "at thresholds you choose, then blocks requests or moves them to a cheaper model."
    )
    empty_action = ("costs:budget-add", "Add a budget", ("costs.budget", "add"))


class BudgetAlertTable(Table):
    columns = (
        Column("alert", "Alert", str, link="costs:budgetalert-detail"),
        Column("tenant", accessor=_tenant, classes="mono"),
        Column("spent_usd", "Spent", template="console/cells/usd.html", classes="num"),
        Column("limit_usd", "Limit", template="console/cells/usd.html", classes="num"),
        Column("period_start", "Period from", template="console/cells/datetime.html"),
        Column("delivery", "Notification", alert_delivery, template="costs/cells/delivery.html"),
        Column("created_at", "Raised", order_by=None, template="console/cells/datetime.html"),
    )
    default_order = "-created_at"
    empty_title = "No budget alerts"
    empty_text = (
        "An alert is raised once per threshold and period when a budget's spend crosses one "
        "of its thresholds; the notifiers of its tenant and the platform's send it on."
    )


class NotifierTable(Table):
    columns = (
        Column("name", order_by=None),
        Column("kind", accessor="get_kind_display"),
        Column("tenant", accessor=lambda n: n.tenant.slug if n.tenant_id else "every tenant"),
        Column("target", "Sends to", notifier_destination, classes="mono"),
        Column("enabled", template="console/cells/boolean.html"),
        Column("created_at", "Created", order_by=None, template="console/cells/datetime.html"),
        Column("actions", "", lambda n: n, template="costs/cells/notifier_actions.html"),
    )
    default_order = "name"
    empty_title = "No notifiers yet"
    empty_text = (
        "Notifiers carry budget alerts to people and systems: e-mail, or a webhook whose "
        "body is signed with a secret. One may serve a tenant's budgets or every tenant's."
    )
    empty_action = ("costs:notifier-add", "Add a notifier", ("costs.notifier", "add"))

    def __init__(self, *args: Any, may_change: bool = False, may_delete: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.may_change, self.may_delete = may_change, may_delete

    def page(self) -> Page:
        page = super().page()
        for notifier in page.rows:
            notifier.may_change, notifier.may_delete = self.may_change, self.may_delete
        return page
