"""Adapter for Ollama's native API (`/api/chat`, `/api/embed`).

Reference: https://github.com/ollama/ollama/blob/main/docs/api.md. Ollama also serves an
OpenAI-compatible `/v1`, but the native API reports load errors and token counts more
faithfully and accepts per-model `options` such as `num_ctx`, so ATP speaks it directly.
"""

from __future__ import annotations

import base64
import sys
import time
import uuid
from array import array
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
from apps.providers.exceptions import UnsupportedFeature, UpstreamError

# OpenAI sampling fields that have a same-named or renamed Ollama model option.
_OPTION_FIELDS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}

_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}

_FINISH_REASONS = {"stop": "stop", "length": "length"}


def _unsupported(message: str, param: str | None = None) -> UnsupportedFeature:
    return UnsupportedFeature(message, param=param)


def _call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(
        part.get("text", "")
        for part in content
        if isinstance(part, dict) and part.get("type") == "text"
    )


def _convert_content(content: Any, index: int) -> tuple[str, list[str]]:
    """Split OpenAI content parts into Ollama's text and its list of base64 images."""
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    images: list[str] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(part.get("text") or "")
        elif kind == "image_url":
            image = part.get("image_url") or {}
            url = image.get("url", "") if isinstance(image, dict) else str(image)
            if not url.startswith("data:"):
                raise _unsupported(
                    "Ollama only accepts inline images: send the image as a base64 data: URL "
                    "instead of a link.",
                    f"messages[{index}].content",
                )
            header, _, data = url.partition(",")
            if not header.endswith(";base64") or not data:
                raise _unsupported(
                    "Ollama needs images as base64 data: URLs.", f"messages[{index}].content"
                )
            images.append(data)
        else:
            raise _unsupported(
                f"Ollama does not accept '{kind}' content parts.", f"messages[{index}].content"
            )
    return "\n".join(texts), images


def _convert_tool_calls(tool_calls: list[dict[str, Any]], index: int) -> list[dict[str, Any]]:
    converted = []
    for call in tool_calls:
        function = call.get("function") or {}
        raw_arguments = function.get("arguments") or "{}"
        try:
            arguments = (
                orjson.loads(raw_arguments) if isinstance(raw_arguments, str) else raw_arguments
            )
        except orjson.JSONDecodeError:
            arguments = None
        if not isinstance(arguments, dict):
            # Ollama decodes arguments into an object and rejects anything else.
            raise _unsupported(
                "Ollama needs tool call arguments to be a JSON object.",
                f"messages[{index}].tool_calls",
            )
        converted.append({"function": {"name": function.get("name", ""), "arguments": arguments}})
    return converted


