"""Adapter for OpenAI's Chat Completions API and the servers that copy it.

vLLM, llama.cpp's server, LM Studio and TGI expose the same `/v1/chat/completions` and
`/v1/embeddings` endpoints, so one adapter serves the `openai` and `openai_compatible`
kinds. ATP's canonical format is this API's, so requests and answers pass through with
only the model name and the streaming switches rewritten.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from apps.providers.adapters.base import (
    Adapter,
    ChatResult,
    EmbeddingsResult,
    Target,
    UpstreamCall,
    Usage,
)
from apps.providers.exceptions import UpstreamError

# Keys the data plane may leave in a body that the upstream must not see: `stream` and
# `stream_options` are set per call (OpenAI answers 400 to `stream_options` without
# `stream`), and `atp` holds ATP's own request extensions.
_DROPPED_KEYS = ("stream", "stream_options", "atp")

_INCLUDE_USAGE: dict[str, Any] = {"include_usage": True}


class OpenAIAdapter(Adapter):
    """Speaks https://platform.openai.com/docs/api-reference/chat to any compatible server.

    `target.options` may hold `organization`, `project`, `headers` (extra request headers)
    and `stream_usage` (False for servers that refuse `stream_options`).
    """

    kind = "openai"

    def headers(self, target: Target) -> dict[str, str]:
        headers: dict[str, str] = {}
        if target.api_key:
            headers["authorization"] = f"Bearer {target.api_key}"
        options = target.options
        if options:
            organization = options.get("organization")
            if organization:
                headers["openai-organization"] = str(organization)
            project = options.get("project")
            if project:
                headers["openai-project"] = str(project)
            extra = options.get("headers")
            if extra:
                headers.update({str(k): str(v) for k, v in extra.items()})
        return headers

    def payload(self, target: Target, body: dict[str, Any]) -> dict[str, Any]:
        """A shallow copy of the caller's body for the upstream; the caller's dict stays intact
        because a fallback may send it to another deployment."""
        payload = {**body, "model": target.upstream_model}
        for key in _DROPPED_KEYS:
            payload.pop(key, None)
        return payload

    async def chat(self, target: Target, body: dict[str, Any]) -> ChatResult:
        call = UpstreamCall(
            self,
            target,
            f"{target.base_url}/chat/completions",
            json_body=self.payload(target, body),
            headers=self.headers(target),
        )
        async with call:
            response = await call.json()
        if not isinstance(response, dict) or "choices" not in response:
            raise UpstreamError(
                f"Provider '{target.provider_name}' sent an answer without choices."
            )
        return ChatResult(response, Usage.from_openai(response.get("usage")))

    async def chat_stream(
        self, target: Target, body: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        payload = self.payload(target, body)
        payload["stream"] = True
        caller_options = body.get("stream_options")
        if target.options.get("stream_usage", True):
            # Usage must come back so the request can be accounted for; the data plane hides
            # the usage chunk from callers who did not ask for it.
            payload["stream_options"] = (
                {**caller_options, "include_usage": True}
                if isinstance(caller_options, dict)
                else _INCLUDE_USAGE
            )
        elif caller_options is not None:
            # Some compatible servers refuse `stream_options`; their operators set
            # `stream_usage: false` and usage then comes only if the server sends it anyway.
            payload["stream_options"] = caller_options
        call = UpstreamCall(
            self,
            target,
            f"{target.base_url}/chat/completions",
            json_body=payload,
            headers=self.headers(target),
        )
        async with call:
            async for _event, data in call.sse_events():
                if data == b"[DONE]":
                    return
                try:
                    chunk = orjson.loads(data)
                except orjson.JSONDecodeError:
                    raise UpstreamError(
                        f"Provider '{target.provider_name}' sent a stream event that is not JSON."
                    ) from None
                # vLLM, llama.cpp and OpenAI itself report failures after the 200 status as
                # an `error` object inside a data event.
                if "error" in chunk:
                    detail = self.error_message(chunk)[:500] or "unknown error"
                    raise UpstreamError(
                        f"Provider '{target.provider_name}' failed mid-stream: {detail}",
                        code="upstream_stream_error",
                    )
                yield chunk
        raise UpstreamError(f"Provider '{target.provider_name}' ended the stream early.")

    async def embeddings(self, target: Target, body: dict[str, Any]) -> EmbeddingsResult:
        call = UpstreamCall(
            self,
            target,
            f"{target.base_url}/embeddings",
            json_body=self.payload(target, body),
            headers=self.headers(target),
        )
        async with call:
            response = await call.json()
        if not isinstance(response, dict) or not isinstance(response.get("data"), list):
            raise UpstreamError(f"Provider '{target.provider_name}' sent embeddings without data.")
        usage = response.get("usage") or {}
        return EmbeddingsResult(response, Usage(input_tokens=int(usage.get("prompt_tokens") or 0)))
