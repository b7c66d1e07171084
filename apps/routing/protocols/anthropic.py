"""Anthropic Messages protocol for `POST /v1/messages`, translated to and from OpenAI's shape.

Requests arrive in Anthropic's Messages shape (https://docs.anthropic.com/en/api/messages)
and become OpenAI Chat Completions bodies, ATP's canonical format; answers and streams come
back from the pipeline in OpenAI's shape and leave in Anthropic's
(https://docs.anthropic.com/en/api/messages-streaming).

What does not survive the trip, and why:
- `cache_control` markers are dropped: prompt caching is the serving provider's business and
  OpenAI's shape has no place for breakpoints. Cache usage still comes back in `usage`.
- `top_k` and `thinking` have no OpenAI equivalent; they are dropped and listed in
  `RequestMeta.notes`. Thinking blocks replayed in assistant turns are dropped likewise.
- Images inside a `tool_result` cannot ride on an OpenAI `tool` message, so they are sent in
  the user message that follows the tool results.
- Unknown top-level fields are ignored (and noted) rather than refused, so newer clients
  that send fields ATP does not know still work; the `atp` extension object is passed on.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from apps.providers.adapters.base import Usage
from atp_site.lib.errors import ATPError, InvalidRequest, anthropic_error_body
from atp_site.lib.identifiers import control_free

__all__ = [
    "RequestMeta",
    "StreamTranslator",
    "request_to_openai",
    "response_from_openai",
    "stop_reason_from_openai",
]

# Anthropic accepts these image media types
# (https://docs.anthropic.com/en/docs/build-with-claude/vision).
_IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

_KNOWN_FIELDS = frozenset(
    {
        "model",
        "max_tokens",
        "messages",
        "system",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "stream",
        "tools",
        "tool_choice",
        "metadata",
        "thinking",
        "atp",
    }
)


@dataclass(slots=True)
class RequestMeta:
    """What the caller asked for that the OpenAI body does not carry.

    `model` is the public model name as requested, `stream` whether the caller wants SSE,
    and `notes` lists the parts of the request that were dropped in translation.
    """

    model: str
    stream: bool = False
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


# -- request ---------------------------------------------------------------------------


def _bad(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _check_cache_control(block: Mapping[str, Any], meta: RequestMeta) -> None:
    if "cache_control" in block:
        meta.note("cache_control markers were dropped; the provider decides what it caches.")


def _block_type(block: Any, path: str) -> str:
    if not isinstance(block, dict):
        raise _bad(path, f"{path} must be a content block object.")
    kind = block.get("type")
    if not _nonempty_str(kind):
        raise _bad(f"{path}.type", f"{path}.type must be a content block type such as 'text'.")
    return kind


def _text_of(block: Mapping[str, Any], path: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise _bad(f"{path}.text", f"{path}.text must be a string.")
    return text


def _image_part(block: Mapping[str, Any], path: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise _bad(f"{path}.source", f"{path}.source must be an object.")
    kind = source.get("type")
    if kind == "base64":
        media_type = source.get("media_type")
        if media_type not in _IMAGE_MEDIA_TYPES:
            raise _bad(
                f"{path}.source.media_type",
                f"{path}.source.media_type must be one of {', '.join(sorted(_IMAGE_MEDIA_TYPES))}.",
            )
        data = source.get("data")
        if not _nonempty_str(data):
            raise _bad(f"{path}.source.data", f"{path}.source.data must be base64 image data.")
        url = f"data:{media_type};base64,{data}"
    elif kind == "url":
        url = source.get("url")
        if not _nonempty_str(url):
            raise _bad(f"{path}.source.url", f"{path}.source.url must be a URL string.")
    else:
        raise _bad(f"{path}.source.type", f"{path}.source.type must be 'base64' or 'url'.")
    return {"type": "image_url", "image_url": {"url": url}}


def _unsupported_block(kind: str, path: str, role: str) -> InvalidRequest:
    return _bad(
        path,
        f"Content block '{kind}' at {path} is not supported in {role} messages on this endpoint.",
    )


def _tool_result(
    block: Mapping[str, Any], path: str, meta: RequestMeta
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One OpenAI `tool` message, plus any images that must travel in the next user turn."""
    tool_use_id = block.get("tool_use_id")
    if not _nonempty_str(tool_use_id):
        raise _bad(f"{path}.tool_use_id", f"{path}.tool_use_id must be a non-empty string.")
    content = block.get("content")
    images: list[dict[str, Any]] = []
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    elif isinstance(content, list):
        texts: list[str] = []
        for k, sub in enumerate(content):
            sub_path = f"{path}.content.{k}"
            kind = _block_type(sub, sub_path)
            _check_cache_control(sub, meta)
            if kind == "text":
                texts.append(_text_of(sub, sub_path))
            elif kind == "image":
                images.append(_image_part(sub, sub_path))
            else:
                raise _unsupported_block(kind, sub_path, "tool_result")
        text = "\n".join(texts)
    else:
        raise _bad(f"{path}.content", f"{path}.content must be a string or a list of blocks.")
    is_error = block.get("is_error")
    if is_error is not None and not isinstance(is_error, bool):
        raise _bad(f"{path}.is_error", f"{path}.is_error must be true or false.")
    if is_error:
        text = f"Error: {text}"
    if images:
        meta.note("Images in tool results were sent in the following user message.")
    return {"role": "tool", "tool_call_id": tool_use_id, "content": text}, images


