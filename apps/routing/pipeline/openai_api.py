"""The OpenAI-compatible endpoints: chat completions, embeddings and models."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from apps.costs.pricing import format_usd
from apps.providers import tokens
from apps.providers.adapters.base import Usage
from apps.providers.exceptions import UpstreamError
from apps.routing.pipeline import execute
from apps.routing.pipeline.auth import authenticate
from apps.routing.pipeline.chat import StreamAccount, complete, relay
from apps.routing.pipeline.context import RequestContext
from apps.routing.pipeline.results import SSE_DONE, JsonResult, StreamResult, sse
from apps.routing.pipeline.route import candidates, visible_models, visible_routes
from apps.routing.pipeline.settle import cost_of, settle
from apps.routing.schemas import parse_json_object, validate_chat, validate_embeddings
from apps.routing.snapshot import DeploymentInfo, RouteInfo, holder
from atp_site.lib.errors import ATPError, NotFound, openai_error_body

# Request fields that are ATP's own and never go upstream.
_LOCAL_FIELDS = ("model", "stream", "stream_options", "atp")


def served_headers(ctx: RequestContext, cost=None) -> list[tuple[bytes, bytes]]:
    dep = ctx.deployment
    if dep is None:
        return []
    headers = [
        (b"x-atp-model", dep.public_name.encode()),
        (b"x-atp-provider", dep.provider_name.encode()),
    ]
    if cost is not None:
        headers.append((b"x-atp-cost-usd", format_usd(cost).encode()))
    return headers


async def chat_completions(
    ctx: RequestContext, headers: dict[bytes, bytes], raw: bytes
) -> JsonResult | StreamResult:
    snapshot = await holder.get()
    ctx.key = authenticate(snapshot, headers)
    try:
        body = parse_json_object(raw)
        model = validate_chat(body)
        ctx.requested_model = model
        if ctx.key.store_bodies:
            ctx.request_body = body
        ctx.stream = bool(body.get("stream"))
        ctx.end_user = body.get("user") or ""
        cands = candidates(snapshot, ctx.key, model)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        upstream_body = {k: v for k, v in body.items() if k not in _LOCAL_FIELDS}
        if ctx.stream:
            first, rest = await execute.open_stream(ctx, cands, upstream_body)
            ctx.first_token_at = time.monotonic()
            return StreamResult(
                events=_relay_stream(ctx, upstream_body, first, rest, include_usage),
                headers=served_headers(ctx),
            )
        done = await complete(ctx, cands, upstream_body)
    except ATPError as err:
        settle(ctx, http_status=err.status, error=err)
        raise
    response = done.response
    if done.estimated:
        response["usage"] = done.usage.to_openai()
    response["model"] = ctx.deployment.public_name
    return JsonResult(200, response, headers=served_headers(ctx, done.cost))


async def _relay_stream(
    ctx: RequestContext,
    body: dict[str, Any],
    first: dict[str, Any],
    rest: AsyncIterator[dict[str, Any]],
    include_usage: bool,
) -> AsyncIterator[bytes]:
    """Relay upstream chunks as OpenAI SSE; settle once however the stream ends."""
    public = ctx.deployment.public_name
    account = StreamAccount(ctx, body)
    chunks = relay(first, rest)
    try:
        async for chunk in chunks:
            if account.observe(chunk):
                continue
            chunk["model"] = public
            yield sse(chunk)
    except UpstreamError as err:
        account.fail(err)
        yield sse(openai_error_body(err, ctx.request_id))
        return
    except (asyncio.CancelledError, GeneratorExit):
        account.cancel()
        raise
    finally:
        await chunks.aclose()
    usage, estimated, cost = account.succeed()
    if include_usage:
        chunk = account.usage_chunk or {
            "id": first.get("id"),
            "object": "chat.completion.chunk",
            "created": first.get("created"),
            "choices": [],
        }
        chunk["usage"] = usage.to_openai()
        chunk["model"] = public
        chunk["atp"] = {"cost_usd": format_usd(cost), "usage_estimated": estimated}
        yield sse(chunk)
    yield SSE_DONE


async def embeddings(ctx: RequestContext, headers: dict[bytes, bytes], raw: bytes) -> JsonResult:
    snapshot = await holder.get()
    ctx.key = authenticate(snapshot, headers)
    try:
        body = parse_json_object(raw)
        model = validate_embeddings(body)
        ctx.requested_model = model
        if ctx.key.store_bodies:
            ctx.request_body = body
        ctx.end_user = body.get("user") or ""
        cands = candidates(snapshot, ctx.key, model, capability="embeddings")
        upstream_body = {k: v for k, v in body.items() if k not in _LOCAL_FIELDS}
        result = await execute.embeddings(ctx, cands, upstream_body)
    except ATPError as err:
        settle(ctx, http_status=err.status, error=err)
        raise
    usage = result.usage
    estimated = usage is None
    if usage is None:
        usage = Usage(input_tokens=_count_embedding_input(upstream_body.get("input")))
        result.response["usage"] = {
            "prompt_tokens": usage.input_tokens,
            "total_tokens": usage.input_tokens,
        }
    result.response["model"] = ctx.deployment.public_name
    cost = cost_of(ctx, usage)
    if ctx.key.store_bodies:
        ctx.response_body = {"object": "list", "embeddings": len(result.response.get("data") or ())}
    settle(ctx, http_status=200, usage=usage, usage_estimated=estimated, cost=cost)
    return JsonResult(200, result.response, headers=served_headers(ctx, cost))


def _count_embedding_input(value: Any) -> int:
    if isinstance(value, str):
        return tokens.count_text(value)
    total = 0
    for item in value or ():
        if isinstance(item, str):
            total += tokens.count_text(item)
        elif isinstance(item, list):
            total += len(item)
        else:
            total += 1
    return total


def _model_object(name: str, dep: DeploymentInfo) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": dep.created, "owned_by": dep.provider_name}


def _route_object(route: RouteInfo) -> dict[str, Any]:
    return {
        "id": route.name,
        "object": "model",
        "created": route.created,
        "owned_by": "atp",
        "atp": {
            "route": True,
            "description": route.description,
            "strategy": route.strategy,
            "tier": route.tier or "auto",
        },
    }


async def list_models(ctx: RequestContext, headers: dict[bytes, bytes], raw: bytes) -> JsonResult:
    snapshot = await holder.get()
    ctx.key = authenticate(snapshot, headers)
    data = [_model_object(name, dep) for name, dep in visible_models(snapshot, ctx.key)]
    data.extend(_route_object(route) for route in visible_routes(snapshot, ctx.key))
    return JsonResult(200, {"object": "list", "data": data})


async def retrieve_model(
    ctx: RequestContext, headers: dict[bytes, bytes], raw: bytes, model: str
) -> JsonResult:
    snapshot = await holder.get()
    ctx.key = authenticate(snapshot, headers)
    for name, dep in visible_models(snapshot, ctx.key):
        if name == model:
            return JsonResult(200, _model_object(name, dep))
    for route in visible_routes(snapshot, ctx.key):
        if route.name == model:
            return JsonResult(200, _route_object(route))
    raise NotFound(
        f"The model '{model}' does not exist or you do not have access to it.", param="model"
    )
