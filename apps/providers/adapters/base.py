"""The one interface every provider adapter implements, and the HTTP plumbing they share.

The data plane speaks OpenAI's Chat Completions shape internally: a request body is an
OpenAI chat request (already validated), a response is an OpenAI `chat.completion`
object, a stream is a sequence of OpenAI `chat.completion.chunk` objects. Each adapter
translates that to and from its provider's wire protocol, usage and errors included.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any, ClassVar

import aiohttp
import orjson

from apps.providers.exceptions import UpstreamError, UpstreamTimeout
from apps.providers.http import get_session
from atp_site.lib.hot_settings import hot

# Longest single line accepted from a streamed body: inline base64 images in a Gemini or
# Ollama stream arrive as one line.
MAX_LINE_BYTES = 64 * 2**20
# Most of an upstream's error body read: enough for any provider's message, which is all
# ATP takes from it.
MAX_ERROR_BODY_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Target:
    """Everything needed to call one deployment, taken from the in-memory snapshot."""

    provider_id: str
    provider_name: str
    kind: str
    base_url: str
    upstream_model: str
    api_key: str = field(default="", repr=False)
    connect_timeout: float = 5.0
    first_byte_timeout: float = 60.0
    total_timeout: float = 600.0
    options: Mapping[str, Any] = field(default_factory=dict)
    max_output_tokens: int | None = None


@dataclass(slots=True)
class Usage:
    """Token counts. `input_tokens` includes cached reads and cache writes;
    `output_tokens` includes reasoning tokens."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
        )

    def to_openai(self) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
        }
        if self.cached_input_tokens or self.cache_write_tokens:
            details: dict[str, int] = {"cached_tokens": self.cached_input_tokens}
            if self.cache_write_tokens:
                details["cache_write_tokens"] = self.cache_write_tokens
            usage["prompt_tokens_details"] = details
        if self.reasoning_tokens:
            usage["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        return usage

    @classmethod
    def from_openai(cls, usage: Mapping[str, Any] | None) -> Usage | None:
        if not usage:
            return None
        prompt_details = usage.get("prompt_tokens_details") or {}
        completion_details = usage.get("completion_tokens_details") or {}
        return cls(
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
            cached_input_tokens=int(prompt_details.get("cached_tokens") or 0),
            cache_write_tokens=int(prompt_details.get("cache_write_tokens") or 0),
            reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
        )


@dataclass(slots=True)
class ChatResult:
    """A non-streamed answer: an OpenAI `chat.completion` object and its usage."""

    response: dict[str, Any]
    usage: Usage | None


@dataclass(slots=True)
class EmbeddingsResult:
    """An OpenAI `list` of `embedding` objects and its usage."""

    response: dict[str, Any]
    usage: Usage | None


class Adapter:
    """Base class of every provider adapter.

    `chat_stream` is an async generator of OpenAI `chat.completion.chunk` dicts. When the
    upstream reports usage, the adapter yields it as a final chunk with `choices: []` and
    `usage` in OpenAI's shape (the data plane decides whether the caller sees it). A
    failure before or during the stream raises `UpstreamError`.
    """

    kind: ClassVar[str]

    async def chat(self, target: Target, body: dict[str, Any]) -> ChatResult:
        raise NotImplementedError

    def chat_stream(self, target: Target, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        raise NotImplementedError

    async def embeddings(self, target: Target, body: dict[str, Any]) -> EmbeddingsResult:
        raise UpstreamError(
            f"Provider '{target.provider_name}' does not serve embeddings.",
            status=400,
            type="invalid_request_error",
            code="unsupported_endpoint",
            retryable=False,
        )

    # -- error mapping -----------------------------------------------------------------
    def error_message(self, payload: Any) -> str:
        """Pull a human message out of an upstream error body; adapters override."""
        if isinstance(payload, dict):
            err = payload.get("error")
            if isinstance(err, dict) and isinstance(err.get("message"), str):
                return err["message"]
            if isinstance(err, str):
                return err
            if isinstance(payload.get("message"), str):
                return payload["message"]
        return ""


def error_from_status(
    adapter: Adapter,
    target: Target,
    status: int,
    payload: Any,
    retry_after: float | None = None,
) -> UpstreamError:
    """Map an upstream HTTP error to the error ATP answers with (see `UpstreamError`)."""
    who = f"Provider '{target.provider_name}'"
    detail = adapter.error_message(payload)[:500]
    if status in (401, 403):
        # Never echo the upstream's text: it can quote part of ATP's credential.
        return UpstreamError(
            f"{who} rejected ATP's credentials (HTTP {status}).",
            status=502,
            code="upstream_auth_error",
            retryable=False,
            upstream_status=status,
        )
    if status in (400, 422):
        return UpstreamError(
            f"{who} rejected the request: {detail or 'bad request'}",
            status=400,
            type="invalid_request_error",
            code="upstream_bad_request",
            retryable=False,
            upstream_status=status,
        )
    if status == 404:
        return UpstreamError(
            f"{who} does not know model '{target.upstream_model}': {detail or 'not found'}",
            status=502,
            code="upstream_not_found",
            retryable=False,
            upstream_status=status,
        )
    if status == 413:
        return UpstreamError(
            f"{who} says the request is too large.",
            status=413,
            type="invalid_request_error",
            code="request_too_large",
            retryable=False,
            upstream_status=status,
        )
    if status == 408:
        return UpstreamTimeout(f"{who} timed out (HTTP 408).", upstream_status=status)
    if status == 429 and _error_code(payload) == "insufficient_quota":
        # OpenAI's "out of credit" is a 429 too, but no wait fixes it: it is ATP's account,
        # not the caller's rate, so it is a deployment fault (fall back, not retried).
        return UpstreamError(
            f"{who} refused the call: ATP's upstream account has no quota left.",
            status=502,
            code="upstream_quota_exhausted",
            retryable=False,
            upstream_status=status,
        )
    if status == 429:
        return UpstreamError(
            f"{who} is rate limiting: {detail or 'too many requests'}",
            status=429,
            type="rate_limit_error",
            code="upstream_rate_limited",
            retry_after=retry_after,
            upstream_status=status,
        )
    if status in (503, 529):
        return UpstreamError(
            f"{who} is overloaded or unavailable (HTTP {status}).",
            status=503,
            code="upstream_unavailable",
            retry_after=retry_after,
            upstream_status=status,
        )
    return UpstreamError(
        f"{who} failed (HTTP {status}){': ' + detail if detail else '.'}",
        status=502,
        code="upstream_error",
        retry_after=retry_after,
        upstream_status=status,
    )


def _error_code(payload: Any) -> str:
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict) and isinstance(err.get("code"), str):
            return err["code"]
    return ""


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """The upstream's wait hint in seconds: OpenAI's `retry-after-ms`, else `retry-after`
    as seconds or as an HTTP date (https://www.rfc-editor.org/rfc/rfc9110#field.retry-after)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            value = float(raw_ms) / 1000
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return max(0.0, value)
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        return max(0.0, when.timestamp() - time.time())
    return max(0.0, value) if math.isfinite(value) else None


async def read_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The whole body, or None as soon as it exceeds `limit` bytes (after decompression,
    so a compressed bomb is cut off too). Read in the blocks the socket delivers, as
    aiohttp's own `read()` does."""
    length = response.content_length
    if length is not None and length > limit:
        return None
    content = response.content
    blocks: list[bytes] = []
    size = 0
    while True:
        block = await content.readany()
        if not block:
            break
        size += len(block)
        if size > limit:
            return None
        blocks.append(block)
    return blocks[0] if len(blocks) == 1 else b"".join(blocks)


@lru_cache(maxsize=64)
def _client_timeout(connect: float, first_byte: float) -> aiohttp.ClientTimeout:
    """aiohttp's per-call timeouts; the total deadline is enforced by UpstreamCall itself."""
    return aiohttp.ClientTimeout(
        total=None, connect=connect, sock_connect=connect, sock_read=first_byte
    )


class UpstreamCall:
    """One HTTP call to an upstream with connect, first-byte and total deadlines.

    Use as an async context manager; `response` is the aiohttp response once headers
    arrived with a 2xx status. Non-2xx answers and network failures raise `UpstreamError`.
    Redirects are never followed: a provider's base URL answering 3xx would otherwise send
    the request, with ATP's upstream credential, wherever the Location header points.
    """

    def __init__(
        self,
        adapter: Adapter,
        target: Target,
        url: str,
        *,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        method: str = "POST",
    ) -> None:
        self.adapter = adapter
        self.target = target
        self.url = url
        self.body = orjson.dumps(json_body) if json_body is not None else None
        self.headers = {"content-type": "application/json", **(headers or {})}
        self.method = method
        self.deadline = time.monotonic() + target.total_timeout
        self.response: aiohttp.ClientResponse | None = None

    def remaining(self) -> float:
        return max(0.001, self.deadline - time.monotonic())

    async def __aenter__(self) -> UpstreamCall:
        session = get_session()
        timeout = _client_timeout(self.target.connect_timeout, self.target.first_byte_timeout)
        try:
            async with asyncio.timeout(min(self.target.first_byte_timeout, self.remaining())):
                self.response = await session.request(
                    self.method,
                    self.url,
                    data=self.body,
                    headers=self.headers,
                    timeout=timeout,
                    allow_redirects=False,
                )
        except TimeoutError:
            raise UpstreamTimeout(
                f"Provider '{self.target.provider_name}' sent no response within "
                f"{self.target.first_byte_timeout:g}s."
            ) from None
        except aiohttp.ClientConnectorError:
            raise UpstreamError(
                f"Provider '{self.target.provider_name}' cannot be reached.",
                code="upstream_unreachable",
            ) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(
                f"Provider '{self.target.provider_name}' connection failed ({type(exc).__name__}).",
                code="upstream_connection_error",
            ) from None
        status = self.response.status
        if 300 <= status < 400:
            self.response.close()
            raise UpstreamError(
                f"Provider '{self.target.provider_name}' answered with a redirect "
                f"(HTTP {status}); ATP does not follow upstream redirects. Check the "
                "provider's base URL.",
                code="upstream_redirect",
                retryable=False,
                upstream_status=status,
            )
        if status >= 400:
            headers = self.response.headers
            raw = None
            try:
                async with asyncio.timeout(self.remaining()):
                    raw = await read_bounded(self.response, MAX_ERROR_BODY_BYTES)
                payload: Any = orjson.loads(raw) if raw else None
            except (orjson.JSONDecodeError, aiohttp.ClientError, TimeoutError):
                payload = None
            finally:
                # A body read to its end leaves the connection reusable; anything else
                # (too long, timed out) must not be read further.
                if raw is None:
                    self.response.close()
                else:
                    self.response.release()
            raise error_from_status(
                self.adapter, self.target, status, payload, _retry_after(headers)
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.response is not None:
            self.response.release()

    async def json(self) -> Any:
        """The body parsed as JSON, read up to ATP_UPSTREAM_MAX_BODY_BYTES: a provider that
        sends more fails with a 502 instead of filling the gateway's memory."""
        assert self.response is not None
        limit = hot.ATP_UPSTREAM_MAX_BODY_BYTES
        try:
            async with asyncio.timeout(self.remaining()):
                raw = await read_bounded(self.response, limit)
        except TimeoutError:
            raise UpstreamTimeout(
                f"Provider '{self.target.provider_name}' did not finish within "
                f"{self.target.total_timeout:g}s."
            ) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(
                f"Provider '{self.target.provider_name}' broke the connection "
                f"({type(exc).__name__})."
            ) from None
        if raw is None:
            # Drop the connection: the rest of the body must not be read to reuse it.
            self.response.close()
            raise UpstreamError(
                f"Provider '{self.target.provider_name}' sent a response body larger than "
                f"{limit} bytes (ATP_UPSTREAM_MAX_BODY_BYTES).",
                code="upstream_body_too_large",
                retryable=False,
            )
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamError(
                f"Provider '{self.target.provider_name}' sent a body that is not JSON."
            ) from None

    async def lines(self) -> AsyncIterator[bytes]:
        """Yield the body line by line (without the newline), within the total deadline.

        Reads whatever the socket has and splits it here: one await per network read
        rather than one per line, which matters when a fast upstream sends a whole stream
        in a few packets.
        """
        assert self.response is not None
        content = self.response.content
        pending = bytearray()
        while True:
            try:
                async with asyncio.timeout(self.remaining()):
                    block = await content.readany()
            except TimeoutError:
                raise UpstreamTimeout(
                    f"Provider '{self.target.provider_name}' stream stalled or ran past "
                    f"{self.target.total_timeout:g}s."
                ) from None
            except aiohttp.ClientError as exc:
                raise UpstreamError(
                    f"Provider '{self.target.provider_name}' broke the stream "
                    f"({type(exc).__name__})."
                ) from None
            if not block:
                if pending:
                    yield bytes(pending).rstrip(b"\r")
                return
            if b"\n" not in block:
                pending += block
                if len(pending) > MAX_LINE_BYTES:
                    raise UpstreamError(
                        f"Provider '{self.target.provider_name}' sent a stream line longer "
                        f"than {MAX_LINE_BYTES // 2**20} MiB."
                    )
                continue
            if pending:
                pending += block
                block = bytes(pending)
                pending.clear()
            *complete, rest = block.split(b"\n")
            pending += rest
            for line in complete:
                yield line[:-1] if line.endswith(b"\r") else line

    async def sse_events(self) -> AsyncIterator[tuple[str | None, bytes]]:
        """Yield (event name, data) for each server-sent event."""
        event: str | None = None
        data: list[bytes] = []
        async for line in self.lines():
            if not line:
                if data:
                    yield event, b"\n".join(data)
                event, data = None, []
                continue
            if line.startswith(b":"):
                continue
            name, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            if name == b"data":
                data.append(value)
            elif name == b"event":
                event = value.decode()
        if data:
            yield event, b"\n".join(data)
