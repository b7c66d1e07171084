"""The Anthropic Messages endpoint: Anthropic in and out, any provider behind it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from apps.providers.exceptions import UpstreamError
from apps.routing.engine.router import get_engine
from apps.routing.pipeline import execute
from apps.routing.pipeline.auth import authenticate
from apps.routing.pipeline.chat import StreamAccount, complete, relay
from apps.routing.pipeline.context import RequestContext
from apps.routing.pipeline.openai_api import served_headers
from apps.routing.pipeline.plan import plan_chat
from apps.routing.pipeline.results import JsonResult, StreamResult
from apps.routing.pipeline.settle import settle
from apps.routing.protocols import anthropic as ap
from apps.routing.schemas import parse_json_object
from apps.routing.snapshot import holder
from atp_site.lib.errors import ATPError, InvalidRequest


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
        if ctx.key.store_bodies:
            ctx.request_body = body
        ctx.end_user = openai_body.get("user") or ""
        if meta.model not in snapshot.models and meta.model in snapshot.routes:
            await get_engine().refresh()
        plan = plan_chat(snapshot, ctx, meta.model, openai_body, headers)
        if plan.consensus is not None:
            raise InvalidRequest(
                "Consensus is available on /v1/chat/completions.", param="atp.consensus"
            )
        if ctx.stream:
            first, rest = await execute.open_stream(ctx, plan.cands, openai_body, plan.overrides)
            ctx.first_token_at = time.monotonic()
            return StreamResult(
                events=_relay_stream(ctx, openai_body, message_id, first, rest),
                headers=served_headers(ctx),
            )
        done = await complete(ctx, plan.cands, openai_body, plan.overrides)
    except ATPError as err:
        settle(ctx, http_status=err.status, error=err)
        raise
    out = ap.response_from_openai(
        done.response, model=ctx.deployment.public_name, usage=done.usage, message_id=message_id
    )
    return JsonResult(200, out, headers=served_headers(ctx, done.cost))


async def _relay_stream(
    ctx: RequestContext,
    body: dict[str, Any],
    message_id: str,
    first: dict[str, Any],
    rest: AsyncIterator[dict[str, Any]],
) -> AsyncIterator[bytes]:
    """Relay upstream chunks as Anthropic's event sequence; settle once however it ends."""
    account = StreamAccount(ctx, body)
    translator = ap.StreamTranslator(
        model=ctx.deployment.public_name,
        message_id=message_id,
        input_tokens=account.prompt_estimate,
    )
    for frame in translator.start():
        yield frame
    chunks = relay(first, rest)
    try:
        async for chunk in chunks:
            account.observe(chunk)
            for frame in translator.feed(chunk):
                yield frame
    except UpstreamError as err:
        account.fail(err)
        yield translator.error(err)
        return
    except (asyncio.CancelledError, GeneratorExit):
        account.cancel()
        raise
    finally:
        await chunks.aclose()
    usage, _, _ = account.succeed()
    for frame in translator.finish(usage):
        yield frame
