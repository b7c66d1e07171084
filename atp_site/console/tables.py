"""Tables declared as data: columns, sorting, search and keyset pagination.

    class ProviderTable(Table):
        columns = (
            Column("name", link="providers:provider-detail"),
            Column("kind", "Protocol"),
            Column("enabled", template="console/cells/boolean.html"),
        )
        default_order = "name"
        empty_title = "No providers yet"
        empty_text = "Add the first provider to start routing requests."

Pages are cut with keyset pagination (a cursor on the sort column and the primary key), never
OFFSET and never a full count on big tables, so the millionth page costs what the first does.
A sortable column must be a non-null database field (or give `order_by`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from django.db import connection
from django.db.models import F, Model, Q, QuerySet
from django.http import QueryDict
from django.template.loader import get_template
from django.urls import reverse
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe

# An exact count up to this many rows; above it the table says "more than".
COUNT_LIMIT = 10_000


@dataclass(frozen=True)
class Column:
    """One column. `accessor` is a dotted attribute path or a callable taking the row."""

    name: str
    label: str = ""
    accessor: str | Callable[[Any], Any] | None = None
    # A database field to sort by; "" disables sorting; None sorts by `name`.
    order_by: str | None = ""
    # A URL name reversed with the row's pk (or `link_arg`'s attribute).
    link: str | None = None
    link_arg: str = "pk"
    # A template rendering the cell with `value` and `row` in its context.
    template: str | None = None
    classes: str = ""

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    @property
    def sort_field(self) -> str | None:
        if self.order_by is None:
            return self.name
        return self.order_by or None

    def value(self, row: Any) -> Any:
        accessor = self.accessor or self.name
        if callable(accessor):
            return accessor(row)
        value: Any = row
        for part in accessor.split("."):
            value = getattr(value, part, None) if value is not None else None
            if callable(value) and not isinstance(value, Model):
                value = value()
        return value

    def href(self, row: Any) -> str | None:
        if not self.link:
            return None
        return reverse(self.link, args=[Column(self.link_arg).value(row)])


@dataclass
class Cell:
    column: Column
    value: Any
    href: str | None


def render_cell(cell: Cell, row: Any) -> str:
    """A cell's content: the column's template, a link, or the plain value."""
    column = cell.column
    if column.template:
        # Without the request: rendering with it would run every context processor per cell.
        return get_template(column.template).render(
            {"value": cell.value, "row": row, "column": column}
        )
    shown = display(cell.value)
    if cell.href:
        return format_html('<a href="{}">{}</a>', cell.href, shown)
    return conditional_escape(shown)


def display(value: Any) -> Any:
    """A value as a cell shows it: a dash for nothing, Yes/No, decimals without trailing zeros."""
    if value is None or value == "":
        return mark_safe('<span class="muted" aria-label="none">—</span>')
    if value is True:
        return "Yes"
    if value is False:
        return "No"
    if isinstance(value, Decimal):
        return f"{value:,.6f}".rstrip("0").rstrip(".")
    return value


@dataclass
class Page:
    rows: list[Any]
    next_cursor: str | None
    prev_cursor: str | None
    total: int | None  # None: unknown (a big filtered table)
    total_is_estimate: bool
    total_capped: bool
    table: Table | None = None

    @property
    def cells(self) -> list[tuple[Any, SafeString]]:
        """Each row with its cells as HTML, rendered in Python when the template asks (after
        a table's `page()` has annotated its rows): fifty rows of a dozen template tags
        each would cost more than the query."""
        if self.table is None:
            return [(row, mark_safe("")) for row in self.rows]
        return [(row, self.table.row_html(row)) for row in self.rows]


def _encode(values: Sequence[Any]) -> str:
    raw = json.dumps([str(v) if v is not None else None for v in values]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> list[str] | None:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        return None
    if not isinstance(values, list) or len(values) != 2:
        return None
    return values


class Table:
    """A declared table over a queryset; see the module docstring."""

    columns: ClassVar[tuple[Column, ...]] = ()
    default_order: ClassVar[str] = "-pk"
    per_page: ClassVar[int] = 50
    # Big tables (request log, audit events): estimate the unfiltered total and cap counting.
    big: ClassVar[bool] = False
    # The scrolling region's accessible name; the page's title when empty.
    label: ClassVar[str] = ""
    empty_title: ClassVar[str] = "Nothing here yet"
    empty_text: ClassVar[str] = ""
    # (URL name, label, ("app.model", action)) of the empty state's call to action.
    empty_action: ClassVar[tuple[str, str, tuple[str, str] | None] | None] = None

    def __init__(self, queryset: QuerySet, params: QueryDict, *, filtered: bool = False):
        self.queryset = queryset
        self.params = params
        self.filtered = filtered
        self.sort, self.descending = self._sort()

    # --- sorting ------------------------------------------------------------------------
    def sortable(self) -> dict[str, str]:
        return {c.name: c.sort_field for c in self.columns if c.sort_field}

    def _sort(self) -> tuple[str, bool]:
        asked = self.params.get("sort", "")
        descending = asked.startswith("-")
        name = asked.lstrip("-")
        fields = self.sortable()
        if name in fields:
            return fields[name], descending
        default = self.default_order
        return default.lstrip("-"), default.startswith("-")

    def current_sort(self) -> str:
        for name, field in self.sortable().items():
            if field == self.sort:
                return ("-" if self.descending else "") + name
        return ""

    def sort_links(self) -> dict[str, tuple[str, str]]:
        """Column name -> (query string to sort by it, aria-sort value)."""
        links = {}
        current = self.current_sort()
        for name in self.sortable():
            if current == name:
                target, state = f"-{name}", "ascending"
            elif current == f"-{name}":
                target, state = name, "descending"
            else:
                target, state = name, "none"
            query = self.params.copy()
            query["sort"] = target
            query.pop("cursor", None)
            query.pop("before", None)
            links[name] = (query.urlencode(), state)
        return links

    # --- paging -------------------------------------------------------------------------
    def _keyset(self, values: list[str], forward: bool) -> Q:
        sort_field = self.sort
        model = self.queryset.model
        field = model._meta.get_field(sort_field) if sort_field != "pk" else model._meta.pk
        pk_field = model._meta.pk
        value = field.to_python(values[0]) if values[0] is not None else None
        pk = pk_field.to_python(values[1])
        after = forward != self.descending  # ascending walk: greater than
        op = "gt" if after else "lt"
        if sort_field in ("pk", pk_field.name):
            return Q(**{f"pk__{op}": pk})
        return Q(**{f"{sort_field}__{op}": value}) | Q(**{sort_field: value, f"pk__{op}": pk})

    def _ordered(self, queryset: QuerySet, forward: bool) -> QuerySet:
        descending = self.descending if forward else not self.descending
        sign = "-" if descending else ""
        keys = [f"{sign}{self.sort}"]
        if self.sort not in ("pk", self.queryset.model._meta.pk.name):
            keys.append(f"{sign}pk")
        return queryset.order_by(*keys)

    def _cursor_of(self, row: Any) -> str:
        value = row.pk if self.sort == "pk" else getattr(row, self.sort)
        return _encode([value, row.pk])

    def page(self) -> Page:
        after = _decode(self.params.get("cursor", ""))
        before = _decode(self.params.get("before", "")) if after is None else None
        queryset = self.queryset
        forward = before is None
        try:
            if after is not None:
                queryset = queryset.filter(self._keyset(after, True))
            elif before is not None:
                queryset = queryset.filter(self._keyset(before, False))
        except Exception:  # a cursor that does not parse as this column's type: start over
            queryset, after, before, forward = self.queryset, None, None, True
        rows = list(self._ordered(queryset, forward)[: self.per_page + 1])
        more = len(rows) > self.per_page
        rows = rows[: self.per_page]
        if not forward:
            rows.reverse()
        has_next = more if forward else True
        has_prev = (after is not None) if forward else more
        total, estimate, capped = self._total()
        return Page(
            table=self,
            rows=rows,
            next_cursor=self._cursor_of(rows[-1]) if rows and has_next else None,
            prev_cursor=self._cursor_of(rows[0]) if rows and has_prev else None,
            total=total,
            total_is_estimate=estimate,
            total_capped=capped,
        )

    def cells(self, row: Any) -> list[Cell]:
        return [Cell(c, c.value(row), c.href(row)) for c in self.columns]

    def row_html(self, row: Any) -> SafeString:
        parts = []
        for cell in self.cells(row):
            classes = cell.column.classes
            parts.append(
                format_html('<td class="{}">{}</td>', classes, render_cell(cell, row))
                if classes
                else format_html("<td>{}</td>", render_cell(cell, row))
            )
        return mark_safe("".join(parts))  # each part is built by format_html

    def _total(self) -> tuple[int | None, bool, bool]:
        """(total, is an estimate, capped at COUNT_LIMIT)."""
        if self.big and not self.filtered and connection.vendor == "postgresql":
            table = self.queryset.model._meta.db_table
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table]
                )
                found = cursor.fetchone()
            if found and found[0] >= COUNT_LIMIT:
                return int(found[0]), True, False
        if self.big:
            counted = self.queryset.order_by()[: COUNT_LIMIT + 1].count()
            return min(counted, COUNT_LIMIT), False, counted > COUNT_LIMIT
        return self.queryset.count(), False, False

    def page_query(self, cursor: str | None, *, before: bool = False) -> str | None:
        if cursor is None:
            return None
        query = self.params.copy()
        query.pop("cursor", None)
        query.pop("before", None)
        query["before" if before else "cursor"] = cursor
        return query.urlencode()


def search_q(fields: Sequence[str], term: str) -> Q:
    """`term` in any of `fields` (icontains; `=field` for an exact match)."""
    q = Q()
    for field in fields:
        if field.startswith("="):
            q |= Q(**{field[1:]: term})
        else:
            q |= Q(**{f"{field}__icontains": term})
    return q


__all__ = ["COUNT_LIMIT", "Cell", "Column", "F", "Page", "Table", "search_q"]
