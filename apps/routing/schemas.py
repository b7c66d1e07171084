"""Validation of /v1 request bodies in OpenAI's shape; the first bad field is named.

Validation checks what would otherwise fail later or upstream with a less useful
message; fields ATP does not know are passed through to OpenAI-shaped upstreams as
they are, so new OpenAI parameters keep working.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from atp_site.lib.errors import InvalidRequest
from atp_site.lib.identifiers import control_free

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
PART_TYPES = frozenset({"text", "image_url", "input_audio", "file", "refusal"})
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def _bad(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# Deepest nesting a body may have. orjson parses up to 1,024 levels but serialises only 254,
# and every later step serialises the body (token counts, upstream calls, cache keys,
# stored bodies); no real request comes near this.
MAX_DEPTH = 128


def _deeper_than(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def parse_json_object(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise InvalidRequest("The request body is empty; send a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "We could not parse the JSON body of your request: it is not valid JSON.",
            code="invalid_json",
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    if nested_too_deep(raw, body):
        raise InvalidRequest(
            f"The request body is nested more than {MAX_DEPTH} levels deep.",
            code="nested_too_deep",
        )
    return body


def nested_too_deep(raw: bytes | str, value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether `value`, parsed from `raw`, nests deeper than `limit`.

    A value cannot be nested deeper than it has brackets: counting them (C speed) spares
    nearly every request the walk.
    """
    open_brackets = ("{", "[") if isinstance(raw, str) else (b"{", b"[")
    if raw.count(open_brackets[0]) + raw.count(open_brackets[1]) <= limit:
        return False
    return _deeper_than(value, limit)


