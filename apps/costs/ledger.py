"""The usage ledger: one row per settled request that was served or billed, and the
last-used time of the keys that made them.

A settled request's ledger row rides on its request-log row (the `PROJECT` key marks it and
holds the key's project) and is written by the request log's writer in the same
transaction: one queued row, one journal entry, one spill line and one commit for both,
so the two tables always agree. The `usage-ledger` queue remains for rows queued on their
own by earlier versions (its journals and spill files are still recovered).

Mirrored challenger calls are ATP's own evaluation traffic: they have request log rows
(with `shadow_of`) but no ledger rows, and no budget counts them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from apps.routing.writebehind import WriteBehindQueue, register
from atp_site.lib.bulk import RowInserter, in_transaction
from atp_site.lib.journal import by_request

_insert = RowInserter("costs.UsageRecord")

# On a request-log row: write its ledger row with it; the value is the key's project id.
PROJECT = "_ledger_project"


def insert_ledger(rows: list[dict[str, Any]]) -> None:
    """Insert a batch and move each key's last-used time forward (one UPDATE per key),
    within the caller's transaction."""
    from apps.tenants.services import api_keys_touch

    _insert.insert(rows)
    latest: dict[Any, Any] = {}
    for row in rows:
        kid = row.get("api_key_id")
        if kid and (kid not in latest or row["created_at"] > latest[kid]):
            latest[kid] = row["created_at"]
    if latest:
        api_keys_touch(latest)


ledger = register(
    WriteBehindQueue(
        in_transaction(insert_ledger),
        "usage-ledger",
        dedupe=by_request("costs.UsageRecord", "created_at"),
        classification="requests",
    )
)


def ledger_rows(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ledger rows of request-log rows marked with `PROJECT`."""
    out = []
    for log in logs:
        if PROJECT in log:
            row = ledger_row(log, project_id=log[PROJECT])
            if row is not None:
                out.append(row)
    return out


def ledger_row(log: dict[str, Any], *, project_id: str | None) -> dict[str, Any] | None:
    """The ledger row of a request log row, or None when it neither served nor cost."""
    cost = log["cost_usd"] or Decimal(0)
    if log["shadow_of"] or log["tenant_id"] is None:
        return None
    if log["status"] != "success" and not cost:
        return None
    return {
        "request_id": log["request_id"],
        "created_at": log["created_at"],
        "tenant_id": log["tenant_id"],
        "project_id": project_id,
        "api_key_id": log["api_key_id"],
        "end_user": log["end_user"],
        "model": log["model"],
        "provider_id": log["provider_id"],
        "deployment_id": log["deployment_id"],
        "route": log["route"],
        "input_tokens": log["input_tokens"],
        "output_tokens": log["output_tokens"],
        "cached_input_tokens": log["cached_input_tokens"],
        "cache_write_tokens": log["cache_write_tokens"],
        "reasoning_tokens": log["reasoning_tokens"],
        "cost_usd": cost,
        "cached": log["cache"] in ("hit", "semantic_hit"),
    }
