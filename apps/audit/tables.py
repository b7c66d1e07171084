"""The console's tables of the audit log, retention policies and auditor grants."""

from __future__ import annotations

from typing import Any

from apps.audit.selectors import tenant_names
from atp_site.console.tables import Cell, Column, Table


class AuditEventTable(Table):
    """A million-row table: keyset pages by id (which follows the sequence), estimated total."""

    columns = (
        Column("sequence", "#", order_by="pk", link="audit:event-detail", link_arg="sequence"),
        Column("occurred_at", "When", template="console/cells/datetime.html"),
        Column("event_type", "Event"),
        Column("action"),
        Column("actor"),
        Column("tenant_id", "Tenant"),
        Column("outcome", template="console/cells/status.html"),
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

    def cells(self, row: Any) -> list[Cell]:
        cells = super().cells(row)
        for cell in cells:
            if cell.column.name == "tenant_id" and cell.value is not None:
                cell.value = self.tenants.get(str(cell.value), str(cell.value)[:8])
        return cells


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
