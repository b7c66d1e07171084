"""The Google Gemini adapter: OpenAI chat and embeddings requests to the Gemini API.

References: https://ai.google.dev/api/generate-content and
https://ai.google.dev/api/embeddings.

Translation notes, where the two protocols do not line up:
- System (and developer) messages become `systemInstruction` parts; `assistant` is Gemini's
  `model` role; consecutive contents of the same role are merged.
- `tool` messages become `functionResponse` parts in a user turn. Gemini names the function
  rather than the call, so the name is looked up from the earlier assistant tool call with
  the same id. A result that is a JSON object is sent as the response; anything else is
  wrapped as `{"output": ...}`, as the reference recommends.
- Gemini gives function calls no ids; they are numbered `call_<n>` per answer. A call's
  `thoughtSignature` travels in the tool call's `extra_content.google.thought_signature`
  (Google's own OpenAI-compatible convention) so it can be sent back on the next turn.
- `response_format` uses `responseMimeType: application/json`; a `json_schema` is sent as
  `responseSchema` with the JSON Schema keywords Gemini's OpenAPI subset rejects removed
  (`$ref`s into `$defs` are inlined first).
- A prompt blocked by safety filters (`promptFeedback.blockReason`, no candidates) raises a
  400 `content_filter` error; a candidate stopped for safety ends with `content_filter`.
- `thoughtsTokenCount` counts as output and as reasoning; `cachedContentTokenCount` is
  reported as cached input (it is already part of `promptTokenCount`).
- Gemini answers an invalid API key with HTTP 400 `API_KEY_INVALID`; that is reported as an
  authentication failure like a 401.
- `n` becomes `candidateCount`; `logprobs` is refused; `user` and `logit_bias` are ignored.

`Target.options` may carry `headers` (extra request headers).
"""

from __future__ import annotations

import base64
import mimetypes
import struct
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import orjson

from apps.providers.adapters.base import (
    Adapter,
    ChatResult,
    EmbeddingsResult,
    Target,
    UpstreamCall,
    Usage,
    error_from_status,
)
from apps.providers.exceptions import UnsupportedFeature, UpstreamError
from atp_site.lib.errors import InvalidRequest

_FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}

# JSON Schema keywords that Gemini's `Schema` object does not have; sending them is a 400
# ("Unknown name ... Cannot find field").
_SCHEMA_KEYS_REJECTED = {
    "$schema",
    "$id",
    "$defs",
    "definitions",
    "$comment",
    "additionalProperties",
    "unevaluatedProperties",
    "patternProperties",
    "dependentRequired",
    "dependentSchemas",
    "const",
    "examples",
    "strict",
    "allOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "uniqueItems",
    "multipleOf",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "readOnly",
    "writeOnly",
    "deprecated",
    "contentEncoding",
    "contentMediaType",
}


