"""A fake Anthropic Messages API on 127.0.0.1 that validates requests like the real one.

Use it inside a test's loop::

    async with FakeAnthropic() as fake:
        fake.enqueue(AnthropicReply(text="Hi"))
        ... call fake.base_url ...

or from synchronous code and other processes::

    fake = FakeAnthropic()
    base_url = fake.start_in_thread()
    ...
    fake.stop()

Each request takes the next queued `AnthropicReply` (thread-safe) or, when the queue is
empty, a deterministic default answer. Streamed answers follow the event sequence of
https://docs.anthropic.com/en/api/messages-streaming, ping included.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.serving import LoopbackServer

API_KEY = "sk-ant-fake-key"

_ALLOWED_FIELDS = {
    "model",
    "messages",
    "max_tokens",
    "system",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "tools",
    "tool_choice",
    "metadata",
    "thinking",
    "service_tier",
}
_IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass
class AnthropicReply:
    """One scripted answer. Fields left at their defaults give the default behaviour.

    - `text`: the answer text (default: "Echo: " + the last user text).
    - `tool_uses`: `[{"name": ..., "input": {...}, "id": optional}]`, answered after the text.
    - `thinking`: a thinking block placed first.
    - `stop_reason`: default `tool_use` when tools are used, else `end_turn`.
    - `input_tokens`/`output_tokens`: default derived from the request and answer sizes.
    - `status` != 200 answers an error in Anthropic's shape (`error_type`, `error_message`,
      `retry_after` as the retry-after header).
    - `first_byte_delay`: seconds before the status line is sent.
    - `event_delay`: seconds between stream events.
    - `break_after_events`: cut the connection after that many stream events.
    - `error_event_after`: send an `error` event (`error_type`) after that many events.
    - `end_after_events`: end the stream cleanly after that many events.
    """

    text: str | None = None
    tool_uses: list[dict[str, Any]] = field(default_factory=list)
    thinking: str | None = None
    stop_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    status: int = 200
    error_type: str | None = None
    error_message: str | None = None
    retry_after: float | None = None
    first_byte_delay: float = 0.0
    event_delay: float = 0.0
    break_after_events: int | None = None
    error_event_after: int | None = None
    end_after_events: int | None = None


@dataclass
class RecordedRequest:
    """What the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


