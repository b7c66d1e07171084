"""The Anthropic Messages endpoint: Anthropic in and out, any provider behind it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from apps.costs.pricing import format_usd
from apps.providers import tokens
from apps.providers.adapters.base import Usage
from apps.providers.exceptions import UpstreamError
from apps.routing.pipeline import execute
from apps.routing.pipeline.auth import authenticate
from apps.routing.pipeline.context import RequestContext
from apps.routing.pipeline.openai_api import _served_headers
from apps.routing.pipeline.results import JsonResult, StreamResult
from apps.routing.pipeline.route import candidates
from apps.routing.pipeline.settle import cost_of, settle
from apps.routing.protocols import anthropic as ap
from apps.routing.schemas import parse_json_object
from apps.routing.snapshot import holder
from atp_site.lib.errors import ATPError


async def messages(
    ctx: RequestContext, headers: dict[bytes, bytes], raw: bytes
) -> JsonResult | StreamResult:
    snapshot = await holder.get()
    ctx.key = authenticate(snapshot, headers, allow_x_api_key=True)
    message_id = f"msg_{uuid.uuid4().hex[:24]}"
    try:
        body = parse_json_object(raw)
        openai_body, meta = ap.request_to_openai(body)
        ctx.requested_model = meta.model
        ctx.stream = meta.stream
        ctx.end_user = openai_body.get("user") or ""
        cands = candidates(snapshot, ctx.key, meta.model)
        if ctx.stream:
            first, rest = await execute.open_stream(ctx, cands, openai_body)
            ctx.first_token_at = time.monotonic()
            return StreamResult(
                events=_relay_stream(ctx, openai_body, message_id, first, rest),
                headers=_served_headers(ctx),
            )
        result = await execute.chat(ctx, cands, openai_body)
    except ATPError as err:
        settle(ctx, http_status=err.status, error=err)
        raise
    usage = result.usage
    estimated = usage is None
    if usage is None:
        usage = Usage(
            input_tokens=tokens.estimate_prompt_tokens(openai_body),
            output_tokens=tokens.count_completion(result.response),
        )
    assert ctx.deployment is not None
    cost = cost_of(ctx, usage)
    out = ap.response_from_openai(
        result.response, model=ctx.deployment.public_name, usage=usage, message_id=message_id
    )
    settle(ctx, http_status=200, usage=usage, usage_estimated=estimated, cost=cost)
    return JsonResult(
        200, out, headers=[*_served_headers(ctx), (b"x-atp-cost-usd", format_usd(cost).encode())]
    )


async def _relay_stream(
    ctx: RequestContext,
    body: dict[str, Any],
    message_id: str,
    first: dict[str, Any],
    rest: AsyncIterator[dict[str, Any]],
) -> AsyncIterator[bytes]:
    assert ctx.deployment is not None
    prompt_estimate = tokens.estimate_prompt_tokens(body)
    translator = ap.StreamTranslator(
        model=ctx.deployment.public_name, message_id=message_id, input_tokens=prompt_estimate
    )
    usage: Usage | None = None
    pieces: list[str] = []

    def estimate() -> Usage:
        return Usage(input_tokens=prompt_estimate, output_tokens=tokens.count_text("".join(pieces)))

    for frame in translator.start():
        yield frame
    try:
        chunk: dict[str, Any] | None = first
        while chunk is not None:
            if chunk.get("usage") and not chunk.get("choices"):
                usage = Usage.from_openai(chunk["usage"])
            else:
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta") or {}
                    if delta.get("content"):
                        pieces.append(delta["content"])
                    for call in delta.get("tool_calls") or ():
                        pieces.append((call.get("function") or {}).get("arguments") or "")
            for frame in translator.feed(chunk):
                yield frame
            try:
                chunk = await anext(rest)
            except StopAsyncIteration:
                chunk = None
    except UpstreamError as err:
        partial = usage or estimate()
        settle(ctx, http_status=err.status, usage=partial, usage_estimated=usage is None, error=err)
        yield translator.error(err)
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
    settle(ctx, http_status=200, usage=usage, usage_estimated=estimated, cost=cost_of(ctx, usage))
    for frame in translator.finish(usage):
        yield frame
