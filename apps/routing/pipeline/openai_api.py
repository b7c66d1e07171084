"""The OpenAI-compatible endpoints: chat completions, embeddings and models."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from apps.costs.pricing import format_usd
from apps.providers import tokens
from apps.providers.adapters.base import Usage
from apps.routing import cache
from apps.routing.engine.hints import explicit_hints
from apps.routing.pipeline import cached, ensemble, execute, govern
from apps.routing.pipeline.admit import admit_chat, admit_tokens, enter
from apps.routing.pipeline.auth import authenticate
from apps.routing.pipeline.chat import StreamAccount, complete, relay
from apps.routing.pipeline.context import RequestContext
from apps.routing.pipeline.plan import Plan, plan_chat, refresh_learning
from apps.routing.pipeline.reach import narrow, reach_for, requested_regions
from apps.routing.pipeline.results import SSE_DONE, JsonResult, StreamResult, sse
from apps.routing.pipeline.route import candidates, visible_models, visible_routes
from apps.routing.pipeline.settle import ZERO, cost_of, settle, usd_number
from apps.routing.schemas import parse_json_object, validate_chat, validate_embeddings
from apps.routing.snapshot import DeploymentInfo, RouteInfo, Snapshot, holder
from apps.routing.writebehind import admit
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
    if ctx.route:
        headers.append((b"x-atp-route", ctx.route.encode()))
    if cost is not None:
        headers.append((b"x-atp-cost-usd", format_usd(cost).encode()))
    return headers


def _quality_of(plan: Plan):
    """What consensus' best_of expects of each model: its score in this decision."""
    scores = {}
    if plan.decision is not None:
        scores = {r.deployment.id: r.quality for r in plan.decision.ranking}
    return lambda dep: scores.get(dep.id, dep.quality)


async def chat_completions(
    ctx: RequestContext, headers: dict[bytes, bytes], raw: bytes
) -> JsonResult | StreamResult:
    snapshot = await holder.get()
    ctx.key = authenticate(snapshot, headers)
    admit()
    enter(ctx)
    try:
        body = parse_json_object(raw)
        model = validate_chat(body)
        ctx.requested_model = model
        if ctx.key.store_bodies:
            ctx.request_body = body
        ctx.stream = bool(body.get("stream"))
        ctx.end_user = body.get("user") or ""
        govern.inbound(snapshot, ctx, body, headers, endpoint="chat")
        await refresh_learning(snapshot, model)
        plan = plan_chat(snapshot, ctx, model, body, headers)
        plan = await admit_chat(
            snapshot, ctx, body, plan, lambda m: plan_chat(snapshot, ctx, m, body, headers)
        )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        upstream_body = {k: v for k, v in body.items() if k not in _LOCAL_FIELDS}
        policy, hit = await cached.look_up(snapshot, ctx, plan.route, body, headers)
        if hit is not None:
            return _from_cache(snapshot, ctx, hit, policy, include_usage)
        if plan.consensus is not None:
            return await _consensus(ctx, plan, upstream_body, include_usage, policy)
        if ctx.stream:
            first, rest = await execute.open_stream(ctx, plan.cands, upstream_body, plan.overrides)
            ctx.first_token_at = time.monotonic()
            return StreamResult(
                events=_relay_stream(ctx, plan, upstream_body, first, rest, include_usage, policy),
                headers=served_headers(ctx) + cached.miss_headers(policy),
            )
        done = await complete(ctx, plan.cands, upstream_body, plan.overrides)
    except ATPError as err:
        settle(ctx, http_status=err.status, error=err)
        raise
    response = done.response
    if done.estimated:
        response["usage"] = done.usage.to_openai()
    response["model"] = ctx.deployment.public_name
    _after_answer(ctx, plan, upstream_body, response, done.cost, policy)
    return JsonResult(
        200,
        govern.restored(ctx, response),
        headers=served_headers(ctx, done.cost) + cached.miss_headers(policy),
    )


def _after_answer(
    ctx: RequestContext,
    plan: Plan,
    body: dict[str, Any],
    response: dict[str, Any],
    cost: Decimal,
    policy: cache.CachePolicy | None,
) -> None:
    """Background work once the caller has its answer: cache it, mirror to a challenger."""
    route = plan.route
    if route is not None:
        cached.store(ctx, route, policy, body, response, cost)
    if plan.challengers and ensemble.should_mirror(route):
        challengers = [d for d in plan.challengers if d.public_name != ctx.deployment.public_name]
        ensemble.mirror(ctx, route, challengers, body, ensemble.answer_text(response))