def _user_messages(blocks: list[Any], path: str, meta: RequestMeta) -> list[dict[str, Any]]:
    tool_messages: list[dict[str, Any]] = []
    tool_images: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        block_path = f"{path}.content.{j}"
        kind = _block_type(block, block_path)
        _check_cache_control(block, meta)
        if kind == "text":
            parts.append({"type": "text", "text": _text_of(block, block_path)})
        elif kind == "image":
            parts.append(_image_part(block, block_path))
        elif kind == "tool_result":
            tool_message, images = _tool_result(block, block_path, meta)
            tool_messages.append(tool_message)
            tool_images.extend(images)
        else:
            raise _unsupported_block(kind, block_path, "user")
    parts = tool_images + parts
    # OpenAI requires tool messages to follow the assistant turn that called the tools,
    # so they go first and the rest of the user's content comes after them.
    out = tool_messages
    if len(parts) == 1 and parts[0]["type"] == "text":
        out.append({"role": "user", "content": parts[0]["text"]})
    elif parts:
        out.append({"role": "user", "content": parts})
    return out


def _assistant_message(blocks: list[Any], path: str, meta: RequestMeta) -> dict[str, Any] | None:
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        block_path = f"{path}.content.{j}"
        kind = _block_type(block, block_path)
        _check_cache_control(block, meta)
        if kind == "text":
            texts.append(_text_of(block, block_path))
        elif kind == "tool_use":
            call_id = block.get("id")
            if not _nonempty_str(call_id):
                raise _bad(f"{block_path}.id", f"{block_path}.id must be a non-empty string.")
            name = block.get("name")
            if not _nonempty_str(name):
                raise _bad(f"{block_path}.name", f"{block_path}.name must be a non-empty string.")
            tool_input = block.get("input")
            if not isinstance(tool_input, dict):
                raise _bad(f"{block_path}.input", f"{block_path}.input must be an object.")
            tool_calls.append(
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": orjson.dumps(tool_input).decode()},
                }
            )
        elif kind in ("thinking", "redacted_thinking"):
            meta.note("Thinking blocks in earlier assistant turns were dropped.")
        else:
            raise _unsupported_block(kind, block_path, "assistant")
    if not texts and not tool_calls:
        return None
    # Anthropic's consecutive text blocks are one continuous answer (citations split them
    # mid-sentence), so they are joined without a separator.
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def _messages(raw: Any, meta: RequestMeta) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise _bad("messages", "messages must be a non-empty list of messages.")
    out: list[dict[str, Any]] = []
    last = len(raw) - 1
    for i, message in enumerate(raw):
        path = f"messages.{i}"
        if not isinstance(message, dict):
            raise _bad(path, f"{path} must be an object with a role and content.")
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise _bad(f"{path}.role", f"{path}.role must be 'user' or 'assistant'.")
        content = message.get("content")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        if not isinstance(content, list):
            raise _bad(
                f"{path}.content", f"{path}.content must be a string or a list of content blocks."
            )
        if not content and not (role == "assistant" and i == last):
            raise _bad(f"{path}.content", f"{path}.content must not be empty.")
        if role == "user":
            out.extend(_user_messages(content, path, meta))
        else:
            assistant = _assistant_message(content, path, meta)
            if assistant is not None:
                out.append(assistant)
    if raw[last].get("role") == "assistant":
        meta.note(
            "The final assistant message was sent as a prior turn; "
            "not every provider continues a prefilled answer."
        )
    return out


