"""A fake OpenAI API on 127.0.0.1 that validates requests and answers like the real one.

Use it in an async test::

    async with FakeOpenAI() as fake:
        fake.enqueue(Script(text="Hi", prompt_tokens=10))
        ... call fake.base_url (ends in /v1) ...
        path, headers, body = fake.requests[-1]  # header names lower-cased

or, to serve a separate process, from synchronous code::

    fake = FakeOpenAI().start_in_thread()
    ...
    fake.stop()

Each request takes the next enqueued `Script` (or `fake.default` when the queue is empty).
`FakeUpstream` holds the server plumbing shared with the other fakes in this package.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import math
import struct
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

JSON = dict[str, Any]


@dataclass
class Script:
    """How the fake answers one request; unset fields keep the deterministic default.

    `tool_calls` items are `{"name": ..., "arguments": dict | str}` (an `id` is optional).
    `prompt_tokens`/`completion_tokens` replace the computed counts; `completion_tokens`
    includes `reasoning_tokens`, as OpenAI counts them. `usage` replaces the whole usage
    object. `chunks` splits a streamed text into that many content events. `status` answers
    with that HTTP error (`error` is its message, or a whole body when a dict). `delay`
    holds back the response headers; `chunk_delay` paces stream events. `break_after`
    stops a stream after that many events: `break_mode` "close" drops the connection,
    "eof" ends the body cleanly without the terminator. `stream_error` sends an error
    event after `break_after` events (default at once). `include_usage=False` sends no
    usage even when asked. `response` replaces the whole non-streamed JSON answer.
    """

    text: str | None = None
    tool_calls: list[JSON] | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    usage: JSON | None = None
    chunks: int | None = None
    chunk_delay: float = 0.0
    delay: float = 0.0
    status: int | None = None
    error: str | JSON | None = None
    retry_after: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    break_after: int | None = None
    break_mode: str = "close"
    stream_error: str | None = None
    include_usage: bool = True
    response: JSON | None = None


class BadRequest(Exception):
    """A request the real API would refuse; carries the provider's error body."""

    def __init__(self, body: Any, status: int = 400) -> None:
        super().__init__(str(body))
        self.body = body
        self.status = status


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None):
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def words_of(text: str) -> list[str]:
    """Split text into pieces that concatenate back to it (each keeps its trailing space)."""
    parts = text.split(" ")
    return [part + " " for part in parts[:-1]] + [parts[-1]] if text else []


def split_into(text: str, count: int | None) -> list[str]:
    """`text` as `count` consecutive pieces (one per word when `count` is None)."""
    pieces = words_of(text)
    if count is None or count >= len(pieces):
        if count and count > len(pieces):
            # More chunks than words: pad with characters split off the last pieces.
            chars = list(text)
            size = max(1, math.ceil(len(chars) / count))
            return ["".join(chars[i : i + size]) for i in range(0, len(chars), size)]
        return pieces
    size = math.ceil(len(pieces) / count)
    return ["".join(pieces[i : i + size]) for i in range(0, len(pieces), size)]


def count_words(text: str) -> int:
    return len(text.split())


