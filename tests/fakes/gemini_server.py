"""A fake Gemini API on 127.0.0.1 that validates requests like the real one.

Use it inside a test's loop::

    async with FakeGemini() as fake:
        fake.enqueue(GeminiReply(text="Hi"))
        ... call fake.base_url ...

or from synchronous code and other processes::

    fake = FakeGemini()
    base_url = fake.start_in_thread()
    ...
    fake.stop()

It serves `models/{model}:generateContent`, `:streamGenerateContent` (`alt=sse`, or a JSON
array without it) and `:batchEmbedContents` under `/v1beta`. Each generate call takes the
next queued `GeminiReply` (thread-safe) or, when the queue is empty, a deterministic
default answer; embeddings are derived from a hash of each text.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.serving import LoopbackServer

API_KEY = "AIza-fake-gemini-key"

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_REQUEST_FIELDS = {
    "model",
    "contents",
    "tools",
    "toolConfig",
    "safetySettings",
    "systemInstruction",
    "generationConfig",
    "cachedContent",
}
_PART_DATA_FIELDS = {
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
}
_PART_FIELDS = _PART_DATA_FIELDS | {"thought", "thoughtSignature", "videoMetadata"}
_GENERATION_FIELDS = {
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "thinkingConfig",
    "mediaResolution",
}
_SCHEMA_FIELDS = {
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
}
_SCHEMA_TYPES = {"string", "number", "integer", "boolean", "array", "object"}
_STRUCT = "type.googleapis.com/google.protobuf.Struct"
_TYPE_ENUM = "type.googleapis.com/google.ai.generativelanguage.v1beta.Type"
_ALLOWED_NAMES = "tool_config.function_calling_config.allowed_function_names"
_FUNCTION_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$")


@dataclass
class GeminiReply:
    """One scripted answer. Fields left at their defaults give the default behaviour.

    - `text`: the answer text (default: "Echo: " + the last user text).
    - `function_calls`: `[{"name": ..., "args": {...}}]`, answered after the text;
      `thought_signature` is attached to the first of them.
    - `thought`: a thought-summary part placed first.
    - `finish_reason`: default `STOP`; `None` streams without any finish reason.
    - `block_reason`: block the prompt (`promptFeedback`, no candidates).
    - token counts: default derived from the request and answer sizes.
    - `status` != 200 answers an error in Google's shape (`error_message`, `details`,
      `retry_after` as the retry-after header).
    - `first_byte_delay`, `event_delay`, `break_after_events`: as their names say.
    """

    text: str | None = None
    function_calls: list[dict[str, Any]] = field(default_factory=list)
    thought: str | None = None
    thought_signature: str | None = None
    finish_reason: str | None = "STOP"
    block_reason: str | None = None
    prompt_tokens: int | None = None
    candidates_tokens: int | None = None
    thoughts_tokens: int = 0
    cached_tokens: int = 0
    status: int = 200
    error_message: str | None = None
    details: list[dict[str, Any]] | None = None
    retry_after: float | None = None
    first_byte_delay: float = 0.0
    event_delay: float = 0.0
    break_after_events: int | None = None


@dataclass
class RecordedRequest:
    """What the fake received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


class _Invalid(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _error(
    status: int,
    message: str,
    details: list[dict[str, Any]] | None = None,
    **headers: str,
) -> web.Response:
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": _STATUS_NAMES.get(status, "UNKNOWN"),
    }
    if details:
        error["details"] = details
    return web.json_response({"error": error}, status=status, headers=headers)


def _unknown(name: str, where: str) -> _Invalid:
    return _Invalid(
        f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': Cannot find field."
    )