class GeminiAdapter(Adapter):
    """Speaks the Gemini API (`generativelanguage.googleapis.com`)."""

    kind = "gemini"

    async def chat(self, target: Target, body: dict[str, Any]) -> ChatResult:
        payload = build_generate_request(target, body)
        url = f"{model_url(target)}:generateContent"
        with self._auth_errors(target):
            async with UpstreamCall(
                self, target, url, json_body=payload, headers=_headers(target)
            ) as call:
                data = await call.json()
        if not isinstance(data, dict):
            raise UpstreamError(f"Provider '{target.provider_name}' sent an unexpected answer.")
        return parse_generate_response(data, target)

    async def chat_stream(
        self, target: Target, body: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        payload = build_generate_request(target, body)
        url = f"{model_url(target)}:streamGenerateContent?alt=sse"
        with self._auth_errors(target):
            async with UpstreamCall(
                self, target, url, json_body=payload, headers=_headers(target)
            ) as call:
                stream = _StreamState(target)
                async for _event, data in call.sse_events():
                    try:
                        obj = orjson.loads(data)
                    except orjson.JSONDecodeError:
                        raise UpstreamError(
                            f"Provider '{target.provider_name}' sent a stream event that is "
                            "not JSON."
                        ) from None
                    if not isinstance(obj, dict):
                        continue
                    if isinstance(obj.get("error"), dict):
                        status = int(obj["error"].get("code") or 500)
                        raise error_from_status(self, target, status, obj)
                    for chunk in stream.feed(obj):
                        yield chunk
        if not stream.finished:
            raise UpstreamError(
                f"Provider '{target.provider_name}' ended the stream before it was complete."
            )
        if stream.usage is not None:
            yield stream.usage_chunk(stream.usage)

    async def embeddings(self, target: Target, body: dict[str, Any]) -> EmbeddingsResult:
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs:
            raise InvalidRequest("input must be a string or a non-empty list.", param="input")
        if not all(isinstance(text, str) for text in inputs):
            raise UnsupportedFeature(
                "Gemini embeds text only; token arrays cannot be sent.", param="input"
            )
        model = f"models/{_model_name(target)}"
        requests: list[dict[str, Any]] = []
        for text in inputs:
            request: dict[str, Any] = {"model": model, "content": {"parts": [{"text": text}]}}
            if body.get("dimensions"):
                request["outputDimensionality"] = int(body["dimensions"])
            requests.append(request)
        url = f"{model_url(target)}:batchEmbedContents"
        with self._auth_errors(target):
            async with UpstreamCall(
                self, target, url, json_body={"requests": requests}, headers=_headers(target)
            ) as call:
                data = await call.json()
        embeddings = data.get("embeddings") if isinstance(data, dict) else None
        if not isinstance(embeddings, list) or len(embeddings) != len(inputs):
            raise UpstreamError(
                f"Provider '{target.provider_name}' sent an unexpected embeddings answer."
            )
        as_base64 = body.get("encoding_format") == "base64"
        items = []
        for index, embedding in enumerate(embeddings):
            values = [float(v) for v in (embedding or {}).get("values") or []]
            vector: Any = _base64_floats(values) if as_base64 else values
            items.append({"object": "embedding", "index": index, "embedding": vector})
        response: dict[str, Any] = {"object": "list", "data": items, "model": target.upstream_model}
        usage = None
        metadata = data.get("usageMetadata") if isinstance(data, dict) else None
        if isinstance(metadata, Mapping) and metadata.get("promptTokenCount") is not None:
            usage = Usage(input_tokens=int(metadata["promptTokenCount"]))
            response["usage"] = {
                "prompt_tokens": usage.input_tokens,
                "total_tokens": usage.input_tokens,
            }
        return EmbeddingsResult(response=response, usage=usage)

    @contextmanager
    def _auth_errors(self, target: Target) -> Iterator[None]:
        # An invalid key is a 400 from Gemini, but it is ATP's credential that is wrong,
        # not the caller's request.
        try:
            yield
        except UpstreamError as exc:
            if exc.upstream_status == 400 and "API_KEY_INVALID" in exc.message:
                raise error_from_status(self, target, 401, None) from None
            raise

    def error_message(self, payload: Any) -> str:
        # Google's envelope: {"error": {"code", "message", "status", "details"}}; streamed
        # endpoints may wrap it in a one-element list.
        if isinstance(payload, list) and payload:
            payload = payload[0]
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            err = payload["error"]
            message = str(err.get("message") or err.get("status") or "")
            reasons = [
                d.get("reason")
                for d in err.get("details") or []
                if isinstance(d, dict) and isinstance(d.get("reason"), str)
            ]
            if reasons:
                message = f"{message} ({', '.join(reasons)})"
            return message
        return super().error_message(payload)


# -- request -----------------------------------------------------------------------------


def _model_name(target: Target) -> str:
    return target.upstream_model.removeprefix("models/")


def model_url(target: Target) -> str:
    base = target.base_url.rstrip("/")
    base = base.removesuffix("/v1beta")
    return f"{base}/v1beta/models/{_model_name(target)}"


def _headers(target: Target) -> dict[str, str]:
    headers = {"x-goog-api-key": target.api_key}
    extra = (target.options or {}).get("headers")
    if isinstance(extra, Mapping):
        headers.update({str(k): str(v) for k, v in extra.items()})
    return headers


def build_generate_request(target: Target, body: Mapping[str, Any]) -> dict[str, Any]:
    """Translate an OpenAI chat request into a Gemini `GenerateContentRequest`."""
    if body.get("logprobs"):
        raise UnsupportedFeature("Gemini logprobs are not supported by ATP.", param="logprobs")
    system, contents = _translate_messages(body.get("messages") or [])
    payload: dict[str, Any] = {"contents": contents}
    if system:
        payload["systemInstruction"] = {"parts": system}

    config: dict[str, Any] = {}
    if body.get("temperature") is not None:
        config["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        config["topP"] = body["top_p"]
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    max_tokens = max_tokens or target.max_output_tokens
    if max_tokens:
        config["maxOutputTokens"] = int(max_tokens)
    stop = body.get("stop")
    if isinstance(stop, str):
        config["stopSequences"] = [stop]
    elif stop:
        config["stopSequences"] = list(stop)
    if body.get("n") is not None and body["n"] != 1:
        config["candidateCount"] = int(body["n"])
    if body.get("seed") is not None:
        config["seed"] = int(body["seed"])
    if body.get("presence_penalty") is not None:
        config["presencePenalty"] = body["presence_penalty"]
    if body.get("frequency_penalty") is not None:
        config["frequencyPenalty"] = body["frequency_penalty"]
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping):
        if response_format.get("type") in ("json_object", "json_schema"):
            config["responseMimeType"] = "application/json"
        if response_format.get("type") == "json_schema":
            spec = response_format.get("json_schema") or {}
            schema = spec.get("schema") if isinstance(spec, Mapping) else None
            if isinstance(schema, Mapping):
                config["responseSchema"] = gemini_schema(schema)
    if config:
        payload["generationConfig"] = config

    tools = body.get("tools")
    if tools:
        declarations = []
        for k, tool in enumerate(tools):
            if tool.get("type") != "function":
                raise UnsupportedFeature(
                    f"Tools of type '{tool.get('type')}' cannot be sent to Gemini.",
                    param=f"tools[{k}].type",
                )
            function = tool.get("function") or {}
            declaration: dict[str, Any] = {"name": function.get("name")}
            if function.get("description"):
                declaration["description"] = function["description"]
            parameters = function.get("parameters")
            # Gemini rejects an object schema without properties; no parameters means none.
            if isinstance(parameters, Mapping) and parameters.get("properties"):
                declaration["parameters"] = gemini_schema(parameters)
            declarations.append(declaration)
        payload["tools"] = [{"functionDeclarations": declarations}]
        tool_config = _tool_config(body.get("tool_choice"))
        if tool_config:
            payload["toolConfig"] = {"functionCallingConfig": tool_config}
    return payload


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice == "auto":
        return {"mode": "AUTO"}
    if choice == "required":
        return {"mode": "ANY"}
    if choice == "none":
        return {"mode": "NONE"}
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        return {"mode": "ANY", "allowedFunctionNames": [name]}
    raise UnsupportedFeature("This tool_choice cannot be sent to Gemini.", param="tool_choice")


def gemini_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON Schema reduced to what Gemini's OpenAPI-subset `Schema` accepts."""
    defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    return _clean_schema(schema, defs, depth=0)


def _clean_schema(node: Any, defs: Mapping[str, Any], depth: int) -> Any:
    if isinstance(node, list):
        return [_clean_schema(item, defs, depth) for item in node]
    if not isinstance(node, Mapping):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1])
        # Recursive schemas cannot be inlined; past a few levels they become open objects.
        if target is None or depth > 8:
            return {"type": "object"}
        return _clean_schema(target, defs, depth + 1)
    cleaned: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SCHEMA_KEYS_REJECTED or key == "$ref":
            continue
        if key == "properties" and isinstance(value, Mapping):
            cleaned[key] = {name: _clean_schema(v, defs, depth) for name, v in value.items()}
        elif key == "type" and isinstance(value, list):
            # ["string", "null"] is expressed as a type plus `nullable`.
            kinds = [v for v in value if v != "null"]
            cleaned["type"] = kinds[0] if kinds else "string"
            if "null" in value:
                cleaned["nullable"] = True
        else:
            cleaned[key] = _clean_schema(value, defs, depth)
    if "const" in node and "enum" not in cleaned:
        cleaned["enum"] = [node["const"]]
    if cleaned.get("type") == "string" and cleaned.get("format") not in (None, "enum", "date-time"):
        # Gemini only knows the `enum` and `date-time` string formats and rejects others.
        del cleaned["format"]
    return cleaned