def fake_vector(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for `text`."""
    raw = b""
    seed = text.encode()
    while len(raw) < dimensions * 4:
        seed = hashlib.sha256(seed).digest()
        raw += seed
    values = [(v / 2**31) - 1.0 for v in struct.unpack(f"<{dimensions}I", raw[: dimensions * 4])]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]


class FakeUpstream:
    """Serves an aiohttp app on 127.0.0.1 (random port), in the running loop or a thread."""

    base_path = ""

    def __init__(self, *, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.default = Script()
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.port: int | None = None
        self._scripts: deque[Script] = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- scripting (safe from any thread) ----------------------------------------------
    def enqueue(self, *scripts: Script) -> None:
        with self._lock:
            self._scripts.extend(scripts)

    def next_script(self) -> Script:
        with self._lock:
            return self._scripts.popleft() if self._scripts else self.default

    def record(self, request: web.Request, body: Any) -> None:
        with self._lock:
            self.requests.append(
                (request.path, {k.lower(): v for k, v in request.headers.items()}, body)
            )

    def bodies(self, path_suffix: str = "") -> list[Any]:
        """JSON bodies received on paths ending in `path_suffix`, oldest first."""
        with self._lock:
            return [body for path, _h, body in self.requests if path.endswith(path_suffix)]

    def next_id(self) -> int:
        return next(self._ids)

    @property
    def base_url(self) -> str:
        assert self.port is not None, "start the fake first"
        return f"http://127.0.0.1:{self.port}{self.base_path}"

    # -- serving -----------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    async def start(self) -> FakeUpstream:
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.add_routes(self.routes())
        # Cancelling handlers on disconnect lets a client that gave up stop a scripted delay.
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeUpstream:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start_in_thread(self, timeout: float = 10.0) -> FakeUpstream:
        """Serve from a daemon thread with its own loop; returns once the port is bound."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name=type(self).__name__, daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError(f"{type(self).__name__} did not start within {timeout}s")
        if failure:
            raise failure[0]
        return self

    def stop(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            asyncio.run_coroutine_threadsafe(self.close(), loop).result(timeout)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._loop = self._thread = None

    async def pause(self, seconds: float) -> None:
        """Sleep that ends early when the fake shuts down."""
        if seconds <= 0:
            return
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def read_json(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        self.record(request, body)
        return body

    async def start_stream(
        self, request: web.Request, content_type: str, script: Script
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"content-type": content_type, "cache-control": "no-cache", **script.headers}
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        return response

    async def write_events(
        self,
        request: web.Request,
        response: web.StreamResponse,
        events: Iterator[bytes],
        script: Script,
        error_event: bytes | None,
        terminator: bytes | None,
    ) -> web.StreamResponse:
        """Write stream events honouring the script's pacing, break and mid-stream error."""
        limit = script.break_after
        if limit is None and error_event is not None:
            limit = 0
        broke = False
        for sent, event in enumerate(events):
            if limit is not None and sent >= limit:
                broke = True
                break
            await response.write(event)
            await self.pause(script.chunk_delay)
        if error_event is not None:
            await response.write(error_event)
        elif broke:
            if script.break_mode == "close":
                # Drop the connection mid-body, as a crashed upstream or a proxy reset would.
                # The short wait lets the client read what was sent first: aiohttp discards
                # buffered data once it sees the connection fail.
                await self.pause(0.05)
                assert request.transport is not None
                request.transport.abort()
            return response
        if terminator is not None:
            await response.write(terminator)
        return response


# -- the OpenAI fake -------------------------------------------------------------------

# Fields /v1/chat/completions accepts (https://platform.openai.com/docs/api-reference/chat);
# the real API answers 400 "Unrecognized request argument" to anything else.
CHAT_FIELDS = frozenset(
    {
        "model", "messages", "audio", "frequency_penalty", "function_call", "functions",
        "logit_bias", "logprobs", "max_completion_tokens", "max_tokens", "metadata",
        "modalities", "n", "parallel_tool_calls", "prediction", "presence_penalty",
        "prompt_cache_key", "reasoning_effort", "response_format", "safety_identifier", "seed",
        "service_tier", "stop", "store", "stream", "stream_options", "temperature",
        "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity",
        "web_search_options",
    }
)  # fmt: skip
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
PART_TYPES = {
    "system": ("text",),
    "developer": ("text",),
    "user": ("text", "image_url", "input_audio", "file"),
    "assistant": ("text", "refusal"),
    "tool": ("text",),
}


def openai_error(
    message: str, *, type: str = "invalid_request_error", param: str | None = None,
    code: str | None = None,
) -> JSON:  # fmt: skip
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def _bad(message: str, param: str | None = None, code: str | None = None) -> BadRequest:
    return BadRequest(openai_error(message, param=param, code=code))


def _missing(param: str) -> BadRequest:
    return _bad(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _invalid_type(param: str, expected: str, value: Any) -> BadRequest:
    got = type(value).__name__
    return _bad(
        f"Invalid type for '{param}': expected {expected}, but got {got} instead.",
        param,
        "invalid_type",
    )


def _check_number(body: JSON, name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid_type(name, "a decimal", value)
    if not low <= value <= high:
        raise _bad(
            f"Invalid '{name}': decimal above maximum value. Expected a value <= {high:g}, "
            f"but got {value} instead."
            if value > high
            else f"Invalid '{name}': decimal below minimum value. Expected a value >= {low:g}, "
            f"but got {value} instead.",
            name,
            "decimal_above_max_value" if value > high else "decimal_below_min_value",
        )


def _check_int(body: JSON, name: str, low: int, high: int | None = None) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid_type(name, "an integer", value)
    if value < low or (high is not None and value > high):
        raise _bad(f"Invalid '{name}': integer out of range.", name, "integer_out_of_range")


def _check_parts(role: str, content: list[Any], where: str) -> None:
    allowed = PART_TYPES.get(role, ("text",))
    for j, part in enumerate(content):
        param = f"{where}.content[{j}]"
        if not isinstance(part, dict):
            raise _invalid_type(param, "an object", part)
        kind = part.get("type")
        if kind not in allowed:
            names = ", ".join(f"'{a}'" for a in allowed)
            raise _bad(
                f"Invalid value: '{kind}'. Supported values are: {names}.",
                f"{param}.type",
                "invalid_value",
            )
        if kind == "text" and not isinstance(part.get("text"), str):
            raise _missing(f"{param}.text")
        if kind == "image_url":
            image = part.get("image_url")
            if not isinstance(image, dict) or not isinstance(image.get("url"), str):
                raise _missing(f"{param}.image_url.url")
            detail = image.get("detail", "auto")
            if detail not in ("auto", "low", "high"):
                raise _bad(f"Invalid value: '{detail}'.", f"{param}.image_url.detail")
        if kind == "input_audio":
            audio = part.get("input_audio")
            if not isinstance(audio, dict) or "data" not in audio or "format" not in audio:
                raise _missing(f"{param}.input_audio.data")


def validate_chat(body: Any, *, strict: bool) -> None:
    """Refuse what OpenAI refuses, with its messages and `param` paths."""
    if not isinstance(body, dict):
        raise _bad(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            "but what was sent was not valid JSON."
        )
    if strict:
        for key in body:
            if key not in CHAT_FIELDS:
                raise _bad(f"Unrecognized request argument supplied: {key}")
    if not body.get("model"):
        raise _bad("you must provide a model parameter")
    if not isinstance(body["model"], str):
        raise _invalid_type("model", "a string", body["model"])
    messages = body.get("messages")
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise _invalid_type("messages", "an array", messages)
    if not messages:
        raise _bad(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got "
            "an empty array instead.",
            "messages",
            "empty_array",
        )
    pending: dict[str, int] = {}
    answered: set[str] = set()
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _invalid_type(where, "an object", message)
        role = message.get("role")
        if role is None:
            raise _missing(f"{where}.role")
        if role not in ROLES:
            raise _bad(
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', "
                "'tool', and 'function'.",
                f"{where}.role",
                "invalid_value",
            )
        content = message.get("content")
        if role != "tool" and pending:
            missing = ", ".join(sorted(pending))
            raise _bad(
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {missing}",
                f"messages.[{min(pending.values())}].role",
            )
        if role == "assistant":
            tool_calls = message.get("tool_calls")
            if content is None and not tool_calls and not message.get("function_call"):
                raise _missing(f"{where}.content")
            for k, call in enumerate(tool_calls or []):
                function = call.get("function") if isinstance(call, dict) else None
                if not isinstance(call, dict) or not call.get("id"):
                    raise _missing(f"{where}.tool_calls[{k}].id")
                if not isinstance(function, dict) or not function.get("name"):
                    raise _missing(f"{where}.tool_calls[{k}].function.name")
                if not isinstance(function.get("arguments"), str):
                    raise _invalid_type(
                        f"{where}.tool_calls[{k}].function.arguments",
                        "a string",
                        function.get("arguments"),
                    )
                pending[call["id"]] = i
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not call_id:
                raise _missing(f"{where}.tool_call_id")
            if call_id not in pending and call_id not in answered:
                raise _bad(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    f"messages.[{i}].role",
                )
            pending.pop(call_id, None)
            answered.add(call_id)
        if role != "assistant" and content is None:
            raise _missing(f"{where}.content")
        if isinstance(content, list):
            _check_parts(role, content, where)
        elif content is not None and not isinstance(content, str):
            raise _invalid_type(f"{where}.content", "one of a string or array of objects", content)

    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _invalid_type("stream", "a boolean", stream)
    if body.get("stream_options") is not None and not stream:
        raise _bad(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
            "invalid_value",
        )
    _check_number(body, "temperature", 0, 2)
    _check_number(body, "top_p", 0, 1)
    _check_number(body, "presence_penalty", -2, 2)
    _check_number(body, "frequency_penalty", -2, 2)
    _check_int(body, "n", 1, 128)
    _check_int(body, "max_tokens", 1)
    _check_int(body, "max_completion_tokens", 1)
    _check_int(body, "seed", -(2**63), 2**63 - 1)
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str | list):
        raise _invalid_type("stop", "one of a string or array of strings", stop)

    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _invalid_type("tools", "an array", tools)
        for k, tool in enumerate(tools):
            if not isinstance(tool, dict) or tool.get("type") != "function":
                raise _missing(f"tools[{k}].type")
            function = tool.get("function")
            if not isinstance(function, dict) or not function.get("name"):
                raise _missing(f"tools[{k}].function.name")
    if body.get("tool_choice") is not None and not tools:
        raise _bad(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are "
            "specified.",
            "tool_choice",
        )
    response_format = body.get("response_format")
    if response_format is not None:
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind not in ("text", "json_object", "json_schema"):
            raise _bad(
                f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object', and "
                "'json_schema'.",
                "response_format.type",
                "invalid_value",
            )
        if kind == "json_schema":
            schema = response_format.get("json_schema")
            if not isinstance(schema, dict) or not schema.get("name"):
                raise _missing("response_format.json_schema.name")


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def last_user_text(messages: list[JSON]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return text_of(message.get("content"))
    return ""


def prompt_word_count(messages: list[JSON]) -> int:
    return max(1, sum(count_words(text_of(m.get("content"))) for m in messages))


@dataclass
class Answer:
    """What the fake says, computed once and rendered as a completion or a stream."""

    text: str | None
    tool_calls: list[JSON]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


def plan_answer(body: JSON, script: Script, max_tokens: int | None) -> Answer:
    """The scripted or default answer, cut at `max_tokens` words as a model would be."""
    tool_calls = []
    for k, call in enumerate(script.tool_calls or []):
        arguments = call.get("arguments", {})
        tool_calls.append(
            {
                "id": call.get("id") or f"call_fake{k}",
                "name": call["name"],
                "arguments": arguments,
            }
        )
    if script.text is not None:
        text: str | None = script.text
    elif tool_calls:
        text = None
    else:
        text = f"You said: {last_user_text(body.get('messages') or [])}"
        fmt = (body.get("response_format") or {}).get("type")
        if fmt in ("json_object", "json_schema") or body.get("format"):
            text = orjson.dumps({"answer": text}).decode()
    finish = "tool_calls" if tool_calls else "stop"
    if text and max_tokens is not None and count_words(text) > max_tokens:
        text = " ".join(text.split()[:max_tokens])
        finish = "length"
    visible = count_words(text or "") + sum(
        max(1, len(orjson.dumps(c["arguments"])) // 4) for c in tool_calls
    )
    return Answer(
        text=text,
        tool_calls=tool_calls,
        finish_reason=script.finish_reason or finish,
        prompt_tokens=(
            script.prompt_tokens
            if script.prompt_tokens is not None
            else prompt_word_count(body.get("messages") or [])
        ),
        completion_tokens=(
            script.completion_tokens
            if script.completion_tokens is not None
            else max(1, visible) + script.reasoning_tokens
        ),
    )


def arguments_json(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()


class FakeOpenAI(FakeUpstream):
    """OpenAI's `/v1/chat/completions`, `/v1/embeddings` and `/v1/models`.

    `api_key` is the only key accepted (None accepts any request, like a local server);
    `models`, when given, is the only set of models served; `strict` refuses unknown body
    fields as OpenAI does (vLLM-style servers accept extras: pass strict=False).
    """

    base_path = "/v1"

    def __init__(
        self,
        *,
        api_key: str | None = "sk-fake-test-key",
        models: list[str] | None = None,
        strict: bool = True,
        embedding_dimensions: int = 8,
    ) -> None:
        super().__init__(api_key=api_key)
        self.models = models
        self.strict = strict
        self.embedding_dimensions = embedding_dimensions

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/chat/completions", self.chat_completions),
            web.post("/v1/embeddings", self.embeddings),
            web.get("/v1/models", self.list_models),
            web.get("/v1/models/{model}", self.get_model),
            web.route("*", "/{tail:.*}", self.not_found),
        ]

    # -- shared checks -----------------------------------------------------------------
    def check_auth(self, request: web.Request) -> None:
        if self.api_key is None:
            return
        header = request.headers.get("authorization", "")
        if not header:
            raise BadRequest(
                openai_error(
                    "You didn't provide an API key. You need to provide your API key in an "
                    "Authorization header using Bearer auth (i.e. Authorization: Bearer "
                    "YOUR_KEY), or as the password field (with blank username) if you're "
                    "accessing the API from your browser and are prompted for a username and "
                    "password. You can obtain an API key from "
                    "https://platform.openai.com/account/api-keys."
                ),
                401,
            )
        key = header.removeprefix("Bearer ")
        if key != self.api_key:
            # The real API quotes part of the key back; quoting all of it makes leaks obvious.
            raise BadRequest(
                openai_error(
                    f"Incorrect API key provided: {key}. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                    code="invalid_api_key",
                ),
                401,
            )

    def check_model(self, model: str) -> None:
        if self.models is not None and model not in self.models:
            raise BadRequest(
                openai_error(
                    f"The model `{model}` does not exist or you do not have access to it.",
                    code="model_not_found",
                ),
                404,
            )

    def scripted_error(self, script: Script) -> web.Response:
        status = script.status or 500
        headers = dict(script.headers)
        if script.retry_after is not None:
            headers["retry-after"] = f"{script.retry_after:g}"
        if isinstance(script.error, dict):
            return json_response(script.error, status, headers)
        message = script.error
        if status == 401:
            body = openai_error(message or "Incorrect API key provided.", code="invalid_api_key")
        elif status == 404:
            body = openai_error(message or "The model does not exist.", code="model_not_found")
        elif status == 429:
            headers.setdefault("x-ratelimit-remaining-requests", "0")
            body = openai_error(
                message
                or "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1.",
                type="requests",
                code="rate_limit_exceeded",
            )
        elif status >= 500:
            body = openai_error(
                message
                or (
                    "The engine is currently overloaded, please try again later."
                    if status == 503
                    else "The server had an error while processing your request. Sorry about that!"
                ),
                type="server_error",
            )
        else:
            body = openai_error(message or "Invalid request.")
        return json_response(body, status, headers)

    async def begin(self, request: web.Request) -> tuple[Script, Any]:
        """Read and record the body, take the script, apply its delay."""
        body = await self.read_json(request)
        script = self.next_script()
        await self.pause(script.delay)
        return script, body

    # -- endpoints ---------------------------------------------------------------------
    async def not_found(self, request: web.Request) -> web.Response:
        return json_response(
            openai_error(f"Invalid URL ({request.method} {request.path})"), status=404
        )

    async def list_models(self, request: web.Request) -> web.Response:
        try:
            self.check_auth(request)
        except BadRequest as exc:
            return json_response(exc.body, exc.status)
        names = self.models or ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"]
        return json_response({"object": "list", "data": [self._model(n) for n in names]})

    async def get_model(self, request: web.Request) -> web.Response:
        try:
            self.check_auth(request)
            self.check_model(request.match_info["model"])
        except BadRequest as exc:
            return json_response(exc.body, exc.status)
        return json_response(self._model(request.match_info["model"]))

    @staticmethod
    def _model(name: str) -> JSON:
        return {"id": name, "object": "model", "created": 1700000000, "owned_by": "system"}

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        script, body = await self.begin(request)
        if script.status:
            return self.scripted_error(script)
        try:
            self.check_auth(request)
            validate_chat(body, strict=self.strict)
            self.check_model(body["model"])
        except BadRequest as exc:
            return json_response(exc.body, exc.status)
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        answer = plan_answer(body, script, max_tokens)
        completion_id = f"chatcmpl-fake{self.next_id()}"
        headers = {"x-request-id": f"req_fake{self.next_id()}", **script.headers}
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return await self.stream_chat(
                request, body, script, answer, completion_id, include_usage
            )
        if script.response is not None:
            return json_response(script.response, headers=headers)
        message: JSON = {"role": "assistant", "content": answer.text, "refusal": None}
        if answer.tool_calls:
            message["tool_calls"] = [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": arguments_json(c["arguments"])},
                }
                for c in answer.tool_calls
            ]
        n = body.get("n") or 1
        completion = {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": i,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": answer.finish_reason,
                }
                for i in range(n)
            ],
            "usage": self.usage(script, answer, n),
        }
        return json_response(completion, headers=headers)

    @staticmethod
    def usage(script: Script, answer: Answer, n: int = 1) -> JSON:
        if script.usage is not None:
            return script.usage
        completion = answer.completion_tokens * n
        return {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": answer.prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": script.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": script.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    async def stream_chat(
        self,
        request: web.Request,
        body: JSON,
        script: Script,
        answer: Answer,
        completion_id: str,
        include_usage: bool,
    ) -> web.StreamResponse:
        created = int(time.time())
        with_usage = include_usage and script.include_usage

        def chunk(choices: list[JSON], usage: Any = None, last: bool = False) -> bytes:
            data: JSON = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body["model"],
                "system_fingerprint": "fp_fake",
                "choices": choices,
            }
            # With include_usage every chunk carries `usage: null` until the last one.
            if with_usage:
                data["usage"] = usage if last else None
            return b"data: " + orjson.dumps(data) + b"\n\n"

        def delta(d: JSON, finish: str | None = None) -> list[JSON]:
            return [{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}]

        def events() -> Iterator[bytes]:
            first: JSON = {"role": "assistant", "content": "", "refusal": None}
            if answer.text is None:
                first["content"] = None
            yield chunk(delta(first))
            for piece in split_into(answer.text or "", script.chunks):
                yield chunk(delta({"content": piece}))
            for k, call in enumerate(answer.tool_calls):
                yield chunk(
                    delta(
                        {
                            "tool_calls": [
                                {
                                    "index": k,
                                    "id": call["id"],
                                    "type": "function",
                                    "function": {"name": call["name"], "arguments": ""},
                                }
                            ]
                        }
                    )
                )
                for piece in split_into(arguments_json(call["arguments"]), script.chunks):
                    yield chunk(
                        delta({"tool_calls": [{"index": k, "function": {"arguments": piece}}]})
                    )
            yield chunk(delta({}, answer.finish_reason))
            if with_usage:
                yield chunk([], self.usage(script, answer), last=True)

        error_event = None
        if script.stream_error is not None:
            error_event = b"data: " + orjson.dumps(
                openai_error(script.stream_error, type="server_error")
            ) + b"\n\n"  # fmt: skip
        response = await self.start_stream(request, "text/event-stream; charset=utf-8", script)
        return await self.write_events(
            request, response, events(), script, error_event, b"data: [DONE]\n\n"
        )

    async def embeddings(self, request: web.Request) -> web.Response:
        script, body = await self.begin(request)
        if script.status:
            return self.scripted_error(script)
        try:
            self.check_auth(request)
            inputs = validate_embeddings(body)
            self.check_model(body["model"])
        except BadRequest as exc:
            return json_response(exc.body, exc.status)
        if script.response is not None:
            return json_response(script.response)
        dimensions = body.get("dimensions") or self.embedding_dimensions
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, item in enumerate(inputs):
            vector = fake_vector(str(item), dimensions)
            embedding: Any = vector
            if as_base64:
                embedding = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = script.prompt_tokens
        if tokens is None:
            tokens = sum(count_words(i) if isinstance(i, str) else len(i) for i in inputs)
        return json_response(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": script.usage or {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )


def validate_embeddings(body: Any) -> list[Any]:
    """Refuse what OpenAI's `/v1/embeddings` refuses; the inputs as a list."""
    if not isinstance(body, dict):
        raise _bad("We could not parse the JSON body of your request.")
    if not body.get("model"):
        raise _bad("you must provide a model parameter")
    if "input" not in body:
        raise _missing("input")
    raw = body["input"]
    single = isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int))
    inputs = [raw] if single else raw
    if not isinstance(inputs, list) or not inputs:
        raise _bad("'$.input' is invalid. Please check the API reference.", "input")
    for item in inputs:
        if item == "" or not isinstance(item, str | list):
            raise _bad("'$.input' is invalid. Please check the API reference.", "input")
    if body.get("encoding_format", "float") not in ("float", "base64"):
        raise _bad("Invalid value for 'encoding_format'.", "encoding_format", "invalid_value")
    _check_int(body, "dimensions", 1, 4096)
    return inputs
