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
from apps.routing.pipeline.context import RequestContext
from apps.routing.pipeline.results import SSE_DONE, JsonResult, StreamResult, sse
from apps.routing.pipeline.route import candidates, visible_models
from apps.routing.pipeline.settle import cost_of, settle
from apps.routing.schemas import parse_json_object, validate_chat, validate_embeddings
from apps.routing.snapshot import holder
from atp_site.lib.errors import ATPError, NotFound, openai_error_body

# Request fields that are ATP's own and never go upstream.
_LOCAL_FIELDS = ("model", "stream", "stream_options", "atp")


def _served_headers(ctx: RequestContext) -> list[tuple[bytes, bytes]]:
    dep = ctx.deployment
    if dep is None:
        return []
    return [
        (b"x-atp-model", dep.public_name.encode()),
        (b"x-atp-provider", dep.provider_name.encode()),
    ]


async def chat_completions(
    ctx: RequestContext, headers: dict[bytes, bytes], raw: bytes
) -> JsonResult | StreamResult:
    snapshot = await holder.get()
    ctx.key = authenticate(snapshot, headers)
    try:
        body = parse_json_object(raw)
        model = validate_chat(body)
        ctx.requested_model = model
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
                headers=_served_headers(ctx),
            )
        result = await execute.chat(ctx, cands, upstream_body)
    except ATPError as err:
        settle(ctx, http_status=err.status, error=err)
        raise

    response = result.response
    usage = result.usage
    estimated = usage is None
    if usage is None:
        usage = Usage(
            input_tokens=tokens.estimate_prompt_tokens(upstream_body),
            output_tokens=tokens.count_completion(response),
        )
        response["usage"] = usage.to_openai()
    assert ctx.deployment is not None
    response["model"] = ctx.deployment.public_name
    cost = cost_of(ctx, usage)
    settle(ctx, http_status=200, usage=usage, usage_estimated=estimated, cost=cost)
    return JsonResult(
        200,
        response,
        headers=[*_served_headers(ctx), (b"x-atp-cost-usd", format_usd(cost).encode())],
    )


async def _relay_stream(
    ctx: RequestContext,
    body: dict[str, Any],
    first: dict[str, Any],
    rest: AsyncIterator[dict[str, Any]],
    include_usage: bool,
) -> AsyncIterator[bytes]:
    """Relay upstream chunks to the caller; settle once however the stream ends."""
    assert ctx.deployment is not None
    public = ctx.deployment.public_name
    usage: Usage | None = None
    usage_chunk: dict[str, Any] | None = None
    pieces: list[str] = []

    def collect(chunk: dict[str, Any]) -> None:
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                pieces.append(content)
            for call in delta.get("tool_calls") or ():
                fn = call.get("function") or {}
                pieces.append(fn.get("name") or "")
                pieces.append(fn.get("arguments") or "")

    def estimate() -> Usage:
        return Usage(
            input_tokens=tokens.estimate_prompt_tokens(body),
            output_tokens=tokens.count_text("".join(pieces)),
        )

    try:
        chunk: dict[str, Any] | None = first
        while chunk is not None:
            if chunk.get("usage") and not chunk.get("choices"):
                usage = Usage.from_openai(chunk["usage"])
                usage_chunk = chunk
            else:
                collect(chunk)
                chunk["model"] = public
                yield sse(chunk)
            try:
                chunk = await anext(rest)
            except StopAsyncIteration:
                chunk = None
    except UpstreamError as err:
        partial = usage or estimate()
        settle(ctx, http_status=err.status, usage=partial, usage_estimated=usage is None, error=err)
        yield sse(openai_error_body(err, ctx.request_id))
        return
    except (asyncio.CancelledError, GeneratorExit):
        partial = usage or estimate()
        settle(ctx, http_status=499, usage=partial, usage_estimated=usage is None, cancelled=True)
        raise
    finally:
        await execute.close_stream(rest)

    estimated = usage is None
    if usage is None:
        usage = estimate()
    cost = cost_of(ctx, usage)
    settle(ctx, http_status=200, usage=usage, usage_estimated=estimated, cost=cost)
    if include_usage:
        if usage_chunk is None:
            usage_chunk = {
                "id": first.get("id"),
                "object": "chat.completion.chunk",
                "created": first.get("created"),
                "choices": [],
            }
        usage_chunk["usage"] = usage.to_openai()
        usage_chunk["model"] = public
        usage_chunk["atp"] = {"cost_usd": format_usd(cost), "usage_estimated": estimated}
        yield sse(usage_chunk)
    yield SSE_DONE


async def embeddings(ctx: RequestContext, headers: dict[bytes, bytes], raw: bytes) -> JsonResult:
    snapshot = await holder.get()
    ctx.key = authenticate(snapshot, headers)
    try:
        body = parse_json_object(raw)
        model = validate_embeddings(body)
        ctx.requested_model = model
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
    assert ctx.deployment is not None
    result.response["model"] = ctx.deployment.public_name
    cost = cost_of(ctx, usage)
    settle(ctx, http_status=200, usage=usage, usage_estimated=estimated, cost=cost)
    return JsonResult(
        200,
        result.response,
        headers=[*_served_headers(ctx), (b"x-atp-cost-usd", format_usd(cost).encode())],
    )


def _count_embedding_input(value: Any) -> int:
    if isinstance(value, str):
        return tokens.count_text(value)
    if isinstance(value, list):
        total = 0
        for item in value:
            if isinstance(item, str):
                total += tokens.count_text(item)
            elif isinstance(item, list):
                total += len(item)
            else:
                total += 1
        return total
    return 0


def _model_object(name: str, dep) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": dep.created, "owned_by": dep.provider_name}


async def list_models(ctx: RequestContext, headers: dict[bytes, bytes], raw: bytes) -> JsonResult:
    snapshot = await holder.get()
    ctx.key = authenticate(snapshot, headers)
    data = [_model_object(name, dep) for name, dep in visible_models(snapshot, ctx.key)]
    return JsonResult(200, {"object": "list", "data": data})


async def retrieve_model(
    ctx: RequestContext, headers: dict[bytes, bytes], raw: bytes, model: str
) -> JsonResult:
    snapshot = await holder.get()
    ctx.key = authenticate(snapshot, headers)
    for name, dep in visible_models(snapshot, ctx.key):
        if name == model:
            return JsonResult(200, _model_object(name, dep))
    raise NotFound(
        f"The model '{model}' does not exist or you do not have access to it.", param="model"
    )