def _translate_messages(
    messages: list[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    tool_names: dict[str, str] = {}
    for i, message in enumerate(messages):
        role = message.get("role")
        if role in ("system", "developer"):
            text = _text_of(message.get("content"))
            if text:
                system.append({"text": text})
            continue
        if role == "user":
            parts = _user_parts(message.get("content"), f"messages[{i}].content")
            content_role = "user"
        elif role == "assistant":
            parts = _assistant_parts(message, i, tool_names)
            content_role = "model"
        elif role == "tool":
            call_id = str(message.get("tool_call_id") or "")
            name = tool_names.get(call_id) or message.get("name")
            if not name:
                raise InvalidRequest(
                    f"No earlier assistant tool call has the id '{call_id}'.",
                    param=f"messages[{i}].tool_call_id",
                )
            parts = [
                {
                    "functionResponse": {
                        "name": name,
                        "response": _function_response(message.get("content")),
                    }
                }
            ]
            content_role = "user"
        else:
            raise UnsupportedFeature(
                f"Messages with role '{role}' cannot be sent to Gemini.",
                param=f"messages[{i}].role",
            )
        if not parts:
            continue
        if contents and contents[-1]["role"] == content_role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": content_role, "parts": parts})
    return system, contents


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(
        str(part.get("text") or "")
        for part in content
        if isinstance(part, Mapping) and part.get("type") == "text"
    )


def _function_response(content: Any) -> dict[str, Any]:
    text = _text_of(content)
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"output": text}
    return value if isinstance(value, dict) else {"output": value}


def _parse_data_url(url: str) -> tuple[str, str] | None:
    if not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        return None
    return header.removesuffix(";base64").split(";")[0] or "application/octet-stream", data


def _user_parts(content: Any, param: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content or []):
        kind = part.get("type")
        where = f"{param}[{j}]"
        if kind == "text":
            if part.get("text"):
                parts.append({"text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url") or {}
            url = str((image.get("url") if isinstance(image, Mapping) else image) or "")
            parts.append(_media_part(url, f"{where}.image_url.url", default_type="image/jpeg"))
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            fmt = str(audio.get("format") or "wav")
            parts.append({"inlineData": {"mimeType": f"audio/{fmt}", "data": audio.get("data")}})
        elif kind == "file":
            file = part.get("file") or {}
            parts.append(_media_part(str(file.get("file_data") or ""), f"{where}.file"))
        else:
            raise UnsupportedFeature(
                f"Content parts of type '{kind}' cannot be sent to Gemini.", param=f"{where}.type"
            )
    return parts


def _media_part(url: str, param: str, default_type: str = "") -> dict[str, Any]:
    parsed = _parse_data_url(url)
    if parsed:
        return {"inlineData": {"mimeType": parsed[0], "data": parsed[1]}}
    if url.startswith(("http://", "https://", "gs://")):
        guessed = mimetypes.guess_type(url.split("?", 1)[0])[0]
        return {"fileData": {"mimeType": guessed or default_type, "fileUri": url}}
    raise InvalidRequest("Expected an http(s) URL or a base64 data URL.", param=param)


def _assistant_parts(
    message: Mapping[str, Any], i: int, tool_names: dict[str, str]
) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    text = _text_of(message.get("content"))
    if text:
        parts.append({"text": text})
    for j, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        name = str(function.get("name") or "")
        tool_names[str(call.get("id") or "")] = name
        raw = function.get("arguments") or "{}"
        try:
            args = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
        except orjson.JSONDecodeError:
            args = None
        if not isinstance(args, dict):
            raise InvalidRequest(
                "Tool call arguments must be a JSON object.",
                param=f"messages[{i}].tool_calls[{j}].function.arguments",
            )
        part: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
        signature = ((call.get("extra_content") or {}).get("google") or {}).get("thought_signature")
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


# -- response ----------------------------------------------------------------------------


def usage_from_gemini(metadata: Mapping[str, Any] | None) -> Usage | None:
    """`promptTokenCount` already includes cached tokens; thoughts are billed as output."""
    if not metadata:
        return None
    thoughts = int(metadata.get("thoughtsTokenCount") or 0)
    return Usage(
        input_tokens=int(metadata.get("promptTokenCount") or 0)
        + int(metadata.get("toolUsePromptTokenCount") or 0),
        output_tokens=int(metadata.get("candidatesTokenCount") or 0) + thoughts,
        cached_input_tokens=int(metadata.get("cachedContentTokenCount") or 0),
        reasoning_tokens=thoughts,
    )


def _blocked_error(target: Target, feedback: Mapping[str, Any]) -> UpstreamError:
    reason = feedback.get("blockReason") or "BLOCKED"
    return UpstreamError(
        f"Provider '{target.provider_name}' blocked the prompt ({reason}).",
        status=400,
        type="invalid_request_error",
        code="content_filter",
        retryable=False,
    )


def _tool_call(call: Mapping[str, Any], n: int, part: Mapping[str, Any]) -> dict[str, Any]:
    tool_call: dict[str, Any] = {
        "id": f"call_{n}",
        "type": "function",
        "function": {
            "name": call.get("name"),
            "arguments": orjson.dumps(call.get("args") or {}).decode(),
        },
    }
    if part.get("thoughtSignature"):
        tool_call["extra_content"] = {"google": {"thought_signature": part["thoughtSignature"]}}
    return tool_call


def _finish_reason(reason: str | None, has_tool_calls: bool) -> str:
    mapped = _FINISH_REASONS.get(str(reason), "stop")
    if has_tool_calls and mapped == "stop":
        return "tool_calls"
    return mapped


def parse_generate_response(data: Mapping[str, Any], target: Target) -> ChatResult:
    """Translate a Gemini `GenerateContentResponse` into an OpenAI `chat.completion`."""
    candidates = data.get("candidates") or []
    feedback = data.get("promptFeedback") or {}
    if not candidates and feedback.get("blockReason"):
        raise _blocked_error(target, feedback)
    choices = []
    n = 0
    for position, candidate in enumerate(candidates):
        texts: list[str] = []
        tool_calls: list[dict[str, Any]] = []
        for part in (candidate.get("content") or {}).get("parts") or []:
            if part.get("thought"):
                continue
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part.get("functionCall"), Mapping):
                tool_calls.append(_tool_call(part["functionCall"], n, part))
                n += 1
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(texts) if texts or not tool_calls else None,
            "refusal": None,
        }
        if tool_calls:
            message["tool_calls"] = tool_calls
        choices.append(
            {
                "index": int(candidate.get("index", position)),
                "message": message,
                "finish_reason": _finish_reason(candidate.get("finishReason"), bool(tool_calls)),
                "logprobs": None,
            }
        )
    usage = usage_from_gemini(data.get("usageMetadata"))
    response: dict[str, Any] = {
        "id": f"chatcmpl-{data.get('responseId') or uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": data.get("modelVersion") or target.upstream_model,
        "choices": choices,
    }
    if usage is not None:
        response["usage"] = usage.to_openai()
    return ChatResult(response=response, usage=usage)


