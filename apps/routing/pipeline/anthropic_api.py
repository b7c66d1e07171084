"""The Anthropic Messages endpoint: Anthropic in and out, any provider behind it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from apps.providers.adapters.base import Usage
from apps.routing import cache
from apps.routing.pipeline import cached, execute, govern
from apps.routing.pipeline.admit import admit_chat, enter
from apps.routing.pipeline.auth import authenticate
from apps.routing.pipeline.chat import StreamAccount, complete, relay
from apps.routing.pipeline.context import RequestContext
from apps.routing.pipeline.openai_api import served_headers
from apps.routing.pipeline.plan import Plan, plan_chat, refresh_learning
from apps.routing.pipeline.results import JsonResult, StreamResult
from apps.routing.pipeline.settle import settle
from apps.routing.protocols import anthropic as ap
from apps.routing.schemas import chat_input_limits, parse_json_object
from apps.routing.snapshot import Snapshot, holder
from apps.routing.writebehind import admit
from atp_site.lib.errors import ATPError, InvalidRequest


async def messages(
    ctx: RequestContext, headers: dict[bytes, bytes], raw: bytes
) -> JsonResult | StreamResult:
    snapshot = await holder.get()
    ctx.key = authenticate(snapshot, headers, allow_x_api_key=True)
    admit()
    enter(ctx)
    message_id = f"msg_{uuid.uuid4().hex[:24]}"
    try:
        body = parse_json_object(raw)
        openai_body, meta = ap.request_to_openai(body)
        chat_input_limits(body)
        ctx.requested_model = meta.model
        ctx.stream = meta.stream
        if ctx.key.store_bodies:
            ctx.request_body = body
        ctx.end_user = openai_body.get("user") or ""
        # Governance reads and redacts the request as the caller wrote it; a redacted
        # request is translated again, so the provider only ever sees the redacted text.
        gov = govern.inbound(snapshot, ctx, body, headers, endpoint="messages")
        if gov.redaction:
            openai_body, meta = ap.request_to_openai(body)
        await refresh_learning(snapshot, meta.model)
        plan = plan_chat(snapshot, ctx, meta.model, openai_body, headers)
        plan = await admit_chat(
            snapshot,
            ctx,
            openai_body,
            plan,
            lambda m: plan_chat(snapshot, ctx, m, openai_body, headers),
        )
        if plan.consensus is not None:
            raise InvalidRequest(
                "Consensus is available on /v1/chat/completions.", param="atp.consensus"
            )
        # The cache keys the request in OpenAI's shape, so an answer cached through
        # /v1/chat/completions serves the same request here and the other way round.
        policy, hit = await cached.look_up(snapshot, ctx, plan.route, openai_body, headers)
        if hit is not None:
            return _from_cache(snapshot, ctx, hit, policy, message_id)
        cache_headers = cached.miss_headers(policy)
        if ctx.stream:
            first, rest = await execute.open_stream(ctx, plan.cands, openai_body, plan.overrides)
            ctx.first_token_at = time.monotonic()
            return StreamResult(
                events=_relay_stream(ctx, plan, openai_body, message_id, first, rest, policy),
                headers=served_headers(ctx) + cache_headers,
            )
        done = await complete(ctx, plan.cands, openai_body, plan.overrides)
    except ATPError as err:
        settle(ctx, http_status=err.status, error=err)
        raise
    if plan.route is not None:
        cached.store(ctx, plan.route, policy, openai_body, done.response, done.cost)
    out = ap.response_from_openai(
        govern.restored(ctx, done.response),
        model=ctx.deployment.public_name,
        usage=done.usage,
        message_id=message_id,
    )
    return JsonResult(200, out, headers=served_headers(ctx, done.cost) + cache_headers)


def _from_cache(
    snapshot: Snapshot,
    ctx: RequestContext,
    hit: cache.CacheHit,
    policy: cache.CachePolicy,
    message_id: str,
) -> JsonResult | StreamResult:
    """A cached answer in Anthropic's shape, costing nothing, logged as a hit."""
    usage, headers = cached.settle_hit(snapshot, ctx, hit, policy)
    if not ctx.stream:
        out = ap.response_from_openai(
            hit.response, model=hit.model, usage=usage, message_id=message_id
        )
        return JsonResult(200, out, headers=headers)
    ctx.first_token_at = time.monotonic()
    return StreamResult(events=_replay(hit, usage, message_id), headers=headers)


async def _replay(hit: cache.CacheHit, usage: Usage, message_id: str) -> AsyncIterator[bytes]:
    translator = ap.StreamTranslator(
        model=hit.model, message_id=message_id, input_tokens=usage.input_tokens
    )
    for frame in translator.start():
        yield frame
    for chunk in cache.replay_chunks(hit.response):
        for frame in translator.feed(chunk):
            yield frame
    for frame in translator.finish(usage):
        yield frame


async def _relay_stream(
    ctx: RequestContext,
    plan: Plan,
    body: dict[str, Any],
    message_id: str,
    first: dict[str, Any],
    rest: AsyncIterator[dict[str, Any]],
    policy: cache.CachePolicy | None,
) -> AsyncIterator[bytes]:
    """Relay upstream chunks as Anthropic's event sequence; settle once however it ends."""
    account = StreamAccount(ctx, body)
    collector = cache.StreamCollector() if policy is not None and policy.store else None
    translator = ap.StreamTranslator(
        model=ctx.deployment.public_name,
        message_id=message_id,
        input_tokens=account.prompt_estimate,
    )
    for frame in translator.start():
        yield frame
    chunks = relay(first, rest)
    governor = govern.stream_governor(ctx)
    try:
        async for chunk in chunks:
            shown = chunk
            if governor is not None:
                chunk, shown = governor.process(chunk)
            account.observe(chunk)
            if collector is not None:
                collector.add(chunk)
            for frame in translator.feed(shown):
                yield frame
        if governor is not None:
            last = governor.leftovers(first)
            if last is not None:
                chunk, shown = last
                account.observe(chunk)
                if collector is not None:
                    collector.add(chunk)
                for frame in translator.feed(shown):
                    yield frame
    except ATPError as err:
        account.fail(err)
        yield translator.error(err)
        return
    except (asyncio.CancelledError, GeneratorExit):
        account.cancel()
        raise
    finally:
        await chunks.aclose()
    usage, _, cost = account.succeed()
    for frame in translator.finish(usage):
        yield frame
    if collector is not None:
        response = collector.completion(usage.to_openai())
        response["model"] = ctx.deployment.public_name
        cached.store(ctx, plan.route, policy, body, response, cost)