def _system(raw: Any, meta: RequestMeta) -> str:
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, list):
        raise _bad("system", "system must be a string or a list of text blocks.")
    texts: list[str] = []
    for i, block in enumerate(raw):
        path = f"system.{i}"
        if _block_type(block, path) != "text":
            raise _bad(f"{path}.type", f"{path}.type must be 'text'.")
        _check_cache_control(block, meta)
        texts.append(_text_of(block, path))
    return "\n\n".join(texts)


def _tools(raw: Any, meta: RequestMeta) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise _bad("tools", "tools must be a list of tool definitions.")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, tool in enumerate(raw):
        path = f"tools.{i}"
        if not isinstance(tool, dict):
            raise _bad(path, f"{path} must be a tool definition object.")
        kind = tool.get("type")
        if kind not in (None, "custom"):
            raise _bad(
                f"{path}.type",
                f"Server tool '{kind}' at {path} is not supported on this endpoint; "
                "declare a custom tool with a name and an input_schema.",
            )
        name = tool.get("name")
        if not _nonempty_str(name):
            raise _bad(f"{path}.name", f"{path}.name must be a non-empty string.")
        if name in seen:
            raise _bad(f"{path}.name", f"Tool name '{name}' at {path}.name is declared twice.")
        seen.add(name)
        description = tool.get("description")
        if description is not None and not isinstance(description, str):
            raise _bad(f"{path}.description", f"{path}.description must be a string.")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise _bad(f"{path}.input_schema", f"{path}.input_schema must be a JSON Schema object.")
        _check_cache_control(tool, meta)
        function: dict[str, Any] = {"name": name}
        if description:
            function["description"] = description
        function["parameters"] = schema
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(raw: Any, tool_names: set[str], out: dict[str, Any]) -> None:
    if not isinstance(raw, dict):
        raise _bad("tool_choice", "tool_choice must be an object with a type.")
    kind = raw.get("type")
    choice: Any
    if kind == "auto":
        choice = "auto"
    elif kind == "any":
        choice = "required"
    elif kind == "none":
        choice = "none"
    elif kind == "tool":
        name = raw.get("name")
        if not _nonempty_str(name):
            raise _bad("tool_choice.name", "tool_choice.name is required when type is 'tool'.")
        if name not in tool_names:
            raise _bad("tool_choice.name", f"tool_choice.name '{name}' is not one of the tools.")
        choice = {"type": "function", "function": {"name": name}}
    else:
        raise _bad("tool_choice.type", "tool_choice.type must be 'auto', 'any', 'tool' or 'none'.")
    disable_parallel = raw.get("disable_parallel_tool_use")
    if disable_parallel is not None and not isinstance(disable_parallel, bool):
        raise _bad(
            "tool_choice.disable_parallel_tool_use",
            "tool_choice.disable_parallel_tool_use must be true or false.",
        )
    if not tool_names:
        if kind == "none":
            return
        raise _bad("tool_choice", "tool_choice needs at least one tool in tools.")
    out["tool_choice"] = choice
    if disable_parallel and kind != "none":
        out["parallel_tool_calls"] = False


def _unit_interval(body: Mapping[str, Any], name: str, out: dict[str, Any]) -> None:
    value = body.get(name)
    if value is None:
        return
    if not _is_number(value) or not 0 <= value <= 1:
        raise _bad(name, f"{name} must be a number between 0 and 1.")
    out[name] = value


