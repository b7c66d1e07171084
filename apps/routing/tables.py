"""The console's tables of routes and of the request log."""

from __future__ import annotations

import json
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.html import format_html

from apps.routing.snapshot import BUILTIN_ROUTES
from atp_site.console.tables import COUNT_LIMIT, Column, Table
from atp_site.console.templatetags.console import usd

# A filtered request log page is counted exactly when the planner expects fewer rows.
EXACT_BELOW = 2_000


def _planned_rows(queryset: QuerySet) -> int | None:
    """PostgreSQL's estimate of how many rows `queryset` returns (no row is read)."""
    try:
        sql, params = queryset.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
            plan = cursor.fetchone()[0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        return int(plan[0]["Plan"]["Plan Rows"])
    except Exception:  # an estimate is a nicety: fall back to counting
        return None


# The request log's cells are rendered in Python, not through cell templates: a template
# per cell renders with the request (every context processor again), which on a page of
# fifty rows costs more than the query.
def _time(row: Any) -> str:
    local = timezone.localtime(row.created_at)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        local.isoformat(),
        local.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
        local.strftime("%Y-%m-%d %H:%M:%S"),
    )


def _status(row: Any) -> str:
    return format_html('<span class="badge status-{}">{}</span>', row.status, row.status)


def _cost(row: Any) -> str:
    return format_html('<span class="num">{}</span>', usd(row.cost_usd))


def _tokens(row: Any) -> str:
    return f"{row.input_tokens:,} → {row.output_tokens:,}"


def _ms(value: int | None) -> str:
    return "—" if value is None else f"{value:,} ms"


def _candidates(route: Any) -> str:
    if route.candidates:
        return ", ".join(route.candidates)
    if route.candidate_filter:
        return "filter: " + ", ".join(f"{k}={v}" for k, v in route.candidate_filter.items())
    return "every model"


class RouteTable(Table):
    columns = (
        Column("name", order_by=None, link="routing:route-detail", classes="mono"),
        Column("strategy", accessor=lambda r: r.get_strategy_display() if r.strategy else "—"),
        Column("tier", accessor=lambda r: r.get_tier_display() if r.tier else "—"),
        Column("candidates", "Candidates / filter", accessor=_candidates),
        Column("enabled", order_by=None, template="console/cells/boolean.html"),
        Column(
            "builtin",
            "Overrides a built-in",
            accessor=lambda r: r.name in BUILTIN_ROUTES,
            template="console/cells/boolean.html",
        ),
        Column("updated_at", "Updated", order_by=None, template="console/cells/datetime.html"),
    )
    default_order = "name"
    empty_title = "No routes of your own yet"
    empty_text = (
        "The built-in routes above work without configuration. Add a route to choose among "
        "models you name, or by a filter, with its own strategy, fallbacks and cache."
    )
    empty_action = ("routing:route-add", "Add a route", ("routing.route", "add"))


class RequestLogTable(Table):
    """The request log: a million rows and more, so keyset pages and estimated totals."""

    big = True
    per_page = 50
    label = "Requests"
    columns = (
        Column(
            "created_at",
            "Time",
            accessor=_time,
            order_by=None,
            link="routing:requestlog-detail",
            classes="nowrap",
        ),
        Column("request_id", "Request", classes="mono"),
        Column("model", accessor=lambda r: r.model or r.requested_model or "—", classes="mono"),
        Column("route", accessor=lambda r: r.route or "—", classes="mono"),
        Column("status", accessor=_status),
        Column("http_status", "HTTP", classes="num"),
        Column("tokens", "Tokens in → out", accessor=_tokens, classes="num"),
        Column("cost_usd", "Cost", accessor=_cost, order_by=None, classes="num"),
        Column("latency_ms", "Latency", accessor=lambda r: _ms(r.latency_ms), classes="num"),
        Column("ttft_ms", "TTFT", accessor=lambda r: _ms(r.ttft_ms), classes="num"),
        Column("cache", accessor=lambda r: r.cache or "—"),
    )
    default_order = "-created_at"
    empty_title = "No requests yet"
    empty_text = (
        "Requests appear here once applications call ATP's /v1 endpoints with an API key. "
        "Widen the time range or clear the filters to see more."
    )

    # Set by the view when the viewer sees only some tenants' rows: the table's estimated
    # size would tell them how much every other tenant sends.
    scoped = False

    def _total(self) -> tuple[int | None, bool, bool]:
        """On PostgreSQL a filtered (or tenant-scoped) page gets the planner's estimate of its rows, counted
        exactly only when that estimate is small: counting even ten thousand matches costs
        more than the page itself."""
        if connection.vendor != "postgresql":
            return super()._total()
        if not self.filtered and not self.scoped:
            return super()._total()  # the table's estimated size
        estimate = _planned_rows(self.queryset.order_by())
        if estimate is None or estimate < EXACT_BELOW:
            counted = self.queryset.order_by()[: COUNT_LIMIT + 1].count()
            return min(counted, COUNT_LIMIT), False, counted > COUNT_LIMIT
        return estimate, True, False

    def _keyset(self, values: list[str], forward: bool) -> Q:
        # The frame's (sort < v) OR (sort = v AND pk < p) is repeated with a plain bound on
        # the sort column, so PostgreSQL starts its index range scan at the cursor instead of
        # filtering every newer row: a deep page costs what the first does.
        q = super()._keyset(values, forward)
        if self.sort in ("pk", "id") or values[0] is None:
            return q
        field = self.queryset.model._meta.get_field(self.sort)
        value = field.to_python(values[0])
        after = forward != self.descending
        return Q(**{f"{self.sort}__{'gte' if after else 'lte'}": value}) & q
