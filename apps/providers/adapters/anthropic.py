"""The Anthropic Messages adapter: OpenAI chat requests to `/v1/messages` and back.

Reference: https://docs.anthropic.com/en/api/messages and
https://docs.anthropic.com/en/api/messages-streaming.

Translation notes, where the two protocols do not line up:
- System (and developer) messages, wherever they appear, become the top-level `system`
  blocks in order; Anthropic has no system turns.
- Anthropic requires user and assistant turns to alternate, so consecutive messages of the
  same role are merged, and `tool` messages become `tool_result` blocks in a user turn
  (placed before any text, as Anthropic requires).
- Anthropic has no JSON mode. `response_format` of `json_object` or `json_schema` appends a
  system instruction asking for a single JSON value only (quoting the schema when given);
  the answer is not validated.
- `max_tokens` is mandatory upstream: it defaults to the deployment's `max_output_tokens`,
  else 4096. `temperature` is clamped to Anthropic's range 0..1.
- `n` > 1 and `logprobs` cannot be expressed and are refused; `seed`, `presence_penalty`,
  `frequency_penalty` and `logit_bias` have no Anthropic equivalent and are ignored.
- Thinking blocks are dropped from answers; cache reads and writes are counted in
  `prompt_tokens` and reported in `prompt_tokens_details`.

`Target.options` may carry `anthropic_version`, `anthropic_beta` (a string or a list) and
`headers` (extra request headers).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from apps.providers.adapters.base import (
    Adapter,
    ChatResult,
    Target,
    UpstreamCall,
    Usage,
    error_from_status,
)
from apps.providers.exceptions import UnsupportedFeature, UpstreamError
from atp_site.lib.errors import InvalidRequest

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# HTTP status Anthropic uses for each error type
# (https://docs.anthropic.com/en/api/errors); used for `error` events inside a stream.
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

_JSON_INSTRUCTION = (
    "Respond with a single valid JSON value only: no prose before or after it and no "
    "markdown code fences."
)


class AnthropicAdapter(Adapter):
    """Speaks Anthropic's Messages API."""

    kind = "anthropic"

    async def chat(self, target: Target, body: dict[str, Any]) -> ChatResult:
        payload = build_messages_request(target, body)
        async with UpstreamCall(
            self, target, messages_url(target), json_body=payload, headers=_headers(target)
        ) as call:
            data = await call.json()
        if not isinstance(data, dict) or data.get("type") == "error":
            raise UpstreamError(
                f"Provider '{target.provider_name}' sent an unexpected answer: "
                f"{self.error_message(data) or 'not a message'}"
            )
        return parse_message(data, target)

    async def chat_stream(
        self, target: Target, body: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        payload = build_messages_request(target, body)
        payload["stream"] = True
        async with UpstreamCall(
            self, target, messages_url(target), json_body=payload, headers=_headers(target)
        ) as call:
            stream = _StreamState(target)
            async for event, data in call.sse_events():
                try:
                    obj = orjson.loads(data)
                except orjson.JSONDecodeError:
                    raise UpstreamError(
                        f"Provider '{target.provider_name}' sent a stream event that is not JSON."
                    ) from None
                if not isinstance(obj, dict):
                    continue
                kind = obj.get("type") or event
                if kind == "error":
                    raise self._stream_error(target, obj)
                for chunk in stream.feed(kind, obj):
                    yield chunk
                if stream.done:
                    return
        raise UpstreamError(
            f"Provider '{target.provider_name}' ended the stream before it was complete."
        )

    def _stream_error(self, target: Target, obj: dict[str, Any]) -> UpstreamError:
        err = obj.get("error") if isinstance(obj.get("error"), dict) else {}
        err_type = str(err.get("type") or "api_error")
        mapped = error_from_status(self, target, _ERROR_STATUS.get(err_type, 500), obj)
        # Keep the mapping (status, code, retryable) but say what actually happened: the
        # HTTP status was 200 and the failure arrived as an event.
        detail = self.error_message(obj)[:500]
        mapped.message = (
            f"Provider '{target.provider_name}' failed mid-stream ({err_type})"
            f"{': ' + detail if detail and detail != err_type else '.'}"
        )
        mapped.args = (mapped.message,)
        return mapped

    def error_message(self, payload: Any) -> str:
        # Anthropic's envelope: {"type": "error", "error": {"type": ..., "message": ...}}.
        if isinstance(payload, dict):
            err = payload.get("error")
            if isinstance(err, dict):
                message = err.get("message")
                if isinstance(message, str) and message:
                    return message
                if isinstance(err.get("type"), str):
                    return err["type"]
        return super().error_message(payload)


# -- request -----------------------------------------------------------------------------


def messages_url(target: Target) -> str:
    base = target.base_url.rstrip("/")
    base = base.removesuffix("/v1")
    return f"{base}/v1/messages"


def _headers(target: Target) -> dict[str, str]:
    options = target.options or {}
    headers = {
        "x-api-key": target.api_key,
        "anthropic-version": str(options.get("anthropic_version") or ANTHROPIC_VERSION),
    }
    beta = options.get("anthropic_beta")
    if beta:
        headers["anthropic-beta"] = beta if isinstance(beta, str) else ",".join(beta)
    extra = options.get("headers")
    if isinstance(extra, Mapping):
        headers.update({str(k): str(v) for k, v in extra.items()})
    return headers


def build_messages_request(target: Target, body: Mapping[str, Any]) -> dict[str, Any]:
    """Translate an OpenAI chat request into an Anthropic Messages request."""
    n = body.get("n")
    if n is not None and n != 1:
        raise UnsupportedFeature(
            "Anthropic models return one choice per request; n must be 1.", param="n"
        )
    if body.get("logprobs"):
        raise UnsupportedFeature("Anthropic models do not return logprobs.", param="logprobs")

    system, turns = _translate_messages(body.get("messages") or [])
    instruction = _json_instruction(body.get("response_format"))
    if instruction:
        system.append({"type": "text", "text": instruction})

    max_tokens = (
        body.get("max_completion_tokens")
        or body.get("max_tokens")
        or target.max_output_tokens
        or DEFAULT_MAX_TOKENS
    )
    payload: dict[str, Any] = {
        "model": target.upstream_model,
        "messages": turns,
        "max_tokens": int(max_tokens),
    }
    if system:
        payload["system"] = system
    stop = body.get("stop")
    if isinstance(stop, str):
        payload["stop_sequences"] = [stop]
    elif stop:
        payload["stop_sequences"] = list(stop)
    if body.get("temperature") is not None:
        # OpenAI accepts 0..2, Anthropic 0..1.
        payload["temperature"] = min(float(body["temperature"]), 1.0)
    if body.get("top_p") is not None:
        payload["top_p"] = body["top_p"]
    if body.get("user"):
        payload["metadata"] = {"user_id": str(body["user"])}

    tools = _translate_tools(body.get("tools"))
    if tools:
        payload["tools"] = tools
        choice = _translate_tool_choice(body.get("tool_choice"))
        if body.get("parallel_tool_calls") is False:
            choice = choice or {"type": "auto"}
            if choice["type"] != "none":
                choice["disable_parallel_tool_use"] = True
        if choice:
            payload["tool_choice"] = choice
    return payload


def _json_instruction(response_format: Any) -> str | None:
    if not isinstance(response_format, Mapping):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return _JSON_INSTRUCTION
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if schema is None:
            return _JSON_INSTRUCTION
        dumped = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS).decode()
        return f"{_JSON_INSTRUCTION} The JSON must conform to this JSON Schema: {dumped}"
    return None


