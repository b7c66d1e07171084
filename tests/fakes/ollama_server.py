"""A fake Ollama server (native API) on 127.0.0.1 that validates requests like the real one.

Reference: https://github.com/ollama/ollama/blob/main/docs/api.md. Use it like `FakeOpenAI`::

    async with FakeOllama() as fake:
        fake.enqueue(Script(text="Hi", prompt_tokens=10, completion_tokens=2))
        ... call fake.base_url (no /v1 suffix) ...

or `FakeOllama().start_in_thread()` / `.stop()`. Scripts are the same `Script` objects;
`prompt_tokens`/`completion_tokens` become `prompt_eval_count`/`eval_count`, a script's
`finish_reason` becomes `done_reason`, and `include_usage=False` leaves the counts out.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.openai_server import (
    JSON,
    BadRequest,
    FakeUpstream,
    Script,
    count_words,
    fake_vector,
    json_response,
    plan_answer,
    split_into,
)

__all__ = ["FakeOllama", "Script"]

ROLES = ("system", "user", "assistant", "tool")

# Option names and the JSON types Ollama decodes them into (api.Options).
OPTION_TYPES: dict[str, tuple[type, ...]] = {
    "temperature": (int, float),
    "top_p": (int, float),
    "top_k": (int,),
    "num_predict": (int,),
    "num_ctx": (int,),
    "seed": (int,),
    "stop": (list,),
    "presence_penalty": (int, float),
    "frequency_penalty": (int, float),
    "repeat_penalty": (int, float),
    "min_p": (int, float),
}


def ollama_error(message: str) -> JSON:
    return {"error": message}


def _bad(message: str, status: int = 400) -> BadRequest:
    return BadRequest(ollama_error(message), status)


def _go_type(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    return "object"


def _unmarshal_error(value: Any, field: str, go_type: str) -> BadRequest:
    # Ollama reports JSON decoding failures with Go's encoding/json wording.
    return _bad(
        f"json: cannot unmarshal {_go_type(value)} into Go struct field {field} of type {go_type}"
    )


def validate_chat(body: Any) -> None:
    """Refuse what Ollama's `/api/chat` refuses, with its messages."""
    if not isinstance(body, dict):
        raise _bad("invalid character looking for beginning of value")
    model = body.get("model")
    if not model:
        raise _bad("model is required")
    if not isinstance(model, str):
        raise _unmarshal_error(model, "ChatRequest.model", "string")
    messages = body.get("messages")
    if messages is None:
        messages = []
    if not isinstance(messages, list):
        raise _unmarshal_error(messages, "ChatRequest.messages", "[]api.Message")
    for message in messages:
        if not isinstance(message, dict):
            raise _unmarshal_error(message, "ChatRequest.messages", "api.Message")
        role = message.get("role")
        if role not in ROLES:
            raise _bad(f"invalid role: {role!r}")
        content = message.get("content", "")
        if not isinstance(content, str):
            raise _unmarshal_error(content, "ChatRequest.messages.content", "string")
        images = message.get("images")
        if images is not None:
            if not isinstance(images, list):
                raise _unmarshal_error(images, "ChatRequest.messages.images", "[]api.ImageData")
            for image in images:
                if not isinstance(image, str):
                    raise _unmarshal_error(image, "ChatRequest.messages.images", "api.ImageData")
                try:
                    base64.b64decode(image, validate=True)
                except (binascii.Error, ValueError):
                    raise _bad("illegal base64 data at input byte 0") from None
        for call in message.get("tool_calls") or []:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict):
                raise _unmarshal_error(call, "ChatRequest.messages.tool_calls", "api.ToolCall")
            arguments = function.get("arguments")
            if not isinstance(arguments, dict):
                raise _unmarshal_error(
                    arguments,
                    "ToolCallFunction.messages.tool_calls.function.arguments",
                    "api.ToolCallFunctionArguments",
                )
    fmt = body.get("format")
    if fmt is not None and fmt != "" and fmt != "json" and not isinstance(fmt, dict):
        raise _bad(f'invalid format: "{fmt}"; expected "json" or a valid JSON Schema')
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _unmarshal_error(tools, "ChatRequest.tools", "api.Tools")
        for tool in tools:
            if not isinstance(tool, dict) or not isinstance(tool.get("function"), dict):
                raise _unmarshal_error(tool, "ChatRequest.tools", "api.Tool")
    options = body.get("options")
    if options is not None:
        if not isinstance(options, dict):
            raise _unmarshal_error(options, "ChatRequest.options", "map[string]interface {}")
        for name, value in options.items():
            expected = OPTION_TYPES.get(name)
            if expected and (isinstance(value, bool) or not isinstance(value, expected)):
                raise _bad(f"invalid option type for {name!r}: {_go_type(value)}")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _unmarshal_error(stream, "ChatRequest.stream", "bool")


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class FakeOllama(FakeUpstream):
    """Ollama's `/api/chat`, `/api/embed`, `/api/tags` and `/api/version`.

    `api_key` None (the default) accepts any request, as a local Ollama does; set it to
    imitate ollama.com or an authenticating proxy. `models`, when given, is the only set of
    models installed; others answer 404 as an unpulled model does.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        models: list[str] | None = None,
        embedding_dimensions: int = 8,
    ) -> None:
        super().__init__(api_key=api_key)
        self.models = models
        self.embedding_dimensions = embedding_dimensions

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/chat", self.chat),
            web.post("/api/embed", self.embed),
            web.get("/api/tags", self.tags),
            web.get("/api/version", self.version),
            web.get("/", self.root),
        ]

    def check_auth(self, request: web.Request) -> None:
        if self.api_key is None:
            return
        if request.headers.get("authorization", "") != f"Bearer {self.api_key}":
            raise _bad("unauthorized", 401)

    def check_model(self, model: str) -> None:
        if self.models is not None and model not in self.models:
            raise _bad(f"model '{model}' not found", 404)

    def scripted_error(self, script: Script) -> web.Response:
        status = script.status or 500
        headers = dict(script.headers)
        if script.retry_after is not None:
            headers["retry-after"] = f"{script.retry_after:g}"
        if isinstance(script.error, dict):
            return json_response(script.error, status, headers)
        defaults = {
            400: "invalid request",
            401: "unauthorized",
            404: "model not found, try pulling it first",
            429: "too many requests",
            503: "server busy, please try again.  maximum pending requests exceeded",
        }
        message = script.error or defaults.get(
            status, "llama runner process has terminated: exit status 2"
        )
        return json_response(ollama_error(message), status, headers)

    async def root(self, request: web.Request) -> web.Response:
        return web.Response(text="Ollama is running")

    async def version(self, request: web.Request) -> web.Response:
        return json_response({"version": "0.12.6"})

    async def tags(self, request: web.Request) -> web.Response:
        names = self.models or ["llama3.2:latest", "nomic-embed-text:latest"]
        return json_response(
            {
                "models": [
                    {
                        "name": name,
                        "model": name,
                        "modified_at": "2025-01-01T00:00:00Z",
                        "size": 2019393189,
                        "digest": "a80c4f17acd5" + "0" * 52,
                        "details": {"format": "gguf", "family": "llama"},
                    }
                    for name in names
                ]
            }
        )

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        script = self.next_script()
        await self.pause(script.delay)
        if script.status:
            return self.scripted_error(script)
        try:
            self.check_auth(request)
            validate_chat(body)
            self.check_model(body["model"])
        except BadRequest as exc:
            return json_response(exc.body, exc.status)
        options = body.get("options") or {}
        answer = plan_answer(body, script, options.get("num_predict"))
        if body.get("stream", True):
            return await self.stream_chat(request, body, script, answer)
        if script.response is not None:
            return json_response(script.response)
        final = self.final_line(body, script, answer)
        final["message"] = self.message(answer.text or "", answer.tool_calls)
        return json_response(final, headers=script.headers or None)

    @staticmethod
    def message(content: str, tool_calls: list[JSON]) -> JSON:
        message: JSON = {"role": "assistant", "content": content}
        if tool_calls:
            message["tool_calls"] = [
                {
                    "function": {
                        "name": c["name"],
                        "arguments": (
                            orjson.loads(c["arguments"])
                            if isinstance(c["arguments"], str)
                            else c["arguments"]
                        ),
                    }
                }
                for c in tool_calls
            ]
        return message

    @staticmethod
    def final_line(body: JSON, script: Script, answer: Any) -> JSON:
        finish = answer.finish_reason
        line: JSON = {
            "model": body["model"],
            "created_at": _now(),
            "message": {"role": "assistant", "content": ""},
            "done": True,
            # Ollama reports "stop" for tool calls too; only "length" is distinct.
            "done_reason": "length" if finish == "length" else "stop",
            "total_duration": 5_191_566_416,
            "load_duration": 2_154_458,
        }
        if script.finish_reason:
            line["done_reason"] = script.finish_reason
        if script.include_usage:
            line["prompt_eval_count"] = answer.prompt_tokens
            line["prompt_eval_duration"] = 383_809_000
            line["eval_count"] = answer.completion_tokens
            line["eval_duration"] = 4_799_921_000
        return line

    async def stream_chat(
        self, request: web.Request, body: JSON, script: Script, answer: Any
    ) -> web.StreamResponse:
        def line(data: JSON) -> bytes:
            return orjson.dumps(data) + b"\n"

        def events() -> Iterator[bytes]:
            for piece in split_into(answer.text or "", script.chunks):
                yield line(
                    {
                        "model": body["model"],
                        "created_at": _now(),
                        "message": {"role": "assistant", "content": piece},
                        "done": False,
                    }
                )
            if answer.tool_calls:
                # Ollama sends each set of tool calls whole, in one line.
                yield line(
                    {
                        "model": body["model"],
                        "created_at": _now(),
                        "message": self.message("", answer.tool_calls),
                        "done": False,
                    }
                )
            yield line(self.final_line(body, script, answer))

        error_line = None
        if script.stream_error is not None:
            error_line = line(ollama_error(script.stream_error))
        response = await self.start_stream(request, "application/x-ndjson", script)
        return await self.write_events(request, response, events(), script, error_line, None)

    async def embed(self, request: web.Request) -> web.Response:
        body = await self.read_json(request)
        script = self.next_script()
        await self.pause(script.delay)
        if script.status:
            return self.scripted_error(script)
        try:
            self.check_auth(request)
            inputs = validate_embed(body)
            self.check_model(body["model"])
        except BadRequest as exc:
            return json_response(exc.body, exc.status)
        if script.response is not None:
            return json_response(script.response)
        dimensions = body.get("dimensions") or self.embedding_dimensions
        tokens = script.prompt_tokens
        if tokens is None:
            tokens = sum(count_words(text) for text in inputs)
        return json_response(
            {
                "model": body["model"],
                "embeddings": [fake_vector(text, dimensions) for text in inputs],
                "total_duration": 14_143_917,
                "load_duration": 1_019_500,
                "prompt_eval_count": tokens,
            }
        )


def validate_embed(body: Any) -> list[str]:
    """Refuse what Ollama's `/api/embed` refuses; the inputs as a list of strings."""
    if not isinstance(body, dict):
        raise _bad("invalid character looking for beginning of value")
    if not body.get("model"):
        raise _bad("model is required")
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else raw
    if not isinstance(inputs, list) or not all(isinstance(item, str) for item in inputs):
        raise _bad(f"invalid input type: {_go_type(raw)}")
    dimensions = body.get("dimensions")
    if dimensions is not None and (not isinstance(dimensions, int) or dimensions <= 0):
        raise _bad("dimensions must be a positive integer")
    return inputs