def convert_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI chat messages -> Ollama chat messages."""
    converted: list[dict[str, Any]] = []
    tool_names: dict[str, str] = {}
    for index, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            out: dict[str, Any] = {"role": "tool", "content": _text_of(message.get("content"))}
            name = tool_names.get(message.get("tool_call_id") or "") or message.get("name")
            if name:
                out["tool_name"] = name
            converted.append(out)
            continue
        ollama_role = _ROLES.get(role or "")
        if ollama_role is None:
            raise _unsupported(f"Ollama does not accept '{role}' messages.", f"messages[{index}]")
        text, images = _convert_content(message.get("content"), index)
        out = {"role": ollama_role, "content": text}
        if images:
            out["images"] = images
        tool_calls = message.get("tool_calls")
        if tool_calls:
            out["tool_calls"] = _convert_tool_calls(tool_calls, index)
            for call in tool_calls:
                if call.get("id"):
                    tool_names[call["id"]] = (call.get("function") or {}).get("name", "")
        converted.append(out)
    return converted


def _format(response_format: Any) -> Any:
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise _unsupported("A json_schema response format needs a schema.", "response_format")
        return schema
    return None


def build_request(target: Target, body: dict[str, Any], *, stream: bool) -> dict[str, Any]:
    """OpenAI chat request -> Ollama `/api/chat` request."""
    if (body.get("n") or 1) > 1:
        raise _unsupported("Ollama returns one choice per request; n must be 1.", "n")
    if body.get("logprobs"):
        raise _unsupported("Log probabilities are not available from Ollama.", "logprobs")
    request: dict[str, Any] = {
        "model": target.upstream_model,
        "messages": convert_messages(body.get("messages") or []),
        "stream": stream,
    }
    tools = body.get("tools")
    tool_choice = body.get("tool_choice")
    if tools and tool_choice != "none":
        # Ollama always lets the model choose; it cannot force a call.
        if tool_choice not in (None, "auto"):
            raise _unsupported(
                "Ollama cannot force a tool call; use tool_choice 'auto' or 'none'.",
                "tool_choice",
            )
        request["tools"] = tools
    response_format = _format(body.get("response_format"))
    if response_format is not None:
        request["format"] = response_format

    target_options = target.options
    options: dict[str, Any] = dict(target_options.get("options") or {}) if target_options else {}
    for field, name in _OPTION_FIELDS.items():
        value = body.get(field)
        if value is not None:
            options[name] = value
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens:
        options["num_predict"] = max_tokens
    stop = body.get("stop")
    if stop:
        options["stop"] = [stop] if isinstance(stop, str) else stop
    if options:
        request["options"] = options
    if target_options and "keep_alive" in target_options:
        request["keep_alive"] = target_options["keep_alive"]
    return request


def _openai_tool_calls(tool_calls: list[dict[str, Any]], start: int = 0) -> list[dict[str, Any]]:
    result = []
    for offset, call in enumerate(tool_calls):
        function = call.get("function") or {}
        arguments = function.get("arguments")
        result.append(
            {
                "index": start + offset,
                "id": call.get("id") or _call_id(),
                "type": "function",
                "function": {
                    "name": function.get("name", ""),
                    "arguments": arguments
                    if isinstance(arguments, str)
                    else orjson.dumps(arguments or {}).decode(),
                },
            }
        )
    return result


def _usage(data: dict[str, Any]) -> Usage | None:
    if "prompt_eval_count" not in data and "eval_count" not in data:
        return None
    return Usage(
        input_tokens=int(data.get("prompt_eval_count") or 0),
        output_tokens=int(data.get("eval_count") or 0),
    )


def _finish_reason(data: dict[str, Any], saw_tool_calls: bool) -> str:
    if saw_tool_calls:
        return "tool_calls"
    return _FINISH_REASONS.get(data.get("done_reason") or "stop", "stop")


class OllamaAdapter(Adapter):
    """Translates OpenAI chat requests to Ollama's native chat and embed endpoints."""

    kind = "ollama"

    def headers(self, target: Target) -> dict[str, str]:
        headers: dict[str, str] = {}
        # Plain Ollama needs no key; ollama.com and authenticating proxies take a bearer token.
        if target.api_key:
            headers["authorization"] = f"Bearer {target.api_key}"
        extra = target.options.get("headers") if target.options else None
        if extra:
            headers.update({str(k): str(v) for k, v in extra.items()})
        return headers

    def _failed(self, target: Target, data: Any) -> UpstreamError:
        detail = self.error_message(data)[:500] or "unknown error"
        return UpstreamError(
            f"Provider '{target.provider_name}' failed: {detail}", code="upstream_stream_error"
        )

    async def chat(self, target: Target, body: dict[str, Any]) -> ChatResult:
        request = build_request(target, body, stream=False)
        call = UpstreamCall(
            self,
            target,
            f"{target.base_url}/api/chat",
            json_body=request,
            headers=self.headers(target),
        )
        async with call:
            data = await call.json()
        if not isinstance(data, dict) or "error" in data:
            raise self._failed(target, data)
        message = data.get("message") or {}
        tool_calls = message.get("tool_calls")
        content = message.get("content") or ""
        out_message: dict[str, Any] = {"role": "assistant", "content": content}
        if tool_calls:
            out_message["tool_calls"] = [
                {k: v for k, v in call.items() if k != "index"}
                for call in _openai_tool_calls(tool_calls)
            ]
            if not content:
                out_message["content"] = None
        usage = _usage(data)
        response: dict[str, Any] = {
            "id": "chatcmpl-" + uuid.uuid4().hex,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": data.get("model") or target.upstream_model,
            "choices": [
                {
                    "index": 0,
                    "message": out_message,
                    "finish_reason": _finish_reason(data, bool(tool_calls)),
                    "logprobs": None,
                }
            ],
        }
        if usage is not None:
            response["usage"] = usage.to_openai()
        return ChatResult(response, usage)

    async def chat_stream(
        self, target: Target, body: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        request = build_request(target, body, stream=True)
        call = UpstreamCall(
            self,
            target,
            f"{target.base_url}/api/chat",
            json_body=request,
            headers=self.headers(target),
        )
        chunk_id = "chatcmpl-" + uuid.uuid4().hex
        created = int(time.time())
        model = target.upstream_model
        first = True
        tool_call_count = 0

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [
                    {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
                ],
            }

        async with call:
            async for line in call.lines():
                if not line:
                    continue
                try:
                    data = orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise UpstreamError(
                        f"Provider '{target.provider_name}' sent a stream line that is not JSON."
                    ) from None
                if not isinstance(data, dict) or "error" in data:
                    raise self._failed(target, data)
                model = data.get("model") or model
                message = data.get("message") or {}
                content = message.get("content") or ""
                tool_calls = message.get("tool_calls")
                delta: dict[str, Any] = {}
                if first:
                    delta["role"] = "assistant"
                if content or first:
                    delta["content"] = content
                if tool_calls:
                    delta["tool_calls"] = _openai_tool_calls(tool_calls, tool_call_count)
                    tool_call_count += len(tool_calls)
                if content or tool_calls or first:
                    first = False
                    yield chunk(delta)
                if data.get("done"):
                    yield chunk({}, _finish_reason(data, tool_call_count > 0))
                    usage = _usage(data)
                    if usage is not None:
                        final = chunk({})
                        final["choices"] = []
                        final["usage"] = usage.to_openai()
                        yield final
                    return
        raise UpstreamError(f"Provider '{target.provider_name}' ended the stream early.")

    async def embeddings(self, target: Target, body: dict[str, Any]) -> EmbeddingsResult:
        inputs = body.get("input")
        if isinstance(inputs, list) and inputs and not isinstance(inputs[0], str):
            raise _unsupported("Ollama embeds text only, not token arrays.", "input")
        request: dict[str, Any] = {"model": target.upstream_model, "input": inputs}
        if body.get("dimensions"):
            request["dimensions"] = body["dimensions"]
        if target.options and "keep_alive" in target.options:
            request["keep_alive"] = target.options["keep_alive"]
        call = UpstreamCall(
            self,
            target,
            f"{target.base_url}/api/embed",
            json_body=request,
            headers=self.headers(target),
        )
        async with call:
            data = await call.json()
        if not isinstance(data, dict) or not isinstance(data.get("embeddings"), list):
            raise self._failed(target, data)
        as_base64 = body.get("encoding_format") == "base64"
        items = [
            {
                "object": "embedding",
                "index": index,
                "embedding": _base64_floats(vector) if as_base64 else vector,
            }
            for index, vector in enumerate(data["embeddings"])
        ]
        prompt_tokens = int(data.get("prompt_eval_count") or 0)
        response = {
            "object": "list",
            "data": items,
            "model": data.get("model") or target.upstream_model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }
        return EmbeddingsResult(response, Usage(input_tokens=prompt_tokens))


def _base64_floats(vector: list[float]) -> str:
    """OpenAI's `encoding_format: base64`: little-endian float32 values, base64-encoded."""
    packed = array("f", vector)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()
