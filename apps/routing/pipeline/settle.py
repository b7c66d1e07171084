"""Step: account for a finished request: usage, cost, and the request log row."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from apps.audit.bodies import record_exchange
from apps.audit.writebehind import record_gateway_request
from apps.costs import admission as limits
from apps.costs.catalog import prices_at
from apps.costs.ledger import PROJECT as LEDGER_PROJECT
from apps.costs.pricing import USD_QUANTUM, cost_usd
from apps.providers.adapters.base import Usage
from apps.routing.pipeline.context import RequestContext
from apps.routing.pipeline.learning import observe
from apps.routing.writebehind import request_logs
from atp_site import metrics
from atp_site.lib.errors import ATPError
from atp_site.lib.hot_settings import hot

ZERO = Decimal(0)
request_log = logging.getLogger("atp.requests")


def _log_request(ctx: RequestContext, row: dict) -> None:
    """One record per finished request (ATP_LOG_REQUESTS): ids, tenant, route and outcome;
    never the prompt, the answer or a key."""
    request_log.info(
        "%s %s %s %s %.0f ms",
        row["endpoint"],
        row["model"] or row["requested_model"] or "-",
        row["status"],
        row["http_status"],
        row["latency_ms"],
        extra={
            "request_id": row["request_id"],
            "trace_id": ctx.trace_id or None,
            "tenant": ctx.key.tenant_slug if ctx.key is not None else None,
            "route": row["route"] or None,
            "endpoint": row["endpoint"],
            "model": row["model"] or None,
            "outcome": row["status"],
            "http_status": row["http_status"],
            "latency_ms": row["latency_ms"],
            "ttft_ms": row["ttft_ms"],
            "input_tokens": row["input_tokens"],
            "output_tokens": row["output_tokens"],
            "cost_usd": str(row["cost_usd"]),
            "cache": row["cache"] or None,
            "error_type": row["error_type"] or None,
        },
    )


def usd_number(amount: Decimal) -> float:
    """Money in a /v1 response body: a JSON number (callers add and compare them), rounded
    to ATP's 8 decimals. Headers keep the exact decimal text (`format_usd`)."""
    return float(amount.quantize(USD_QUANTUM, rounding=ROUND_HALF_UP)) + 0.0


def cost_of(ctx: RequestContext, usage: Usage | None) -> Decimal:
    """The cost of `usage` at the deployment's prices in force when the request started."""
    if usage is None or ctx.deployment is None:
        return ZERO
    return cost_usd(usage, prices_at(ctx.deployment, ctx.created_at))


def settle(
    ctx: RequestContext,
    *,
    http_status: int,
    usage: Usage | None = None,
    usage_estimated: bool = False,
    cost: Decimal | None = None,
    error: ATPError | None = None,
    cancelled: bool = False,
) -> None:
    """Queue the request log row and its audit event; never raises into the response path.
    A request is settled once: a later call (an error raised after settling) does nothing."""
    if ctx.settled:
        return
    ctx.settled = True
    dep = ctx.deployment
    key = ctx.key
    usage = usage or Usage()
    if cancelled:
        status = "cancelled"
    elif error is not None or http_status >= 400:
        status = "error"
    else:
        status = "success"
    row = {
        "request_id": ctx.request_id,
        "created_at": ctx.created_at,
        "completed_at": datetime.now(UTC),
        "endpoint": ctx.endpoint,
        "tenant_id": key.tenant_id if key else None,
        "api_key_id": key.id if key else None,
        "end_user": ctx.end_user[:256],
        "requested_model": ctx.requested_model[:200],
        "model": dep.public_name if dep else "",
        "upstream_model": dep.target.upstream_model if dep else "",
        "deployment_id": dep.id if dep else None,
        "provider_id": dep.provider_id if dep else None,
        "stream": ctx.stream,
        "status": status,
        "http_status": http_status,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_input_tokens": usage.cached_input_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "usage_estimated": usage_estimated,
        "cost_usd": cost if cost is not None else cost_of(ctx, usage),
        "latency_ms": ctx.elapsed_ms(),
        "ttft_ms": ctx.elapsed_ms(ctx.first_token_at) if ctx.first_token_at else None,
        "error_type": (error.code or error.type)[:64] if error else "",
        "error_message": error.message[:2000] if error else "",
        "route": ctx.route[:200],
        # Failed and skipped attempts before the answer (or the error), for the request's
        # detail page; nothing is added on the common path, where there were none.
        "decision": {**(ctx.decision or {}), "attempts": ctx.attempts}
        if ctx.attempts
        else ctx.decision,
        "task_cluster": ctx.task_cluster,
        "cache": ctx.cache,
        "shadow_of": ctx.shadow_of,
    }
    gov = ctx.governance
    if gov is not None:
        row["classification"] = gov.classification
        row["redactions"] = gov.evidence()
        row["policy"] = gov.policy_record()
    row[LEDGER_PROJECT] = key.project_id if key else None  # its ledger row, written with it
    request_logs.put(row)
    if ctx.admission is not None:
        limits.settle(
            ctx.admission,
            tokens_used=usage.input_tokens + usage.output_tokens,
            cost=row["cost_usd"],
        )
    metrics.observe(row)
    if hot.ATP_LOG_REQUESTS:
        _log_request(ctx, row)
    record_gateway_request(row, provider=dep.provider_name if dep else "")
    if key is not None and key.store_bodies:
        record_exchange(row, ctx.request_body, ctx.response_body)
    if ctx.route_decision is not None:
        observe(ctx, row)
