"""ATP's own endpoints: explain a routing decision, ask in one call, and rate an answer.

POST /v1/route     the ranked recommendations for a chat request; no provider is called
POST /v1/ask       {prompt, quality?, max_cost_usd?, latency_slo_ms?, model?, system?,
                    max_tokens?, temperature?}: the answer's text, usage, cost and decision
POST /v1/feedback  {request_id, score 0..1, comment?}: teaches the learned routes
"""

from __future__ import annotations

import math
from typing import Any

from asgiref.sync import sync_to_async

from apps.routing.engine.hints import parse_hints
from apps.routing.engine.router import get_engine
from apps.routing.pipeline import govern
from apps.routing.pipeline.admit import admit_chat, enter
from apps.routing.pipeline.auth import authenticate
from apps.routing.pipeline.chat import complete
from apps.routing.pipeline.context import RequestContext
from apps.routing.pipeline.ensemble import answer_text
from apps.routing.pipeline.learning import learning_key
from apps.routing.pipeline.openai_api import served_headers
from apps.routing.pipeline.plan import decide, plan_chat, refresh_learning
from apps.routing.pipeline.reach import reach_for
from apps.routing.pipeline.results import JsonResult
from apps.routing.pipeline.route import candidates
from apps.routing.pipeline.settle import settle, usd_number
from apps.routing.schemas import parse_json_object, validate_chat
from apps.routing.snapshot import RouteInfo, holder
from apps.routing.writebehind import admit, request_logs
from apps.routing.writebehind import feedback as feedback_rows
from atp_site.lib.errors import ATPError, InvalidRequest, NotFound
from atp_site.lib.identifiers import control_free

MAX_COMMENT = 4000
ASK_FIELDS = frozenset(
    {
        "prompt",
        "system",
        "model",
        "quality",
        "max_cost_usd",
        "latency_slo_ms",
        "region",
        "required_capabilities",
        "carbon_aware",
        "max_tokens",
        "temperature",
        "user",
    }
)
_HINT_FIELDS = (
    "quality",
    "max_cost_usd",
    "latency_slo_ms",
    "region",
    "required_capabilities",
    "carbon_aware",
)


def _chat_body(body: dict[str, Any]) -> dict[str, Any]:
    """A chat request from /v1/route's body: a chat request, or a prompt like /v1/ask's."""
    if "messages" in body:
        chat = dict(body)
        chat.setdefault("model", "auto")
        return chat
    return _ask_to_chat(body)


def _ask_to_chat(body: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(body) - ASK_FIELDS)
    if unknown:
        raise InvalidRequest(f"Unknown field '{unknown[0]}'.", param=unknown[0])
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequest("'prompt' must be a non-empty string.", param="prompt")
    messages = []
    system = body.get("system")
    if system is not None:
        if not isinstance(system, str):
            raise InvalidRequest("'system' must be a string.", param="system")
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": prompt})
    chat: dict[str, Any] = {"model": body.get("model", "auto"), "messages": messages}
    for name in ("max_tokens", "temperature", "user"):
        if name in body:
            chat[name] = body[name]
    hints = {name: body[name] for name in _HINT_FIELDS if name in body}
    if hints:
        chat["atp"] = hints
    return chat


async def route(ctx: RequestContext, headers: dict[bytes, bytes], raw: bytes) -> JsonResult:
    snapshot = await holder.get()
    key = ctx.key = authenticate(snapshot, headers)
    body = _chat_body(parse_json_object(raw))
    model = validate_chat(body)
    request = parse_hints(body, headers, key)
    pool = None
    if model in snapshot.routes:
        target = snapshot.routes[model]
        await get_engine().refresh()
    elif model in snapshot.listed:
        # A model name: rank its deployments the same way (health, cost, latency), among
        # those the request may reach.
        reach = reach_for(snapshot, key, regions=request.regions)
        candidates(snapshot, key, model, reach)  # the 403/400 a chat request would get
        target = RouteInfo(name=model, candidates=(model,), strategy="score")
        pool = reach.filter(snapshot.listed[model])
    else:
        raise NotFound(
            f"The model or route '{model}' does not exist or you do not have access to it.",
            param="model",
        )
    decision = decide(snapshot, key, target, request, pool=pool)
    out = decision.to_dict(limit=50, detail=True)
    return JsonResult(
        200,
        {
            "object": "route.decision",
            "route": model,
            "decision": out,
            "recommendations": out["ranking"],
        },
        headers=[(b"x-atp-route", model.encode()), (b"x-atp-model", decision.model.encode())],
    )