def request_to_openai(body: Any) -> tuple[dict[str, Any], RequestMeta]:
    """Validate an Anthropic Messages request and translate it to an OpenAI chat body.

    Raises `InvalidRequest` naming the first bad field by dotted path in `param`. The
    OpenAI body never carries `stream`; the caller reads it from the returned meta.
    """
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _bad("model", "model must be a non-empty string.")
    if not control_free(model):
        raise _bad("model", "model must not contain control characters.")
    if "max_tokens" not in body:
        raise _bad("max_tokens", "max_tokens is required.")
    max_tokens = body["max_tokens"]
    if not _is_int(max_tokens) or max_tokens < 1:
        raise _bad("max_tokens", "max_tokens must be an integer of at least 1.")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _bad("stream", "stream must be true or false.")
    meta = RequestMeta(model=model, stream=bool(stream))

    messages = _messages(body.get("messages"), meta)
    system = body.get("system")
    if system is not None:
        system_text = _system(system, meta)
        if system_text:
            messages.insert(0, {"role": "system", "content": system_text})
    out: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": max_tokens}

    stop = body.get("stop_sequences")
    if stop is not None:
        if not isinstance(stop, list):
            raise _bad("stop_sequences", "stop_sequences must be a list of strings.")
        for i, item in enumerate(stop):
            if not isinstance(item, str):
                raise _bad(f"stop_sequences.{i}", f"stop_sequences.{i} must be a string.")
        if stop:
            out["stop"] = stop
    _unit_interval(body, "temperature", out)
    _unit_interval(body, "top_p", out)
    top_k = body.get("top_k")
    if top_k is not None:
        if not _is_int(top_k) or top_k < 0:
            raise _bad("top_k", "top_k must be a non-negative integer.")
        meta.note("top_k was dropped; the OpenAI request shape has no equivalent.")

    tool_names: set[str] = set()
    tools = body.get("tools")
    if tools is not None:
        openai_tools = _tools(tools, meta)
        if openai_tools:
            out["tools"] = openai_tools
            tool_names = {tool["function"]["name"] for tool in openai_tools}
    tool_choice = body.get("tool_choice")
    if tool_choice is not None:
        _tool_choice(tool_choice, tool_names, out)

    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise _bad("metadata", "metadata must be an object.")
        user_id = metadata.get("user_id")
        if user_id is not None and not isinstance(user_id, str):
            raise _bad("metadata.user_id", "metadata.user_id must be a string.")
        if user_id and not control_free(user_id):
            raise _bad("metadata.user_id", "metadata.user_id must not contain control characters.")
        if user_id:
            out["user"] = user_id
    thinking = body.get("thinking")
    if thinking is not None:
        if not isinstance(thinking, dict):
            raise _bad("thinking", "thinking must be an object.")
        if thinking.get("type") != "disabled":
            meta.note("thinking was dropped; extended thinking is not available through ATP.")

    if "atp" in body:
        out["atp"] = body["atp"]
    for name in body:
        if name not in _KNOWN_FIELDS:
            meta.note(f"Unknown field '{name}' was ignored.")
    return out, meta


# -- response --------------------------------------------------------------------------


def stop_reason_from_openai(finish_reason: str | None, *, used_tools: bool = False) -> str:
    """Anthropic's `stop_reason` for an OpenAI `finish_reason`.

    Some OpenAI-compatible servers report `stop` after calling tools; Anthropic clients
    decide whether to run tools from `tool_use`, so a turn that used tools says so.
    """
    reason = _STOP_REASONS.get(finish_reason or "stop", "end_turn")
    if used_tools and reason == "end_turn":
        return "tool_use"
    return reason


def _new_tool_id() -> str:
    return f"toolu_{uuid.uuid4().hex[:24]}"


