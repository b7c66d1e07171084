"""Data-plane audit events: queued by the request path, appended to the chain in batches.

Every settled /v1 request becomes one `gateway.request` event. The request path only
appends a plain row to `audit_events`; the queue's worker turns a batch into pending
events and appends them in one transaction, so they join the same chain as every other
event. The ASGI lifespan drains the queue on shutdown, before the request log.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from apps.audit.context import AuditActor
from apps.audit.services import PendingEvent, audit_append
from apps.routing.writebehind import Row, WriteBehindQueue, register
from atp_site.lib.journal import by_request

# Statuses a caller was refused with rather than failed at.
DENIED_STATUSES = frozenset({401, 403, 429})


# Errors answered with a refusal status that are the upstream's doing, not the caller's:
# every provider rate-limited the request (a 429 passed on), which is a failure to serve.
UPSTREAM_ERRORS = frozenset({"upstream_rate_limited"})


def outcome_of(status: str, http_status: int, error_type: str = "") -> str:
    if http_status in DENIED_STATUSES and error_type not in UPSTREAM_ERRORS:
        return "denied"
    return "success" if status == "success" else "failure"


def _decision_summary(decision: dict | None) -> dict | None:
    """What the audit keeps of a RouteDecision: the choice and why, not the full ranking."""
    if not decision:
        return None
    keep = ("strategy", "tier", "model", "provider", "confidence", "task_cluster", "explored")
    out = {k: decision[k] for k in keep if k in decision}
    out["reasoning"] = list(decision.get("reasoning") or ())[:8]
    return out


def gateway_event(log: Row, *, provider: str = "") -> Row:
    """The audit row for one settled request, from its request log row."""
    key_id = log.get("api_key_id")
    cost = log.get("cost_usd")
    return {
        "occurred_at": log.get("completed_at"),
        "tenant_id": log.get("tenant_id"),
        "actor": f"api_key:{key_id}" if key_id else "anonymous",
        "request_id": log.get("request_id", ""),
        "outcome": outcome_of(
            log.get("status", ""), log.get("http_status", 0), log.get("error_type", "")
        ),
        "model": log.get("model") or log.get("requested_model", ""),
        "data": {
            "request_id": log.get("request_id", ""),
            "endpoint": log.get("endpoint", ""),
            "requested_model": log.get("requested_model", ""),
            "model": log.get("model", ""),
            "provider": provider,
            "provider_id": log.get("provider_id"),
            "deployment_id": log.get("deployment_id"),
            "stream": log.get("stream", False),
            "status": log.get("status", ""),
            "http_status": log.get("http_status"),
            # Not "*_tokens": names with "token" in them are masked as secrets.
            "usage": {
                "input": log.get("input_tokens", 0),
                "output": log.get("output_tokens", 0),
                "cached_input": log.get("cached_input_tokens", 0),
                "reasoning": log.get("reasoning_tokens", 0),
            },
            "cost_usd": str(cost if cost is not None else Decimal(0)),
            "latency_ms": log.get("latency_ms"),
            "error_code": log.get("error_type", ""),
            "route": log.get("route", ""),
            "route_decision": _decision_summary(log.get("decision")),
            "cache": log.get("cache", ""),
            "shadow_of": log.get("shadow_of", ""),
            # What governance decided (apps.routing.pipeline.govern): the matched policies
            # and the counts of redacted values per entity type (never the values).
            "classification": log.get("classification") or "internal",
            "policy": log.get("policy"),
            "redactions": log.get("redactions") or {},
        },
    }


def _pending(row: Row) -> PendingEvent:
    occurred_at = row.get("occurred_at")
    return PendingEvent(
        event_type="gateway.request",
        action="request",
        outcome=row["outcome"],
        tenant_id=row.get("tenant_id"),
        resource_type="model",
        resource_id=row.get("model", ""),
        data=row["data"],
        occurred_at=occurred_at if isinstance(occurred_at, datetime) else None,
        actor=AuditActor(
            actor=row["actor"], source="data_plane", request_id=row.get("request_id", "")[:128]
        ),
        # gateway_event builds `data` from the request log's own fields: nothing to mask.
        masked=True,
        classification=row["data"].get("classification") or "internal",
        # A policy's `retention` effect: this request's event is kept that many days.
        retention_days=_retention(row["data"].get("policy")),
    )


def _retention(policy: Any) -> int | None:
    days = policy.get("retention_days") if isinstance(policy, dict) else None
    return days if isinstance(days, int) and not isinstance(days, bool) and days > 0 else None


def write_audit_events(rows: list[Row]) -> None:
    """Append a batch to the chain in one transaction (run in the queue's worker thread)."""
    from django.db import close_old_connections

    close_old_connections()
    audit_append([_pending(row) for row in rows], returning=False)


audit_events = register(
    WriteBehindQueue(
        write_audit_events,
        "audit",
        dedupe=by_request("audit.AuditEvent", "occurred_at", event_type="gateway.request"),
        time_field="occurred_at",
    )
)


def record_gateway_request(log: Row, *, provider: str = "") -> None:
    """Queue the audit event for a settled request; never raises into the response path."""
    audit_events.put(gateway_event(log, provider=provider))