class FakeGemini(LoopbackServer):
    """An aiohttp server speaking the Gemini API, scripted per test."""

    name = "fake Gemini server"

    def __init__(self, *, api_key: str = API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self._replies: deque[GeminiReply] = deque()
        self._lock = threading.Lock()
        self._counter = 0

    # -- scripting ---------------------------------------------------------------------
    def enqueue(self, *replies: GeminiReply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def enqueue_error(
        self, status: int, message: str = "error", *, retry_after: float | None = None
    ) -> None:
        self.enqueue(GeminiReply(status=status, error_message=message, retry_after=retry_after))

    def _next_reply(self) -> GeminiReply:
        with self._lock:
            self._counter += 1
            return self._replies.popleft() if self._replies else GeminiReply()

    # -- routes ------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1beta/models/{target}", self._dispatch)

    # -- handlers ----------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in request.headers.items()}
        query = dict(request.query)
        with self._lock:
            self.requests.append(
                RecordedRequest(request.method, request.path, query, headers, body)
            )

        model, _, method = request.match_info["target"].partition(":")
        if method not in ("generateContent", "streamGenerateContent", "batchEmbedContents"):
            return _error(404, f"Method not found: {method}")
        key = headers.get("x-goog-api-key") or query.get("key")
        if not key:
            return _error(
                403,
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
            )
        if key != self.api_key:
            return _error(
                400,
                "API key not valid. Please pass a valid API key.",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                    }
                ],
            )
        if not isinstance(body, dict):
            return _error(400, "Invalid JSON payload received.")
        if method == "batchEmbedContents":
            return self._embed(model, body)

        reply = self._next_reply()
        if reply.first_byte_delay:
            await asyncio.sleep(reply.first_byte_delay)
        if reply.status != 200:
            extra = {}
            if reply.retry_after is not None:
                extra["retry-after"] = f"{reply.retry_after:g}"
            return _error(
                reply.status, reply.error_message or "scripted error", reply.details, **extra
            )
        try:
            _validate_generate(body)
        except _Invalid as exc:
            return _error(400, exc.message)
        events = self._answer_events(model, body, reply, stream=method != "generateContent")
        if method == "generateContent":
            return web.json_response(events[0])
        if query.get("alt") != "sse":
            return web.json_response(events)
        return await self._stream(request, events, reply)

    async def _stream(
        self, request: web.Request, events: list[dict[str, Any]], reply: GeminiReply
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for count, event in enumerate(events):
            if reply.break_after_events is not None and count >= reply.break_after_events:
                # Drop the connection without finishing the chunked body.
                assert request.transport is not None
                request.transport.close()
                return response
            await response.write(f"data: {json.dumps(event)}\r\n\r\n".encode())
            if reply.event_delay:
                await asyncio.sleep(reply.event_delay)
        await response.write_eof()
        return response

    def _answer_events(
        self, model: str, body: dict[str, Any], reply: GeminiReply, *, stream: bool
    ) -> list[dict[str, Any]]:
        """The answer as one response (non-streamed) or as the list of streamed ones."""
        response_id = f"fake{self._counter:06d}"
        prompt_tokens = reply.prompt_tokens
        if prompt_tokens is None:
            prompt_tokens = max(1, len(json.dumps(body.get("contents"))) // 4)
        if reply.block_reason:
            return [
                {
                    "promptFeedback": {
                        "blockReason": reply.block_reason,
                        "safetyRatings": [
                            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}
                        ],
                    },
                    "usageMetadata": {
                        "promptTokenCount": prompt_tokens,
                        "totalTokenCount": prompt_tokens,
                    },
                    "modelVersion": model,
                    "responseId": response_id,
                }
            ]
        text = reply.text if reply.text is not None else f"Echo: {_last_user_text(body)}"
        candidates_tokens = reply.candidates_tokens
        if candidates_tokens is None:
            candidates_tokens = max(1, (len(text) + len(json.dumps(reply.function_calls))) // 4)
        usage: dict[str, Any] = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": candidates_tokens,
            "totalTokenCount": prompt_tokens + candidates_tokens + reply.thoughts_tokens,
        }
        if reply.thoughts_tokens:
            usage["thoughtsTokenCount"] = reply.thoughts_tokens
        if reply.cached_tokens:
            usage["cachedContentTokenCount"] = reply.cached_tokens

        # Each element is the parts of one event (the whole answer when not streaming).
        thought = [{"text": reply.thought, "thought": True}] if reply.thought else []
        calls = []
        for k, call in enumerate(reply.function_calls):
            part: dict[str, Any] = {
                "functionCall": {"name": call["name"], "args": call.get("args") or {}}
            }
            if k == 0 and reply.thought_signature:
                part["thoughtSignature"] = reply.thought_signature
            calls.append(part)
        if stream:
            pieces = [text[i : i + 6] for i in range(0, len(text), 6)]
            groups = ([thought] if thought else []) + [[{"text": p}] for p in pieces]
            if calls:
                groups.append(calls)
            groups = groups or [[]]
        else:
            groups = [thought + ([{"text": text}] if text else []) + calls]

        count = int((body.get("generationConfig") or {}).get("candidateCount") or 1)
        events = []
        for g, parts in enumerate(groups):
            last = g == len(groups) - 1
            candidates = []
            for index in range(count):
                candidate: dict[str, Any] = {"index": index}
                if parts:
                    candidate["content"] = {"role": "model", "parts": parts}
                if last and reply.finish_reason:
                    candidate["finishReason"] = reply.finish_reason
                candidates.append(candidate)
            event_usage = (
                usage
                if last
                else {
                    "promptTokenCount": prompt_tokens,
                    "totalTokenCount": prompt_tokens,
                }
            )
            events.append(
                {
                    "candidates": candidates,
                    "usageMetadata": event_usage,
                    "modelVersion": model,
                    "responseId": response_id,
                }
            )
        return events

    def _embed(self, model: str, body: dict[str, Any]) -> web.Response:
        extra = sorted(set(body) - {"requests"})
        if extra:
            return _error(400, str(_unknown(extra[0], "")))
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            return _error(400, "* BatchEmbedContentsRequest.requests: requests is required")
        embeddings = []
        for k, item in enumerate(requests):
            if not isinstance(item, dict):
                return _error(400, f"* requests[{k}]: must be an object")
            if item.get("model") != f"models/{model}":
                return _error(
                    400,
                    f"* BatchEmbedContentsRequest.requests[{k}].model: Model "
                    f"'{item.get('model')}' does not match the batch request model.",
                )
            parts = (item.get("content") or {}).get("parts")
            if (
                not isinstance(parts, list)
                or not parts
                or not all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in parts)
            ):
                return _error(400, f"* requests[{k}].content.parts: text parts are required")
            dims = int(item.get("outputDimensionality") or 8)
            text = "".join(p["text"] for p in parts)
            embeddings.append({"values": fake_embedding(text, dims)})
        return web.json_response({"embeddings": embeddings})