class _StreamState:
    """Turns streamed `GenerateContentResponse`s into OpenAI chunks."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.model = target.upstream_model
        self.created = int(time.time())
        self.started: set[int] = set()
        self.tool_counts: dict[int, int] = {}
        self.finished = False
        self.usage: Usage | None = None

    def feed(self, obj: Mapping[str, Any]) -> list[dict[str, Any]]:
        candidates = obj.get("candidates") or []
        feedback = obj.get("promptFeedback") or {}
        if not candidates and feedback.get("blockReason"):
            raise _blocked_error(self.target, feedback)
        if not self.started and obj.get("responseId"):
            self.id = f"chatcmpl-{obj['responseId']}"
        self.model = obj.get("modelVersion") or self.model
        if obj.get("usageMetadata"):
            # Each event repeats the running totals; the last one is final.
            self.usage = usage_from_gemini(obj["usageMetadata"])
        chunks = []
        for position, candidate in enumerate(candidates):
            index = int(candidate.get("index", position))
            delta: dict[str, Any] = {}
            if index not in self.started:
                self.started.add(index)
                delta["role"] = "assistant"
            texts: list[str] = []
            calls: list[dict[str, Any]] = []
            for part in (candidate.get("content") or {}).get("parts") or []:
                if part.get("thought"):
                    continue
                if isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif isinstance(part.get("functionCall"), Mapping):
                    count = self.tool_counts.get(index, 0)
                    call = _tool_call(part["functionCall"], count, part)
                    calls.append({"index": count, **call})
                    self.tool_counts[index] = count + 1
            if texts or "role" in delta:
                delta["content"] = "".join(texts)
            if calls:
                delta["tool_calls"] = calls
            reason = candidate.get("finishReason")
            finish = None
            if reason:
                self.finished = True
                finish = _finish_reason(reason, index in self.tool_counts)
            if delta or finish:
                chunks.append(
                    self._chunk(
                        [
                            {
                                "index": index,
                                "delta": delta,
                                "finish_reason": finish,
                                "logprobs": None,
                            }
                        ]
                    )
                )
        return chunks

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }

    def usage_chunk(self, usage: Usage) -> dict[str, Any]:
        return {**self._chunk([]), "usage": usage.to_openai()}


def _base64_floats(values: list[float]) -> str:
    # OpenAI's base64 encoding is little-endian float32.
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