def _number(body: dict, name: str, lo: float, hi: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if not _is_number(value) or not lo <= value <= hi:
        raise _bad(name, f"'{name}' must be a number between {lo:g} and {hi:g}.")


def _integer(body: dict, name: str, lo: int, hi: int | None = None) -> None:
    value = body.get(name)
    if value is None:
        return
    if not _is_int(value) or value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"of at least {lo}"
        raise _bad(name, f"'{name}' must be an integer {bound}.")


def _boolean(body: dict, name: str) -> None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise _bad(name, f"'{name}' must be true or false.")


def no_control_characters(value: str, param: str) -> str:
    """`value`, when it holds no control character (atp_site.lib.identifiers)."""
    if not control_free(value):
        raise _bad(param, f"'{param}' must not contain control characters.")
    return value


def _identifier(body: dict, name: str) -> None:
    """An optional string naming something (a user, an id): no control characters."""
    value = body.get(name)
    if value is None:
        return
    if not isinstance(value, str):
        raise _bad(name, f"'{name}' must be a string.")
    no_control_characters(value, name)


def require_model(body: dict) -> str:
    model = body.get("model")
    if model is None:
        raise _bad("model", "You must provide a model parameter.")
    if not isinstance(model, str) or not model.strip():
        raise _bad("model", "'model' must be a non-empty string.")
    return no_control_characters(model, "model")


def _content_parts(parts: list, where: str) -> None:
    if not parts:
        raise _bad(where, f"'{where}' must not be an empty array.")
    for j, part in enumerate(parts):
        here = f"{where}[{j}]"
        if not isinstance(part, dict):
            raise _bad(here, f"'{here}' must be an object.")
        kind = part.get("type")
        if kind not in PART_TYPES:
            raise _bad(
                f"{here}.type",
                f"'{here}.type' must be one of {', '.join(sorted(PART_TYPES))}.",
            )
        if kind == "text" and not isinstance(part.get("text"), str):
            raise _bad(f"{here}.text", f"'{here}.text' must be a string.")
        if kind == "image_url":
            image = part.get("image_url")
            if not isinstance(image, dict) or not isinstance(image.get("url"), str):
                raise _bad(f"{here}.image_url.url", f"'{here}.image_url.url' must be a string.")


def _tool_calls(calls: Any, where: str) -> None:
    if not isinstance(calls, list):
        raise _bad(where, f"'{where}' must be an array.")
    for j, call in enumerate(calls):
        here = f"{where}[{j}]"
        if not isinstance(call, dict) or not isinstance(call.get("id"), str):
            raise _bad(f"{here}.id", f"'{here}.id' must be a string.")
        fn = call.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise _bad(f"{here}.function.name", f"'{here}.function.name' must be a string.")
        if not isinstance(fn.get("arguments", ""), str):
            raise _bad(
                f"{here}.function.arguments", f"'{here}.function.arguments' must be a string."
            )


def _messages(messages: Any) -> None:
    if messages is None:
        raise _bad("messages", "You must provide a messages parameter.")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages", "'messages' must be a non-empty array.")
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise _bad(where, f"'{where}' must be an object.")
        role = msg.get("role")
        if role not in ROLES:
            raise _bad(
                f"{where}.role", f"'{where}.role' must be one of {', '.join(sorted(ROLES))}."
            )
        content = msg.get("content")
        if content is None:
            if role != "assistant" or not (msg.get("tool_calls") or msg.get("function_call")):
                raise _bad(f"{where}.content", f"'{where}.content' is required.")
        elif isinstance(content, list):
            _content_parts(content, f"{where}.content")
        elif not isinstance(content, str):
            raise _bad(f"{where}.content", f"'{where}.content' must be a string or an array.")
        if role == "tool" and not isinstance(msg.get("tool_call_id"), str):
            raise _bad(
                f"{where}.tool_call_id", f"'{where}.tool_call_id' is required for tool messages."
            )
        if msg.get("tool_calls") is not None:
            _tool_calls(msg["tool_calls"], f"{where}.tool_calls")


def _tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise _bad("tools", "'tools' must be an array.")
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise _bad(f"{where}.type", f"'{where}.type' must be 'function'.")
        fn = tool.get("function")
        if not isinstance(fn, dict):
            raise _bad(f"{where}.function", f"'{where}.function' must be an object.")
        name = fn.get("name")
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            raise _bad(
                f"{where}.function.name",
                f"'{where}.function.name' must be 1-64 letters, digits, underscores or dashes.",
            )
        params = fn.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise _bad(
                f"{where}.function.parameters", f"'{where}.function.parameters' must be an object."
            )


def _tool_choice(choice: Any) -> None:
    if choice is None or choice in ("none", "auto", "required"):
        return
    if isinstance(choice, dict) and isinstance((choice.get("function") or {}).get("name"), str):
        return
    raise _bad(
        "tool_choice",
        "'tool_choice' must be 'none', 'auto', 'required' or "
        '{"type": "function", "function": {"name": ...}}.',
    )


def _response_format(fmt: Any) -> None:
    if fmt is None:
        return
    if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
        raise _bad(
            "response_format.type",
            "'response_format.type' must be 'text', 'json_object' or 'json_schema'.",
        )
    if fmt["type"] == "json_schema":
        schema = fmt.get("json_schema")
        if not isinstance(schema, dict) or not isinstance(schema.get("name"), str):
            raise _bad(
                "response_format.json_schema.name",
                "'response_format.json_schema.name' is required.",
            )


def _stop(stop: Any) -> None:
    if stop is None or isinstance(stop, str):
        return
    if isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop):
        return
    raise _bad("stop", "'stop' must be a string or an array of up to 4 strings.")