def fake_embedding(text: str, dims: int = 8) -> list[float]:
    """The deterministic vector the fake answers for `text`."""
    values: list[float] = []
    counter = 0
    while len(values) < dims:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values += [round(b / 127.5 - 1.0, 6) for b in digest]
        counter += 1
    return values[:dims]


def _last_user_text(body: dict[str, Any]) -> str:
    for content in reversed(body["contents"]):
        if content.get("role", "user") != "user":
            continue
        for part in reversed(content["parts"]):
            if isinstance(part.get("text"), str):
                return part["text"]
    return ""


# -- validation, following the real API's rules and messages ------------------------------


def _validate_generate(body: dict[str, Any]) -> None:
    for name in body:
        if name not in _REQUEST_FIELDS:
            raise _unknown(name, "")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise _Invalid("* GenerateContentRequest.contents: contents is not specified")
    previous_calls = 0
    for i, content in enumerate(contents):
        where = f"contents[{i}]"
        calls, responses = _validate_content(content, where, roles=("user", "model"))
        if responses:
            if responses != previous_calls:
                raise _Invalid(
                    "Please ensure that the number of function response parts is equal to the "
                    "number of function call parts of the function call turn."
                )
        elif previous_calls:
            raise _Invalid(
                "Please ensure that function call turn comes immediately after a user turn or "
                "after a function response turn."
            )
        previous_calls = calls
    system = body.get("systemInstruction")
    if system is not None:
        _validate_content(system, "system_instruction", roles=("user", "system"))
    _validate_generation_config(body.get("generationConfig"))
    _validate_tools(body.get("tools"), body.get("toolConfig"))