def _text_of(content: Any) -> str:
    """The text of a message content that may only hold text (system, tool results)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        if isinstance(part, Mapping) and part.get("type") == "text":
            texts.append(str(part.get("text") or ""))
    return "".join(texts)


def _translate_messages(
    messages: list[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_system_blocks(message.get("content")))
            continue
        if role == "user":
            blocks = _user_blocks(message.get("content"), f"messages[{i}].content")
            turn_role = "user"
        elif role == "assistant":
            blocks = _assistant_blocks(message, i)
            turn_role = "assistant"
        elif role == "tool":
            block: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": str(message.get("tool_call_id") or ""),
            }
            text = _text_of(message.get("content"))
            if text:
                block["content"] = text
            blocks = [block]
            turn_role = "user"
        else:
            raise UnsupportedFeature(
                f"Messages with role '{role}' cannot be sent to Anthropic.",
                param=f"messages[{i}].role",
            )
        if not blocks:
            continue
        if turns and turns[-1]["role"] == turn_role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": turn_role, "content": blocks})
    for turn in turns:
        if turn["role"] == "user":
            # Anthropic wants tool results first in a user turn, any text after them.
            turn["content"].sort(key=lambda b: b.get("type") != "tool_result")
    return system, turns


def _system_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for part in content or []:
        if isinstance(part, Mapping) and part.get("type") == "text" and part.get("text"):
            blocks.append(_with_cache_control({"type": "text", "text": part["text"]}, part))
    return blocks


def _with_cache_control(block: dict[str, Any], part: Mapping[str, Any]) -> dict[str, Any]:
    # Clients that know Anthropic mark prompt-cache breakpoints on OpenAI parts this way.
    if isinstance(part.get("cache_control"), Mapping):
        block["cache_control"] = dict(part["cache_control"])
    return block


def _user_blocks(content: Any, param: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content or []):
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                blocks.append(_with_cache_control({"type": "text", "text": part["text"]}, part))
        elif kind == "image_url":
            image = part.get("image_url") or {}
            url = image.get("url") if isinstance(image, Mapping) else image
            blocks.append(_with_cache_control(_image_block(str(url or ""), f"{param}[{j}]"), part))
        elif kind == "file":
            blocks.append(
                _with_cache_control(_file_block(part.get("file") or {}, f"{param}[{j}]"), part)
            )
        else:
            raise UnsupportedFeature(
                f"Content parts of type '{kind}' cannot be sent to Anthropic.",
                param=f"{param}[{j}].type",
            )
    return blocks


def _parse_data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a `data:<type>;base64,<data>` URL."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        return None
    return header.removesuffix(";base64").split(";")[0] or "application/octet-stream", data


def _image_block(url: str, param: str) -> dict[str, Any]:
    parsed = _parse_data_url(url)
    if parsed:
        media_type, data = parsed
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidRequest(
        "image_url.url must be an http(s) URL or a base64 data URL.", param=f"{param}.image_url.url"
    )


def _file_block(file: Mapping[str, Any], param: str) -> dict[str, Any]:
    parsed = _parse_data_url(str(file.get("file_data") or ""))
    if parsed and parsed[0] == "application/pdf":
        return {
            "type": "document",
            "source": {"type": "base64", "media_type": parsed[0], "data": parsed[1]},
        }
    raise UnsupportedFeature(
        "Only PDF files given inline as base64 data URLs can be sent to Anthropic.",
        param=f"{param}.file",
    )


def _assistant_blocks(message: Mapping[str, Any], i: int) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    text = _text_of(message.get("content"))
    if text:
        # Anthropic rejects empty text blocks.
        blocks.append({"type": "text", "text": text})
    for j, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        raw = function.get("arguments") or "{}"
        try:
            arguments = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
        except orjson.JSONDecodeError:
            raise InvalidRequest(
                "Tool call arguments must be a JSON object.",
                param=f"messages[{i}].tool_calls[{j}].function.arguments",
            ) from None
        if not isinstance(arguments, dict):
            raise InvalidRequest(
                "Tool call arguments must be a JSON object.",
                param=f"messages[{i}].tool_calls[{j}].function.arguments",
            )
        blocks.append(
            {
                "type": "tool_use",
                "id": str(call.get("id") or ""),
                "name": str(function.get("name") or ""),
                "input": arguments,
            }
        )
    return blocks


def _translate_tools(tools: Any) -> list[dict[str, Any]]:
    translated = []
    for k, tool in enumerate(tools or []):
        if tool.get("type") != "function":
            raise UnsupportedFeature(
                f"Tools of type '{tool.get('type')}' cannot be sent to Anthropic.",
                param=f"tools[{k}].type",
            )
        function = tool.get("function") or {}
        entry: dict[str, Any] = {
            "name": function.get("name"),
            "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
        }
        if function.get("description"):
            entry["description"] = function["description"]
        translated.append(entry)
    return translated


def _translate_tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        return {"type": "tool", "name": (choice.get("function") or {}).get("name")}
    raise UnsupportedFeature("This tool_choice cannot be sent to Anthropic.", param="tool_choice")


# -- response ----------------------------------------------------------------------------


def usage_from_anthropic(usage: Mapping[str, Any] | None) -> Usage | None:
    """Anthropic counts cache reads and writes apart from `input_tokens`; ATP includes them."""
    if not usage:
        return None
    cache_read = int(usage.get("cache_read_input_tokens") or 0)
    cache_write = int(usage.get("cache_creation_input_tokens") or 0)
    return Usage(
        input_tokens=int(usage.get("input_tokens") or 0) + cache_read + cache_write,
        output_tokens=int(usage.get("output_tokens") or 0),
        cached_input_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def parse_message(data: Mapping[str, Any], target: Target) -> ChatResult:
    """Translate an Anthropic `message` into an OpenAI `chat.completion`."""
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in data.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use":
            tool_calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    usage = usage_from_anthropic(data.get("usage"))
    response: dict[str, Any] = {
        "id": data.get("id") or f"msg_{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": data.get("model") or target.upstream_model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": _FINISH_REASONS.get(str(data.get("stop_reason")), "stop"),
                "logprobs": None,
            }
        ],
    }
    if usage is not None:
        response["usage"] = usage.to_openai()
    return ChatResult(response=response, usage=usage)


class _StreamState:
    """Turns Anthropic stream events into OpenAI chunks, one event at a time."""

    def __init__(self, target: Target) -> None:
        self.id = f"msg_{uuid.uuid4().hex}"
        self.model = target.upstream_model
        self.created = int(time.time())
        self.usage: dict[str, Any] = {}
        self.tool_index: dict[int, int] = {}
        self.finished = False
        self.done = False

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
            ],
        }

    def feed(self, kind: str | None, obj: Mapping[str, Any]) -> list[dict[str, Any]]:
        if kind == "message_start":
            message = obj.get("message") or {}
            self.id = message.get("id") or self.id
            self.model = message.get("model") or self.model
            self.usage.update(message.get("usage") or {})
            return [self.chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._block_start(int(obj.get("index") or 0), obj.get("content_block") or {})
        if kind == "content_block_delta":
            return self._block_delta(int(obj.get("index") or 0), obj.get("delta") or {})
        if kind == "message_delta":
            # message_delta's usage is cumulative; later values replace earlier ones.
            self.usage.update({k: v for k, v in (obj.get("usage") or {}).items() if v is not None})
            stop_reason = (obj.get("delta") or {}).get("stop_reason")
            if stop_reason and not self.finished:
                self.finished = True
                return [self.chunk({}, _FINISH_REASONS.get(stop_reason, "stop"))]
            return []
        if kind == "message_stop":
            self.done = True
            chunks = []
            if not self.finished:
                self.finished = True
                chunks.append(self.chunk({}, "stop"))
            usage = usage_from_anthropic(self.usage)
            if usage is not None:
                chunks.append(
                    {
                        "id": self.id,
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": self.model,
                        "choices": [],
                        "usage": usage.to_openai(),
                    }
                )
            return chunks
        # ping, content_block_stop and event types added later carry nothing to forward.
        return []

    def _block_start(self, index: int, block: Mapping[str, Any]) -> list[dict[str, Any]]:
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            return [self.chunk({"content": block["text"]})]
        if kind == "tool_use":
            position = len(self.tool_index)
            self.tool_index[index] = position
            call = {
                "index": position,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            return [self.chunk({"tool_calls": [call]})]
        return []

    def _block_delta(self, index: int, delta: Mapping[str, Any]) -> list[dict[str, Any]]:
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [self.chunk({"content": delta["text"]})]
        if kind == "input_json_delta" and delta.get("partial_json") and index in self.tool_index:
            call = {
                "index": self.tool_index[index],
                "function": {"arguments": delta["partial_json"]},
            }
            return [self.chunk({"tool_calls": [call]})]
        return []
