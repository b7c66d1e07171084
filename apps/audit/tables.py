"""The console's tables of the audit log, retention policies and auditor grants."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django.utils.html import format_html

from apps.audit.models import AuditEvent
from apps.audit.selectors import tenant_names
from atp_site.console.tables import COUNT_LIMIT, Cell, Column, Table


def _when(row: Any) -> str:
    # Rendered here rather than by a cell template: fifty rows a page, a million-row table.
    local = timezone.localtime(row.occurred_at)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        local.isoformat(),
        local.strftime("%Y-%m-%d %H:%M:%S %Z"),
        local.strftime("%Y-%m-%d %H:%M"),
    )


def _outcome(row: Any) -> str:
    return format_html('<span class="badge status-{}">{}</span>', row.outcome, row.outcome)


class AuditEventTable(Table):
    """A million-row table: keyset pages by id (which follows the sequence), estimated total."""

    columns = (
        Column("sequence", "#", order_by="pk", link="audit:event-detail", link_arg="sequence"),
        Column("occurred_at", "When", accessor=_when, order_by="occurred_at", classes="nowrap"),
        Column("event_type", "Event"),
        Column("action"),
        Column("actor"),
        Column("tenant_id", "Tenant"),
        Column("outcome", accessor=_outcome),
        Column("classification"),
    )
    default_order = "-pk"
    big = True
    empty_title = "No audit events yet"
    empty_text = (
        "Every change, sign-in, export and gateway request leaves an event here, linked to "
        "the one before it so nothing can be removed unseen."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tenants = tenant_names()
        if not self.params.get("sort") and (self.params.get("since") or self.params.get("until")):
            # A period is found through the time index; newest first by id would walk
            # every later event before reaching it.
            self.sort, self.descending = "occurred_at", True

    def _keyset(self, values: list[str], forward: bool) -> Any:
        keyset = super()._keyset(values, forward)
        if self.sort != "occurred_at" or values[0] is None:
            return keyset
        # (time < t) or (time = t and id < pk), bounded by time <= t so the index range
        # starts at the cursor instead of the newest event.
        value = AuditEvent._meta.get_field("occurred_at").to_python(values[0])
        after = forward != self.descending
        return (Q(occurred_at__gte=value) if after else Q(occurred_at__lte=value)) & keyset

    def cells(self, row: Any) -> list[Cell]:
        cells = super().cells(row)
        for cell in cells:
            if cell.column.name == "tenant_id" and cell.value is not None:
                cell.value = self.tenants.get(str(cell.value), str(cell.value)[:8])
        return cells

    def _total(self) -> tuple[int | None, bool, bool]:
        """Estimated on PostgreSQL whenever the rows are narrowed (filters or the viewer's
        tenants): the planner's estimate costs a millisecond, a capped count thousands of
        rows; the table's own estimate would show a tenant auditor the whole log's size."""
        narrowed = bool(self.queryset.query.where)
        if connection.vendor != "postgresql" or not narrowed:
            return super()._total()
        try:
            sql, params = self.queryset.order_by().query.sql_with_params()
        except EmptyResultSet:
            return 0, False, False
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        rows = int(plan[0]["Plan"]["Plan Rows"])
        if rows < COUNT_LIMIT // 10:
            # Few enough to count exactly, cheaply, through the filter's index.
            return super()._total()
        return rows, True, False


class RetentionPolicyTable(Table):
    columns = (
        Column("tenant_id", "Tenant"),
        Column("classification", order_by=None, link="audit:retentionpolicy-edit"),
        Column("days", order_by=None, classes="num"),
        Column("updated_at", "Updated", order_by=None, template="console/cells/datetime.html"),
    )
    default_order = "classification"
    empty_title = "No retention policies"
    empty_text = (
        "Without a policy, records are kept for the defaults (ATP_AUDIT_RETENTION_DAYS, "
        "ATP_REQUEST_LOG_RETENTION_DAYS, ATP_BODY_RETENTION_DAYS). Add one per tenant or "
        "classification to keep records shorter or longer."
    )
    empty_action = (
        "audit:retentionpolicy-add",
        "Add a retention policy",
        ("audit.retentionpolicy", "add"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tenants = tenant_names()

    def cells(self, row: Any) -> list[Cell]:
        cells = super().cells(row)
        for cell in cells:
            if cell.column.name == "tenant_id":
                cell.value = (
                    self.tenants.get(str(cell.value), str(cell.value))
                    if cell.value
                    else "Every tenant"
                )
            elif cell.column.name == "classification" and not cell.value:
                cell.value = "any"
        return cells


def _run_started(row: Any) -> str:
    local = timezone.localtime(row.started_at)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        local.isoformat(),
        local.strftime("%Y-%m-%d %H:%M:%S %Z"),
        local.strftime("%Y-%m-%d %H:%M:%S"),
    )


def _run_status(row: Any) -> str:
    return format_html('<span class="badge status-{}">{}</span>', row.status, row.status)


def _run_outcome(row: Any) -> str:
    """The error of a failed run (with its retry), else the summary of its result."""
    if row.error:
        retry = f" Retried in {row.retry_in} s." if row.retry_in is not None else ""
        return format_html('<span class="field-error">{}</span>{}', row.error, retry)
    if row.result is None:
        return ""
    text = json.dumps(row.result, sort_keys=True, default=str)
    shown = text if len(text) <= 160 else text[:159] + "…"
    return format_html('<code title="{}">{}</code>', text[:2000], shown)


class ScheduledRunTable(Table):
    """Runs of the periodic jobs, newest first; a failed run shows its error in red."""

    columns = (
        Column("started_at", "Started", accessor=_run_started, order_by=None, classes="nowrap"),
        Column("task", "Job", order_by=None),
        Column("status", accessor=_run_status),
        Column("duration_ms", "Duration (ms)", classes="num"),
        Column("attempt", classes="num"),
        Column("outcome", "Result or error", accessor=_run_outcome),
        Column("hostname", "Worker"),
    )
    default_order = "-started_at"
    label = "Runs"
    empty_title = "No runs recorded yet"
    empty_text = (
        "Each periodic job records every run here: when it started and finished, whether it "
        "succeeded, failed or was skipped because another run was in progress."
    )