def _validate_content(content: Any, where: str, roles: tuple[str, ...]) -> tuple[int, int]:
    if not isinstance(content, dict):
        raise _Invalid(f"* {where}: must be an object")
    for name in content:
        if name not in ("role", "parts"):
            raise _unknown(name, where)
    role = content.get("role")
    if role is not None and role not in roles:
        raise _Invalid(f"Please use a valid role: {', '.join(roles)}.")
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        raise _Invalid(f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty.")
    calls = responses = 0
    for k, part in enumerate(parts):
        at = f"{where}.parts[{k}]"
        if not isinstance(part, dict):
            raise _Invalid(f"* {at}: must be an object")
        for name in part:
            if name not in _PART_FIELDS:
                raise _unknown(name, at)
        data = [name for name in part if name in _PART_DATA_FIELDS]
        if len(data) != 1:
            raise _Invalid(
                f"* GenerateContentRequest.{at}.data: required oneof field 'data' must have "
                "one initialized field"
            )
        kind = data[0]
        if kind == "text" and not isinstance(part["text"], str):
            raise _Invalid(f"* {at}.text: must be a string")
        if kind == "inlineData":
            blob = part["inlineData"]
            if not isinstance(blob, dict) or not blob.get("mimeType"):
                raise _Invalid(f"* {at}.inline_data.mime_type: mime_type is not specified")
            try:
                base64.b64decode(str(blob.get("data") or ""), validate=True)
            except binascii.Error:
                raise _Invalid(
                    f"Invalid value at '{at}.inline_data.data' (TYPE_BYTES), Base64 decoding failed"
                ) from None
            if not blob.get("data"):
                raise _Invalid(f"* {at}.inline_data.data: data is not specified")
        if kind == "fileData":
            file = part["fileData"]
            if not isinstance(file, dict) or not file.get("fileUri"):
                raise _Invalid(f"* {at}.file_data.file_uri: file_uri is not specified")
        if kind == "functionCall":
            call = part["functionCall"]
            if not isinstance(call, dict) or not _FUNCTION_NAME.match(str(call.get("name", ""))):
                raise _Invalid(f"* {at}.function_call.name: invalid function name")
            if "args" in call and not isinstance(call["args"], dict):
                raise _Invalid(f"Invalid value at '{at}.function_call.args' ({_STRUCT})")
            calls += 1
        if kind == "functionResponse":
            response = part["functionResponse"]
            if not isinstance(response, dict) or not response.get("name"):
                raise _Invalid(f"* {at}.function_response.name: name is not specified")
            if not isinstance(response.get("response"), dict):
                raise _Invalid(f"Invalid value at '{at}.function_response.response' ({_STRUCT})")
            responses += 1
    return calls, responses


def _validate_generation_config(config: Any) -> None:
    if config is None:
        return
    if not isinstance(config, dict):
        raise _Invalid("* generation_config: must be an object")
    for name in config:
        if name not in _GENERATION_FIELDS:
            raise _unknown(name, "generation_config")
    for name in ("temperature", "topP", "presencePenalty", "frequencyPenalty"):
        if name in config and not isinstance(config[name], int | float):
            raise _Invalid(f"Invalid value at 'generation_config.{name}' (TYPE_FLOAT)")
    for name in ("candidateCount", "maxOutputTokens", "seed", "topK"):
        if name in config and (not isinstance(config[name], int) or isinstance(config[name], bool)):
            raise _Invalid(f"Invalid value at 'generation_config.{name}' (TYPE_INT32)")
    stops = config.get("stopSequences")
    if stops is not None and (not isinstance(stops, list) or len(stops) > 5):
        raise _Invalid("* generation_config.stop_sequences: at most 5 stop sequences are allowed")
    if "responseSchema" in config:
        if config.get("responseMimeType") != "application/json":
            raise _Invalid(
                "* GenerateContentRequest.generation_config.response_mime_type: "
                "response_mime_type must be application/json when response_schema is set"
            )
        _validate_schema(config["responseSchema"], "generation_config.response_schema")


def _validate_schema(schema: Any, where: str) -> None:
    if not isinstance(schema, dict):
        raise _Invalid(f"Invalid value at '{where}'")
    for name in schema:
        if name not in _SCHEMA_FIELDS:
            raise _unknown(name, where)
    kind = schema.get("type")
    if kind is not None and str(kind).lower() not in _SCHEMA_TYPES:
        raise _Invalid(f"Invalid value at '{where}.type' ({_TYPE_ENUM}), {json.dumps(kind)}")
    if str(kind).lower() == "object" and "properties" in schema and not schema["properties"]:
        raise _Invalid(f"* {where}.properties: should be non-empty for OBJECT type")
    for name, value in (schema.get("properties") or {}).items():
        _validate_schema(value, f"{where}.properties[{name}].value")
    if "items" in schema:
        _validate_schema(schema["items"], f"{where}.items")
    for k, option in enumerate(schema.get("anyOf") or []):
        _validate_schema(option, f"{where}.any_of[{k}]")


def _validate_tools(tools: Any, tool_config: Any) -> None:
    names: set[str] = set()
    if tools is not None:
        if not isinstance(tools, list):
            raise _Invalid("* tools: must be a list")
        for t, tool in enumerate(tools):
            for name in tool:
                if name not in ("functionDeclarations", "googleSearch", "codeExecution"):
                    raise _unknown(name, f"tools[{t}]")
            for d, declaration in enumerate(tool.get("functionDeclarations") or []):
                where = f"tools[{t}].function_declarations[{d}]"
                for name in declaration:
                    if name not in ("name", "description", "parameters", "response"):
                        raise _unknown(name, where)
                if not _FUNCTION_NAME.match(str(declaration.get("name", ""))):
                    raise _Invalid(f"* GenerateContentRequest.{where}.name: Invalid function name.")
                if "parameters" in declaration:
                    _validate_schema(declaration["parameters"], f"{where}.parameters")
                names.add(declaration["name"])
    if tool_config is None:
        return
    for name in tool_config:
        if name != "functionCallingConfig":
            raise _unknown(name, "tool_config")
    config = tool_config["functionCallingConfig"]
    if config.get("mode") not in ("AUTO", "ANY", "NONE", "VALIDATED"):
        raise _Invalid("Invalid value at 'tool_config.function_calling_config.mode'")
    allowed = config.get("allowedFunctionNames")
    if allowed is not None:
        if config["mode"] != "ANY":
            raise _Invalid(
                f"* GenerateContentRequest.{_ALLOWED_NAMES}: "
                "allowed_function_names may only be set when mode is ANY."
            )
        for name in allowed:
            if name not in names:
                raise _Invalid(
                    f"* GenerateContentRequest.{_ALLOWED_NAMES}: function '{name}' is not declared."
                )