def _parse_arguments(raw: Any) -> dict[str, Any]:
    """Tool input from OpenAI's JSON-string arguments; a model's broken JSON becomes {}."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str | bytes) or not raw:
        return {}
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def _usage_dict(usage: Usage) -> dict[str, int]:
    # Usage.input_tokens counts cached reads and cache writes; Anthropic reports the three
    # separately and its input_tokens is only the uncached remainder.
    uncached = usage.input_tokens - usage.cached_input_tokens - usage.cache_write_tokens
    return {
        "input_tokens": max(0, uncached),
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cached_input_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
    }


def response_from_openai(
    resp: Mapping[str, Any], *, model: str, usage: Usage | None, message_id: str
) -> dict[str, Any]:
    """An Anthropic Message object for an OpenAI `chat.completion` (first choice only).

    `usage` falls back to the response's own `usage` when not given.
    """
    choices = resp.get("choices") or []
    choice = choices[0] if choices and isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    finish_reason = choice.get("finish_reason")
    text = _content_text(message.get("content"))
    refusal = message.get("refusal")
    if not text and isinstance(refusal, str) and refusal:
        text = refusal
        finish_reason = "content_filter"
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        if not isinstance(call, dict):
            continue
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or _new_tool_id(),
                "name": function.get("name") or "",
                "input": _parse_arguments(function.get("arguments")),
            }
        )
    used_tools = any(block["type"] == "tool_use" for block in content)
    if usage is None:
        usage = Usage.from_openai(resp.get("usage")) or Usage()
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason_from_openai(finish_reason, used_tools=used_tools),
        "stop_sequence": None,
        "usage": _usage_dict(usage),
    }


# -- stream ----------------------------------------------------------------------------


def _frame(event: str, payload: Mapping[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class StreamTranslator:
    """Turns OpenAI `chat.completion.chunk` dicts into Anthropic's SSE event sequence.

    Anthropic clients require content blocks that open, stream and close one at a time
    with consecutive indexes, so a block is closed as soon as content of another kind
    (or another tool call) arrives. One translator serves one response.
    """

    def __init__(self, *, model: str, message_id: str, input_tokens: int = 0) -> None:
        self.model = model
        self.message_id = message_id
        self.input_tokens = input_tokens
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self._started = False
        self._finished = False
        self._next_index = 0
        self._open: str | None = None  # "text" or "tool_use"
        self._open_tool: int | None = None  # OpenAI tool call index of the open block
        self._closed_tools: set[int] = set()
        self._used_tools = False

    def start(self) -> list[bytes]:
        """`message_start` and `ping`; empty if already sent."""
        if self._started:
            return []
        self._started = True
        message = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 1},
        }
        return [
            _frame("message_start", {"type": "message_start", "message": message}),
            _frame("ping", {"type": "ping"}),
        ]

    def feed(self, chunk: Mapping[str, Any]) -> list[bytes]:
        """Frames for one OpenAI chunk (a usage-only chunk with `choices: []` included)."""
        if self._finished:
            return []
        frames = self.start()
        usage = Usage.from_openai(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        choices = chunk.get("choices") or []
        choice = next((c for c in choices if isinstance(c, dict) and c.get("index", 0) == 0), None)
        if choice is None:
            return frames
        delta = choice.get("delta") or {}
        for text in (delta.get("content"), delta.get("refusal")):
            if isinstance(text, str) and text:
                frames += self._text(text)
        for call in delta.get("tool_calls") or []:
            if isinstance(call, dict):
                frames += self._tool_call(call)
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        return frames

    def finish(self, usage: Usage | None = None) -> list[bytes]:
        """Close the open block, then `message_delta` and `message_stop`; once only."""
        if self._finished:
            return []
        frames = self.start()
        frames += self._close()
        self._finished = True
        usage = usage or self.usage
        delta_usage: dict[str, int] = {"output_tokens": usage.output_tokens if usage else 0}
        if usage is not None:
            anthropic_usage = _usage_dict(usage)
            delta_usage["input_tokens"] = anthropic_usage["input_tokens"]
            delta_usage["cache_read_input_tokens"] = anthropic_usage["cache_read_input_tokens"]
            delta_usage["cache_creation_input_tokens"] = anthropic_usage[
                "cache_creation_input_tokens"
            ]
        stop_reason = stop_reason_from_openai(self.finish_reason, used_tools=self._used_tools)
        frames.append(
            _frame(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": delta_usage,
                },
            )
        )
        frames.append(_frame("message_stop", {"type": "message_stop"}))
        return frames

    def error(self, err: ATPError) -> bytes:
        """An Anthropic `error` event for a failure mid-stream; nothing follows it."""
        self._finished = True
        err_type = anthropic_error_body(err, None)["error"]["type"]
        return _frame(
            "error", {"type": "error", "error": {"type": err_type, "message": err.message}}
        )

    # -- blocks ------------------------------------------------------------------------
    def _open_block(self, kind: str, block: dict[str, Any]) -> bytes:
        self._open = kind
        return _frame(
            "content_block_start",
            {"type": "content_block_start", "index": self._next_index, "content_block": block},
        )

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return _frame(
            "content_block_delta",
            {"type": "content_block_delta", "index": self._next_index, "delta": delta},
        )

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        frame = _frame(
            "content_block_stop", {"type": "content_block_stop", "index": self._next_index}
        )
        if self._open_tool is not None:
            self._closed_tools.add(self._open_tool)
        self._open = None
        self._open_tool = None
        self._next_index += 1
        return [frame]

    def _text(self, text: str) -> list[bytes]:
        frames: list[bytes] = []
        if self._open != "text":
            frames += self._close()
            frames.append(self._open_block("text", {"type": "text", "text": ""}))
        frames.append(self._delta({"type": "text_delta", "text": text}))
        return frames

    def _tool_call(self, call: Mapping[str, Any]) -> list[bytes]:
        tool_index = call.get("index", 0)
        # A fragment for a call whose block is already closed cannot be placed: Anthropic
        # blocks never reopen. OpenAI streams each call contiguously, so this stays rare.
        if tool_index in self._closed_tools:
            return []
        function = call.get("function") or {}
        frames: list[bytes] = []
        if self._open != "tool_use" or self._open_tool != tool_index:
            frames += self._close()
            block = {
                "type": "tool_use",
                "id": call.get("id") or _new_tool_id(),
                "name": function.get("name") or "",
                "input": {},
            }
            frames.append(self._open_block("tool_use", block))
            self._open_tool = tool_index
            self._used_tools = True
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            frames.append(self._delta({"type": "input_json_delta", "partial_json": arguments}))
        return frames