def _from_cache(
    snapshot: Snapshot,
    ctx: RequestContext,
    hit: cache.CacheHit,
    policy: cache.CachePolicy,
    include_usage: bool,
) -> JsonResult | StreamResult:
    """Answer from the cache: the stored response, costing nothing, logged as a hit."""
    _, headers = cached.settle_hit(snapshot, ctx, hit, policy)
    response = dict(hit.response)
    response["id"] = f"chatcmpl-{ctx.request_id}"
    response["created"] = int(time.time())
    if not ctx.stream:
        return JsonResult(200, response, headers=headers)
    ctx.first_token_at = time.monotonic()
    chunks = cache.replay_chunks(response, include_usage=include_usage)
    return StreamResult(events=_replay(chunks, cost=ZERO), headers=headers)


async def _replay(chunks: list[dict[str, Any]], *, cost: Decimal) -> AsyncIterator[bytes]:
    for chunk in chunks:
        if chunk.get("usage") and not chunk.get("choices"):
            chunk["atp"] = {"cost_usd": usd_number(cost)}
        yield sse(chunk)
    yield SSE_DONE


async def _consensus(
    ctx: RequestContext,
    plan: Plan,
    body: dict[str, Any],
    include_usage: bool,
    policy: cache.CachePolicy | None,
) -> JsonResult | StreamResult:
    call_body = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    result = await ensemble.run_consensus(
        ctx, plan.cands, call_body, plan.consensus, _quality_of(plan)
    )
    response = result.response
    response["model"] = ctx.deployment.public_name
    response["usage"] = result.usage.to_openai()
    response["atp"] = {
        "consensus": result.metadata(plan.consensus.strategy),
        "cost_usd": usd_number(result.cost),
    }
    _after_answer(ctx, plan, call_body, response, result.cost, policy)
    headers = served_headers(ctx, result.cost) + cached.miss_headers(policy)
    if not ctx.stream:
        return JsonResult(200, response, headers=headers)
    ctx.first_token_at = time.monotonic()
    chunks = cache.replay_chunks(response, include_usage=include_usage)
    if chunks:
        chunks[-1]["atp"] = response["atp"]
    return StreamResult(events=_replay(chunks, cost=result.cost), headers=headers)


async def _relay_stream(
    ctx: RequestContext,
    plan: Plan,
    body: dict[str, Any],
    first: dict[str, Any],
    rest: AsyncIterator[dict[str, Any]],
    include_usage: bool,
    policy: cache.CachePolicy | None,
) -> AsyncIterator[bytes]:
    """Relay upstream chunks as OpenAI SSE; settle once however the stream ends."""
    public = ctx.deployment.public_name
    account = StreamAccount(ctx, body)
    collector = cache.StreamCollector() if policy is not None and policy.store else None
    chunks = relay(first, rest)
    governor = govern.stream_governor(ctx)
    try:
        async for chunk in chunks:
            shown = chunk
            if governor is not None:
                chunk, shown = governor.process(chunk)
            if collector is not None:
                collector.add(chunk)
            if account.observe(chunk):
                continue
            shown["model"] = public
            yield sse(shown)
        if governor is not None:
            last = governor.leftovers(first)
            if last is not None:
                chunk, shown = last
                if collector is not None:
                    collector.add(chunk)
                account.observe(chunk)
                shown["model"] = public
                yield sse(shown)
    except ATPError as err:
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
        chunk["atp"] = {"cost_usd": usd_number(cost), "usage_estimated": estimated}
        yield sse(chunk)
    yield SSE_DONE
    if collector is not None or (plan.challengers and ensemble.should_mirror(plan.route)):
        if collector is not None:
            response = collector.completion(usage.to_openai())
            response["model"] = public
        else:
            response = {"choices": [{"message": {"content": "".join(account.pieces)}}]}
        _after_answer(ctx, plan, body, response, cost, policy)


async def embeddings(ctx: RequestContext, headers: dict[bytes, bytes], raw: bytes) -> JsonResult:
    snapshot = await holder.get()
    ctx.key = authenticate(snapshot, headers)
    admit()
    enter(ctx)
    try:
        body = parse_json_object(raw)
        model = validate_embeddings(body)
        explicit_hints(body, headers)  # nothing to route, but a bad hint is still a 400
        ctx.requested_model = model
        if ctx.key.store_bodies:
            ctx.request_body = body
        ctx.end_user = body.get("user") or ""
        gov = govern.inbound(snapshot, ctx, body, headers, endpoint="embeddings")
        ctx.reach = reach_for(
            snapshot,
            ctx.key,
            regions=requested_regions(body, headers, ctx.key),
            capability="embeddings",
        )
        cands = candidates(snapshot, ctx.key, model, ctx.reach)
        if gov.constrains:
            ctx.reach = narrow(snapshot, ctx.reach, gov)
            cands = ctx.reach.filter(cands)
            if not cands:
                raise gov.unavailable(model)
        limits = ctx.key.limits
        prompt = _count_embedding_input(body.get("input")) if limits.needs_tokens else 0
        await admit_tokens(ctx, cands, prompt)
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
