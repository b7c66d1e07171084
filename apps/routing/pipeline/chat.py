"""Chat completion accounting shared by every edge that speaks chat (OpenAI, Anthropic, ...).

`complete` runs a non-streamed request and settles it; `StreamAccount` follows a relayed
stream and settles it exactly once, however it ends: reported usage when the provider sent
it, a local token count otherwise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from apps.providers import tokens
from apps.providers.adapters.base import ChatResult, Usage
from apps.routing.pipeline import execute, govern
from apps.routing.pipeline.context import RequestContext
from apps.routing.pipeline.settle import cost_of, settle
from apps.routing.snapshot import DeploymentInfo
from atp_site.lib.errors import ATPError


@dataclass(slots=True)
class Completed:
    response: dict[str, Any]
    usage: Usage
    estimated: bool
    cost: Decimal


def usage_of(
    result: ChatResult, body: dict[str, Any], prompt_tokens: int | None = None
) -> tuple[Usage, bool]:
    """The answer's usage as the provider reported it, or counted locally (estimated;
    `prompt_tokens` when the prompt was counted already)."""
    if result.usage is not None:
        return result.usage, False
    counted = Usage(
        input_tokens=tokens.estimate_prompt_tokens(body)
        if prompt_tokens is None
        else prompt_tokens,
        output_tokens=tokens.count_completion(result.response),
    )
    return counted, True


async def complete(
    ctx: RequestContext,
    cands: list[DeploymentInfo],
    body: dict[str, Any],
    overrides: execute.Overrides = execute.NO_OVERRIDES,
) -> Completed:
    """Call the first deployment that answers and settle the request."""
    result = await execute.chat(ctx, cands, body, overrides)
    usage, estimated = usage_of(result, body, ctx.prompt_tokens)
    cost = cost_of(ctx, usage)
    if ctx.governance is not None and ctx.governance.egress is not None:
        try:
            govern.scan_answer(ctx, result.response)
        except ATPError as err:
            # Refused after the provider answered: the spend is real, so it is recorded.
            settle(ctx, http_status=err.status, usage=usage, usage_estimated=estimated, error=err)
            raise
    if ctx.key is not None and ctx.key.store_bodies:
        ctx.response_body = result.response
    settle(ctx, http_status=200, usage=usage, usage_estimated=estimated, cost=cost)
    return Completed(result.response, usage, estimated, cost)


async def relay(
    first: dict[str, Any], rest: AsyncIterator[dict[str, Any]]
) -> AsyncIterator[dict[str, Any]]:
    """The first chunk, then the rest of the upstream stream; the upstream is closed on exit."""
    try:
        yield first
        async for chunk in rest:
            yield chunk
    finally:
        await execute.close_stream(rest)


class StreamAccount:
    """Usage of one relayed stream and its single settlement."""

    def __init__(self, ctx: RequestContext, body: dict[str, Any]) -> None:
        self.ctx = ctx
        self.body = body
        self.usage: Usage | None = None
        self.usage_chunk: dict[str, Any] | None = None
        self.pieces: list[str] = []
        self._prompt_estimate: int | None = None

    @property
    def prompt_estimate(self) -> int:
        if self._prompt_estimate is None:
            known = self.ctx.prompt_tokens
            self._prompt_estimate = (
                tokens.estimate_prompt_tokens(self.body) if known is None else known
            )
        return self._prompt_estimate

    def observe(self, chunk: dict[str, Any]) -> bool:
        """Record a chunk; True when it is the usage-only chunk (the caller decides to show it)."""
        choices = chunk.get("choices")
        if not choices and chunk.get("usage"):
            self.usage = Usage.from_openai(chunk["usage"])
            self.usage_chunk = chunk
            return True
        for choice in choices or ():
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                self.pieces.append(content)
            for call in delta.get("tool_calls") or ():
                fn = call.get("function") or {}
                self.pieces.append(fn.get("name") or "")
                self.pieces.append(fn.get("arguments") or "")
        return False

    def _keep_text(self) -> None:
        ctx = self.ctx
        if ctx.key is not None and ctx.key.store_bodies:
            ctx.response_body = {"stream": True, "text": "".join(self.pieces)}

    def _usage(self) -> tuple[Usage, bool]:
        self._keep_text()
        if self.usage is not None:
            return self.usage, False
        estimate = Usage(
            input_tokens=self.prompt_estimate,
            output_tokens=tokens.count_text("".join(self.pieces)),
        )
        return estimate, True

    def succeed(self) -> tuple[Usage, bool, Decimal]:
        usage, estimated = self._usage()
        cost = cost_of(self.ctx, usage)
        settle(self.ctx, http_status=200, usage=usage, usage_estimated=estimated, cost=cost)
        return usage, estimated, cost

    def fail(self, err: ATPError) -> None:
        usage, estimated = self._usage()
        settle(self.ctx, http_status=err.status, usage=usage, usage_estimated=estimated, error=err)

    def cancel(self) -> None:
        usage, estimated = self._usage()
        settle(self.ctx, http_status=499, usage=usage, usage_estimated=estimated, cancelled=True)
