"""The console's tables of routes and of the request log."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from apps.routing.snapshot import BUILTIN_ROUTES
from atp_site.console.tables import Column, Table


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
    columns = (
        Column(
            "created_at",
            "Time",
            order_by=None,
            link="routing:requestlog-detail",
            template="console/cells/datetime.html",
        ),
        Column("request_id", "Request", classes="mono"),
        Column("model", accessor=lambda r: r.model or r.requested_model or "—", classes="mono"),
        Column("route", accessor=lambda r: r.route or "—", classes="mono"),
        Column("status", template="console/cells/status.html"),
        Column("http_status", "HTTP", classes="num"),
        Column("tokens", "Tokens in → out", accessor=_tokens, classes="num"),
        Column("cost_usd", "Cost", order_by=None, template="console/cells/usd.html"),
        Column("latency_ms", "Latency", accessor=lambda r: _ms(r.latency_ms), classes="num"),
        Column("ttft_ms", "TTFT", accessor=lambda r: _ms(r.ttft_ms), classes="num"),
        Column("cache", accessor=lambda r: r.cache or "—"),
    )
    default_order = "-created_at"
    empty_title = "No requests match"
    empty_text = (
        "Requests appear here once applications call ATP's /v1 endpoints with an API key. "
        "Widen the time range or clear the filters to see more."
    )

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