async def ask(ctx: RequestContext, headers: dict[bytes, bytes], raw: bytes) -> JsonResult:
    snapshot = await holder.get()
    ctx.key = authenticate(snapshot, headers)
    admit()
    enter(ctx)
    try:
        body = _ask_to_chat(parse_json_object(raw))
        model = validate_chat(body)
        ctx.requested_model = model
        if ctx.key.store_bodies:
            ctx.request_body = body
        ctx.end_user = body.get("user") or ""
        govern.inbound(snapshot, ctx, body, headers, endpoint="ask")
        await refresh_learning(snapshot, model)
        plan = plan_chat(snapshot, ctx, model, body, headers)
        plan = await admit_chat(
            snapshot, ctx, body, plan, lambda m: plan_chat(snapshot, ctx, m, body, headers)
        )
        upstream = {k: v for k, v in body.items() if k not in ("model", "atp")}
        done = await complete(ctx, plan.cands, upstream, plan.overrides)
    except ATPError as err:
        settle(ctx, http_status=err.status, error=err)
        raise
    dep = ctx.deployment
    return JsonResult(
        200,
        {
            "id": ctx.request_id,
            "object": "ask.response",
            "text": answer_text(govern.restored(ctx, done.response)),
            "model": dep.public_name,
            "provider": dep.provider_name,
            "usage": done.usage.to_openai(),
            "usage_estimated": done.estimated,
            "cost_usd": usd_number(done.cost),
            "decision": ctx.decision,
        },
        headers=served_headers(ctx, done.cost),
    )


def _feedback_fields(body: dict[str, Any]) -> tuple[str, float, str]:
    request_id = body.get("request_id")
    if (
        not isinstance(request_id, str)
        or not request_id.strip()
        or len(request_id) > 128
        or not control_free(request_id)
    ):
        raise InvalidRequest(
            "'request_id' must be the id of an earlier request (its x-request-id).",
            param="request_id",
        )
    score = body.get("score")
    if (
        isinstance(score, bool)
        or not isinstance(score, int | float)
        or not math.isfinite(score)
        or not 0 <= score <= 1
    ):
        raise InvalidRequest("'score' must be a number from 0 to 1.", param="score")
    comment = body.get("comment", "")
    if comment is None:
        comment = ""
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise InvalidRequest(
            f"'comment' must be a string of at most {MAX_COMMENT} characters.", param="comment"
        )
    return request_id.strip(), float(score), comment


def _logged_request(request_id: str, tenant_id: str) -> dict[str, Any] | None:
    from apps.routing.models import RequestLog

    return (
        RequestLog.objects.filter(request_id=request_id, tenant_id=tenant_id, shadow_of="")
        .values("route", "model", "task_cluster")
        .first()
    )


async def feedback(ctx: RequestContext, headers: dict[bytes, bytes], raw: bytes) -> JsonResult:
    snapshot = await holder.get()
    key = ctx.key = authenticate(snapshot, headers)
    admit()
    request_id, score, comment = _feedback_fields(parse_json_object(raw))
    learned = await get_engine().record_feedback(
        learning_key(key.tenant_id, request_id), score, comment
    )
    if learned is not None:
        served = {
            "route": learned["route"],
            "model": learned["model"],
            "task_cluster": learned["task_cluster"],
        }
    else:
        # Not a learned route's request, rated already, or older than the engine remembers:
        # keep the score if the request is the caller's own.
        await request_logs.flush()
        served = await sync_to_async(_logged_request)(request_id, key.tenant_id)
        if served is None:
            raise NotFound(
                f"No request '{request_id}' was found for this API key's tenant.",
                param="request_id",
            )
    feedback_rows.put(
        {
            "request_id": request_id,
            "created_at": ctx.created_at,
            "tenant_id": key.tenant_id,
            "api_key_id": key.id,
            "score": score,
            "comment": comment,
            "route": served["route"] or "",
            "model": served["model"] or "",
            "task_cluster": served["task_cluster"],
        }
    )
    return JsonResult(
        200,
        {
            "object": "feedback",
            "request_id": request_id,
            "score": score,
            "learned": learned is not None,
            "route": served["route"] or None,
            "model": served["model"] or None,
        },
    )