class _Invalid(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _error(status: int, message: str, err_type: str | None = None, **headers: str) -> web.Response:
    body = {
        "type": "error",
        "error": {"type": err_type or _ERROR_TYPES.get(status, "api_error"), "message": message},
    }
    return web.json_response(body, status=status, headers=headers)


class FakeAnthropic(LoopbackServer):
    """An aiohttp server speaking Anthropic's `/v1/messages`, scripted per test."""

    name = "fake Anthropic server"

    def __init__(self, *, api_key: str = API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self._replies: deque[AnthropicReply] = deque()
        self._lock = threading.Lock()
        self._counter = 0

    # -- scripting ---------------------------------------------------------------------
    def enqueue(self, *replies: AnthropicReply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def enqueue_error(
        self,
        status: int,
        message: str = "error",
        *,
        error_type: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.enqueue(
            AnthropicReply(
                status=status, error_message=message, error_type=error_type, retry_after=retry_after
            )
        )

    def _next_reply(self) -> AnthropicReply:
        with self._lock:
            self._counter += 1
            return self._replies.popleft() if self._replies else AnthropicReply()

    # -- routes ------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._messages)

    # -- handler -----------------------------------------------------------------------
    async def _messages(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            self.requests.append(RecordedRequest(request.method, request.path, headers, body))
        reply = self._next_reply()
        if reply.first_byte_delay:
            await asyncio.sleep(reply.first_byte_delay)

        key = headers.get("x-api-key")
        if not key:
            return _error(401, "x-api-key header is required")
        if key != self.api_key:
            return _error(401, "invalid x-api-key")
        if not headers.get("anthropic-version"):
            return _error(400, "anthropic-version: header is required")
        if reply.status != 200:
            extra = {}
            if reply.retry_after is not None:
                extra["retry-after"] = f"{reply.retry_after:g}"
            return _error(
                reply.status,
                reply.error_message or "scripted error",
                reply.error_type,
                **extra,
            )
        if not isinstance(body, dict):
            return _error(400, "There was an issue with the JSON body of your request.")
        try:
            _validate(body)
        except _Invalid as exc:
            return _error(400, exc.message)

        message = self._message(body, reply)
        if body.get("stream"):
            return await self._stream(request, message, reply)
        return web.json_response(message)

    def _message(self, body: dict[str, Any], reply: AnthropicReply) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if reply.thinking:
            content.append({"type": "thinking", "thinking": reply.thinking, "signature": "sig"})
        text = reply.text if reply.text is not None else f"Echo: {_last_user_text(body)}"
        if text:
            content.append({"type": "text", "text": text})
        for k, tool in enumerate(reply.tool_uses):
            content.append(
                {
                    "type": "tool_use",
                    "id": tool.get("id") or f"toolu_{self._counter:04d}{k}",
                    "name": tool["name"],
                    "input": tool.get("input") or {},
                }
            )
        stop_reason = reply.stop_reason or ("tool_use" if reply.tool_uses else "end_turn")
        input_tokens = reply.input_tokens
        if input_tokens is None:
            input_tokens = max(1, len(json.dumps(body.get("messages"))) // 4)
        output_tokens = reply.output_tokens
        if output_tokens is None:
            output_tokens = max(1, len(json.dumps(content)) // 4)
        return {
            "id": f"msg_fake{self._counter:06d}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cache_creation_input_tokens": reply.cache_creation_input_tokens,
                "cache_read_input_tokens": reply.cache_read_input_tokens,
            },
        }

    async def _stream(
        self, request: web.Request, message: dict[str, Any], reply: AnthropicReply
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"content-type": "text/event-stream", "cache-control": "no-cache"}
        )
        await response.prepare(request)
        events = _stream_events(message)
        for count, (name, data) in enumerate(events):
            if reply.break_after_events is not None and count >= reply.break_after_events:
                # Drop the connection without finishing the chunked body.
                assert request.transport is not None
                request.transport.close()
                return response
            if reply.end_after_events is not None and count >= reply.end_after_events:
                break
            if reply.error_event_after is not None and count >= reply.error_event_after:
                err_type = reply.error_type or "overloaded_error"
                error = {
                    "type": "error",
                    "error": {"type": err_type, "message": reply.error_message or "Overloaded"},
                }
                await response.write(_sse("error", error))
                break
            await response.write(_sse(name, data))
            if reply.event_delay:
                await asyncio.sleep(reply.event_delay)
        await response.write_eof()
        return response


def _sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _pieces(text: str, size: int = 5) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _stream_events(message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    usage = message["usage"]
    start_usage = dict(usage, output_tokens=1)
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": dict(
                    message, content=[], stop_reason=None, stop_sequence=None, usage=start_usage
                ),
            },
        )
    ]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        if kind == "text":
            start = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in _pieces(block["text"])]
        elif kind == "thinking":
            start = {"type": "thinking", "thinking": ""}
            deltas = [{"type": "thinking_delta", "thinking": p} for p in _pieces(block["thinking"])]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            arguments = json.dumps(block["input"])
            # The real API opens with an empty partial_json.
            deltas = [{"type": "input_json_delta", "partial_json": ""}]
            deltas += [
                {"type": "input_json_delta", "partial_json": p} for p in _pieces(arguments, 7)
            ]
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
        )
        if index == 0:
            events.append(("ping", {"type": "ping"}))
        events += [
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        ]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body["messages"]):
        if message["role"] != "user":
            continue
        content = message["content"]
        if isinstance(content, str):
            return content
        for block in reversed(content):
            if block.get("type") == "text":
                return block["text"]
    return ""


# -- validation, following the real API's rules and messages ------------------------------


def _validate(body: dict[str, Any]) -> None:
    extra = sorted(set(body) - _ALLOWED_FIELDS)
    if extra:
        raise _Invalid(f"{extra[0]}: Extra inputs are not permitted")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise _Invalid("model: Field required")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        raise _Invalid("max_tokens: Field required")
    if max_tokens < 1:
        raise _Invalid("max_tokens: Input should be greater than or equal to 1")
    _validate_system(body.get("system"))
    _validate_messages(body.get("messages"))
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int | float) or not 0 <= value <= 1):
            raise _Invalid(f"{name}: Input should be less than or equal to 1")
    stops = body.get("stop_sequences")
    if stops is not None and (
        not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)
    ):
        raise _Invalid("stop_sequences: Input should be a valid list of strings")
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict) or set(metadata) - {"user_id"}:
            raise _Invalid("metadata: Extra inputs are not permitted")
        if not isinstance(metadata.get("user_id"), str | None):
            raise _Invalid("metadata.user_id: Input should be a valid string")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise _Invalid("stream: Input should be a valid boolean")
    _validate_tools(body.get("tools"), body.get("tool_choice"))


def _validate_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise _Invalid("system: Input should be a valid string or list")
    for k, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise _Invalid(f"system.{k}.type: Input should be 'text'")
        if not isinstance(block.get("text"), str) or not block["text"]:
            raise _Invalid(f"system.{k}.text: text content blocks must be non-empty")