def _text_size(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    size = 0
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    size += len(text)
                elif part.get("type") == "tool_result":
                    size += _text_size(part.get("content"))
    return size


def chat_input_limits(body: dict[str, Any]) -> None:
    """The input limits of a chat request, in OpenAI's or Anthropic's shape (the settings
    ATP_MAX_MESSAGES, ATP_MAX_MESSAGE_CHARS and ATP_MAX_TOOLS): a 400 naming the first
    parameter over its limit."""
    from django.conf import settings

    messages = body.get("messages")
    if isinstance(messages, list):
        most = settings.ATP_MAX_MESSAGES
        if len(messages) > most:
            raise _bad(
                "messages",
                f"'messages' has {len(messages)} items; at most {most} are allowed.",
            )
        longest = settings.ATP_MAX_MESSAGE_CHARS
        for i, message in enumerate(messages):
            if isinstance(message, dict):
                size = _text_size(message.get("content"))
                if size > longest:
                    raise _bad(
                        f"messages[{i}].content",
                        f"'messages[{i}].content' has {size} characters; at most {longest} "
                        "are allowed per message.",
                    )
    tools = body.get("tools")
    if isinstance(tools, list) and len(tools) > settings.ATP_MAX_TOOLS:
        raise _bad(
            "tools",
            f"'tools' has {len(tools)} items; at most {settings.ATP_MAX_TOOLS} are allowed.",
        )


def validate_chat(body: dict[str, Any]) -> str:
    """Validate a chat completion request in place; return its model name."""
    model = require_model(body)
    _messages(body.get("messages"))
    chat_input_limits(body)
    _boolean(body, "stream")
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise _bad("stream_options", "'stream_options' must be an object.")
        if not body.get("stream"):
            raise _bad("stream_options", "'stream_options' is only allowed when 'stream' is true.")
        _boolean(options, "include_usage")
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    _number(body, "presence_penalty", -2, 2)
    _number(body, "frequency_penalty", -2, 2)
    _integer(body, "n", 1, 128)
    _integer(body, "max_tokens", 1)
    _integer(body, "max_completion_tokens", 1)
    _integer(body, "top_logprobs", 0, 20)
    _boolean(body, "logprobs")
    _boolean(body, "parallel_tool_calls")
    _identifier(body, "user")
    seed = body.get("seed")
    if seed is not None and not _is_int(seed):
        raise _bad("seed", "'seed' must be an integer.")
    _stop(body.get("stop"))
    _tools(body.get("tools"))
    _tool_choice(body.get("tool_choice"))
    _response_format(body.get("response_format"))
    atp = body.get("atp")
    if atp is not None and not isinstance(atp, dict):
        raise _bad("atp", "'atp' must be an object.")
    return model


def validate_embeddings(body: dict[str, Any]) -> str:
    model = require_model(body)
    value = body.get("input")
    if value is None:
        raise _bad("input", "You must provide an input parameter.")
    ok = (isinstance(value, str) and value != "") or (
        isinstance(value, list)
        and value
        and (
            all(isinstance(v, str) and v != "" for v in value)
            or all(_is_int(v) for v in value)
            or all(isinstance(v, list) and v and all(_is_int(t) for t in v) for v in value)
        )
    )
    if not ok:
        raise _bad(
            "input",
            "'input' must be a non-empty string, an array of non-empty strings, "
            "or an array of token arrays.",
        )
    from django.conf import settings

    inputs = value if isinstance(value, list) else [value]
    if len(inputs) > settings.ATP_MAX_EMBEDDING_INPUTS:
        raise _bad(
            "input",
            f"'input' has {len(inputs)} items; at most {settings.ATP_MAX_EMBEDDING_INPUTS} "
            "are allowed.",
        )
    longest = settings.ATP_MAX_MESSAGE_CHARS
    for i, item in enumerate(inputs):
        if isinstance(item, str) and len(item) > longest:
            where = f"input[{i}]" if isinstance(value, list) else "input"
            raise _bad(
                where, f"'{where}' has {len(item)} characters; at most {longest} are allowed."
            )
    fmt = body.get("encoding_format")
    if fmt is not None and fmt not in ("float", "base64"):
        raise _bad("encoding_format", "'encoding_format' must be 'float' or 'base64'.")
    _integer(body, "dimensions", 1)
    _identifier(body, "user")
    return model