def _validate_messages(messages: Any) -> None:
    if not isinstance(messages, list):
        raise _Invalid("messages: Field required")
    if not messages:
        raise _Invalid("messages: at least one message is required")
    previous_role = None
    previous_tool_ids: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            raise _Invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if i == 0 and role != "user":
            raise _Invalid('messages: first message must use the "user" role')
        if role == previous_role:
            raise _Invalid('messages: roles must alternate between "user" and "assistant"')
        content = message.get("content")
        tool_ids: set[str] = set()
        if isinstance(content, str):
            if not content and i != len(messages) - 1:
                raise _Invalid(f"messages.{i}: all messages must have non-empty content")
        elif isinstance(content, list) and content:
            seen_other = False
            for k, block in enumerate(content):
                where = f"messages.{i}.content.{k}"
                kind = _validate_block(block, where, role)
                if kind == "tool_use":
                    tool_ids.add(block["id"])
                if kind == "tool_result":
                    if seen_other:
                        raise _Invalid(
                            f"{where}: tool_result blocks must come first in the user message"
                        )
                    if block["tool_use_id"] not in previous_tool_ids:
                        raise _Invalid(
                            f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: "
                            f"{block['tool_use_id']}. Each `tool_result` block must have a "
                            "corresponding `tool_use` block in the previous message."
                        )
                else:
                    seen_other = True
        else:
            raise _Invalid(f"messages.{i}: all messages must have non-empty content")
        previous_role = role
        previous_tool_ids = tool_ids


def _validate_block(block: Any, where: str, role: str) -> str:
    if not isinstance(block, dict):
        raise _Invalid(f"{where}: Input should be a valid dictionary")
    kind = block.get("type")
    if kind == "text":
        if not isinstance(block.get("text"), str) or not block["text"]:
            raise _Invalid(f"{where}: text content blocks must be non-empty")
    elif kind in ("image", "document"):
        if role != "user":
            raise _Invalid(f"{where}: {kind} blocks are only allowed in user messages")
        source = block.get("source")
        if not isinstance(source, dict):
            raise _Invalid(f"{where}.source: Field required")
        if source.get("type") == "base64":
            allowed = _IMAGE_TYPES if kind == "image" else {"application/pdf"}
            if source.get("media_type") not in allowed:
                raise _Invalid(f"{where}.source.media_type: Input should be one of {allowed}")
            if not isinstance(source.get("data"), str) or not source["data"]:
                raise _Invalid(f"{where}.source.data: Field required")
        elif source.get("type") == "url":
            if not str(source.get("url", "")).startswith(("http://", "https://")):
                raise _Invalid(f"{where}.source.url: Input should be a valid URL")
        else:
            raise _Invalid(f"{where}.source.type: Input should be 'base64' or 'url'")
    elif kind == "tool_use":
        if role != "assistant":
            raise _Invalid(f"{where}: tool_use blocks are only allowed in assistant messages")
        if not isinstance(block.get("id"), str) or not block["id"]:
            raise _Invalid(f"{where}.id: Field required")
        if not _TOOL_NAME.match(str(block.get("name", ""))):
            raise _Invalid(f"{where}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
        if not isinstance(block.get("input"), dict):
            raise _Invalid(f"{where}.input: Input should be a valid dictionary")
    elif kind == "tool_result":
        if role != "user":
            raise _Invalid(f"{where}: tool_result blocks are only allowed in user messages")
        if not isinstance(block.get("tool_use_id"), str) or not block["tool_use_id"]:
            raise _Invalid(f"{where}.tool_use_id: Field required")
        content = block.get("content")
        if content is not None and not isinstance(content, str | list):
            raise _Invalid(f"{where}.content: Input should be a valid string or list")
    elif kind in ("thinking", "redacted_thinking"):
        pass
    else:
        raise _Invalid(f"{where}.type: Input tag '{kind}' does not match any expected tag")
    return str(kind)


def _validate_tools(tools: Any, tool_choice: Any) -> None:
    names = set()
    if tools is not None:
        if not isinstance(tools, list):
            raise _Invalid("tools: Input should be a valid list")
        for k, tool in enumerate(tools):
            if not isinstance(tool, dict) or not _TOOL_NAME.match(str(tool.get("name", ""))):
                raise _Invalid(
                    f"tools.{k}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
                )
            schema = tool.get("input_schema")
            if not isinstance(schema, dict) or schema.get("type") != "object":
                raise _Invalid(f"tools.{k}.input_schema.type: Input should be 'object'")
            extra = set(tool) - {"name", "description", "input_schema", "cache_control", "type"}
            if extra:
                raise _Invalid(f"tools.{k}.{sorted(extra)[0]}: Extra inputs are not permitted")
            names.add(tool["name"])
    if tool_choice is None:
        return
    if not isinstance(tool_choice, dict) or tool_choice.get("type") not in (
        "auto",
        "any",
        "tool",
        "none",
    ):
        raise _Invalid("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    if tool_choice["type"] == "tool" and tool_choice.get("name") not in names:
        raise _Invalid("tool_choice.name: Tool not found in tools")
    if tool_choice["type"] in ("any", "tool") and not names:
        raise _Invalid("tool_choice: may only be specified while providing tools")
