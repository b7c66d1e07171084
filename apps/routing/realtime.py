"""WebSocket streaming at /v1/realtime: many chat completions on one socket, cancellable.

Authentication: an `Authorization: Bearer KEY` header on the upgrade request, or (for
browsers, which cannot set headers on a WebSocket) a first message
`{"type": "auth", "api_key": "KEY"}`. Keys are never accepted in the URL, where access
logs would keep them.

Client messages (JSON text frames):

    {"type": "request", "id": "c1", "body": {<an OpenAI chat.completions body>},
     "headers": {"x-atp-quality": "fast"}}                 # headers optional
    {"type": "cancel", "id": "c1"}
    {"type": "ping"}

Server messages:

    {"type": "ready", "tenant": "acme"}                      # after authentication
    {"type": "chunk", "id": "c1", "data": {<chat.completion.chunk>}}
    {"type": "done", "id": "c1", "request_id": "...", "model": "...", "route": "...",
     "usage": {...}, "cost_usd": 0.00001234}             # money is a JSON number
    {"type": "cancelled", "id": "c1", "request_id": "..."}
    {"type": "error", "id": "c1" | null, "error": {<OpenAI error object>}}
    {"type": "pong"}

Limits: at most ATP_REALTIME_MAX_SOCKETS_PER_KEY open sockets per key (across processes
when Redis is configured; the next is refused with `too_many_sockets` and close code 4429);
a socket that has not authenticated within ATP_REALTIME_AUTH_TIMEOUT_SECONDS is closed
(`auth_timeout`, 4401); a message larger than ATP_MAX_BODY_BYTES is refused
(`message_too_large`) and the socket closed with 1009. A key revoked, expired or whose
tenant is suspended while its socket is open closes the socket with 4401 within
ATP_SNAPSHOT_CHECK_SECONDS. A request whose id is still running is refused with the code
`duplicate_id`; the running request is unaffected.

Every request runs through the same pipeline as POST /v1/chat/completions with
`stream: true` and usage included: routes, hints, cache, fallbacks, accounting and the
audit record. Requests run concurrently (at most ATP_REALTIME_MAX_IN_FLIGHT per socket);
closing the socket cancels what is still running, and cancelled requests are logged as
such with the usage streamed so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import orjson
from channels.generic.websocket import AsyncWebsocketConsumer

from apps.routing.pipeline import openai_api
from apps.routing.pipeline.admit import finish
from apps.routing.pipeline.auth import authenticate
from apps.routing.pipeline.context import RequestContext
from apps.routing.pipeline.results import JsonResult
from apps.routing.pipeline.settle import settle
from apps.routing.schemas import MAX_DEPTH, nested_too_deep
from apps.routing.snapshot import holder
from apps.routing.socket_slots import REFRESH_SECONDS, get_slots
from atp_site.lib import tracing
from atp_site.lib.errors import (
    ATPError,
    AuthenticationFailed,
    InvalidRequest,
    RateLimited,
    openai_error_body,
)
from atp_site.lib.hot_settings import hot
from atp_site.lib.identifiers import control_free
from atp_site.lib.logs import request_context
from atp_site.lib.request_ids import new_request_id

logger = logging.getLogger(__name__)

_ID_MAX = 128
# Request headers a message may carry for the pipeline (routing hints, cache control).
_FORWARDED = ("x-atp-", "cache-control")
# Close codes (4000-4999 are the application's): the key is missing, wrong, revoked or
# expired, or the socket never authenticated; too many sockets for the key; and RFC 6455's
# "message too big".
CLOSE_UNAUTHENTICATED = 4401
CLOSE_TOO_MANY_SOCKETS = 4429
CLOSE_MESSAGE_TOO_BIG = 1009
# The shortest pause between two checks of an open socket's key.
_MIN_WATCH_SECONDS = 0.05


def _frame(payload: dict[str, Any]) -> str:
    return orjson.dumps(payload).decode()


def _too_big(text_data: str | None, bytes_data: bytes | None, limit: int) -> bool:
    if text_data is None:
        return len(bytes_data or b"") > limit
    # A character is at most 4 bytes in UTF-8: encode only when the length is in doubt.
    return len(text_data) > limit or (
        len(text_data) * 4 > limit and len(text_data.encode("utf-8", "surrogatepass")) > limit
    )


class RealtimeConsumer(AsyncWebsocketConsumer):
    """One client socket; each request is a task streaming its chunks back."""

    async def connect(self) -> None:
        self.headers = dict(self.scope.get("headers") or ())
        self.authorization: bytes | None = None
        self.key_id: str | None = None
        self.socket_id = new_request_id()
        self.tasks: dict[str, asyncio.Task] = {}
        self.watchers: list[asyncio.Task] = []
        await self.accept()
        if self.headers.get(b"authorization"):
            await self._authenticate(self.headers[b"authorization"])
        else:
            self.watchers.append(asyncio.ensure_future(self._auth_deadline()))

    async def disconnect(self, code: int) -> None:
        for task in [*self.watchers, *self.tasks.values()]:
            task.cancel()
        for task in [*self.watchers, *self.tasks.values()]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks.clear()
        self.watchers.clear()
        if self.key_id is not None:
            await get_slots().release(self.key_id, self.socket_id)
            self.key_id = None

    async def _refuse(self, err: ATPError, code: int) -> None:
        await self._error(None, err)
        await self.close(code=code)

    async def _authenticate(self, authorization: bytes) -> bool:
        snapshot = await holder.get()
        try:
            key = authenticate(snapshot, {b"authorization": authorization})
        except ATPError as err:
            await self._refuse(err, CLOSE_UNAUTHENTICATED)
            return False
        limit = hot.ATP_REALTIME_MAX_SOCKETS_PER_KEY
        if not await get_slots().acquire(key.id, self.socket_id, limit):
            await self._refuse(
                RateLimited(
                    f"This API key already has {limit} open realtime sockets "
                    "(ATP_REALTIME_MAX_SOCKETS_PER_KEY); close one first.",
                    code="too_many_sockets",
                ),
                CLOSE_TOO_MANY_SOCKETS,
            )
            return False
        self.key_id = key.id
        self.authorization = authorization
        for task in self.watchers:  # the authentication deadline
            task.cancel()
        self.watchers = [asyncio.ensure_future(self._watch_key())]
        await self.send(_frame({"type": "ready", "tenant": key.tenant_slug}))
        return True

    async def _auth_deadline(self) -> None:
        await asyncio.sleep(hot.ATP_REALTIME_AUTH_TIMEOUT_SECONDS)
        if self.authorization is None:
            await self._refuse(
                AuthenticationFailed(
                    f"No authentication within {hot.ATP_REALTIME_AUTH_TIMEOUT_SECONDS:g} "
                    "seconds of connecting.",
                    code="auth_timeout",
                ),
                CLOSE_UNAUTHENTICATED,
            )

    async def _watch_key(self) -> None:
        """Close the socket once its key is no longer valid; keep its slot's lease alive."""
        refreshed = time.monotonic()
        while True:
            await asyncio.sleep(max(hot.ATP_SNAPSHOT_CHECK_SECONDS, _MIN_WATCH_SECONDS))
            try:
                snapshot = await holder.get()
            except Exception:
                logger.warning("realtime: configuration snapshot unavailable", exc_info=True)
                continue
            try:
                authenticate(snapshot, {b"authorization": self.authorization})
            except ATPError as err:
                await self._refuse(err, CLOSE_UNAUTHENTICATED)
                return
            if time.monotonic() - refreshed >= REFRESH_SECONDS:
                refreshed = time.monotonic()
                await get_slots().refresh(self.key_id, self.socket_id)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        if _too_big(text_data, bytes_data, hot.ATP_MAX_BODY_BYTES):
            await self._refuse(
                InvalidRequest(
                    f"Messages are limited to {hot.ATP_MAX_BODY_BYTES} bytes.",
                    code="message_too_large",
                ),
                CLOSE_MESSAGE_TOO_BIG,
            )
            return
        # Kept for the nesting check of a request's body (a bracket count before any walk).
        self._raw = text_data if text_data is not None else bytes_data or b""
        try:
            message = orjson.loads(self._raw)
        except orjson.JSONDecodeError:
            await self._error(None, InvalidRequest("Messages must be JSON objects."))
            return
        if not isinstance(message, dict):
            await self._error(None, InvalidRequest("Messages must be JSON objects."))
            return
        kind = message.get("type")
        if kind == "ping":
            await self.send(_frame({"type": "pong"}))
            return
        if self.authorization is None:
            if kind == "auth" and isinstance(message.get("api_key"), str):
                await self._authenticate(f"Bearer {message['api_key']}".encode())
                return
            await self._error(
                None,
                AuthenticationFailed(
                    "Authenticate first: send an Authorization header with the upgrade "
                    'request or {"type": "auth", "api_key": "..."}.',
                    code="missing_api_key",
                ),
            )
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        request_id = message.get("id")
        if kind not in ("request", "cancel"):
            await self._error(
                request_id if isinstance(request_id, str) else None,
                InvalidRequest("'type' must be request, cancel or ping.", param="type"),
            )
            return
        if (
            not isinstance(request_id, str)
            or not 0 < len(request_id) <= _ID_MAX
            or not control_free(request_id)
        ):
            await self._error(
                None,
                InvalidRequest(
                    "'id' must be a string of 1-128 characters without control characters.",
                    param="id",
                ),
            )
            return
        if kind == "cancel":
            task = self.tasks.get(request_id)
            if task is not None:
                task.cancel()
            return
        if request_id in self.tasks:
            # A code of its own: the error frame carries the running request's id, and
            # must not read as that request failing.
            await self._error(
                request_id,
                InvalidRequest(
                    f"Request '{request_id}' is still running; this one was refused.",
                    param="id",
                    code="duplicate_id",
                ),
            )
            return
        if len(self.tasks) >= hot.ATP_REALTIME_MAX_IN_FLIGHT:
            await self._error(
                request_id,
                InvalidRequest(
                    f"At most {hot.ATP_REALTIME_MAX_IN_FLIGHT} requests may run at once "
                    "on one socket.",
                    code="too_many_in_flight",
                ),
            )
            return
        body = message.get("body")
        if not isinstance(body, dict):
            await self._error(
                request_id, InvalidRequest("'body' must be a chat request object.", param="body")
            )
            return
        if nested_too_deep(self._raw, body):
            await self._error(
                request_id,
                InvalidRequest(
                    f"'body' is nested more than {MAX_DEPTH} levels deep.",
                    param="body",
                    code="nested_too_deep",
                ),
            )
            return
        extra = message.get("headers") or {}
        if not isinstance(extra, dict):
            await self._error(
                request_id, InvalidRequest("'headers' must be an object.", param="headers")
            )
            return
        task = asyncio.ensure_future(self._run(request_id, body, extra))
        self.tasks[request_id] = task
        task.add_done_callback(lambda _t, rid=request_id: self.tasks.pop(rid, None))

    async def _run(self, cid: str, body: dict[str, Any], extra: dict[str, Any]) -> None:
        headers = {b"authorization": self.authorization}
        for name, value in extra.items():
            lname = str(name).lower()
            if isinstance(value, str) and lname.startswith(_FORWARDED):
                headers[lname.encode("latin-1")] = value.encode("latin-1", "replace")
        body = {
            **body,
            "stream": True,
            "stream_options": {**(body.get("stream_options") or {}), "include_usage": True},
        }
        ctx = RequestContext(request_id=new_request_id(), endpoint="realtime.chat.completions")
        request_context.set(ctx)  # this message's task: its log records carry its ids
        if tracing.enabled:  # this message's task: one trace per request on the socket
            tracing.start_request(ctx, headers, "WEBSOCKET", "/v1/realtime")
        status = 200
        events = None
        try:
            result = await openai_api.chat_completions(ctx, headers, orjson.dumps(body))
            if isinstance(result, JsonResult):  # not expected with stream on; answer anyway
                await self.send(_frame({"type": "chunk", "id": cid, "data": result.body}))
                await self._done(cid, ctx, None)
                return
            events = result.events
            usage = None
            async for frame in events:
                payload = frame[len(b"data: ") :].strip()
                if payload == b"[DONE]":
                    break
                chunk = orjson.loads(payload)
                if "error" in chunk and "choices" not in chunk:
                    await self.send(_frame({"type": "error", "id": cid, **chunk}))
                    return
                if chunk.get("usage") and not chunk.get("choices"):
                    usage = chunk
                    continue
                await self.send(_frame({"type": "chunk", "id": cid, "data": chunk}))
            await self._done(cid, ctx, usage)
        except ATPError as err:
            status = err.status
            await self._error(cid, err, ctx.request_id)
        except asyncio.CancelledError:
            status = 499
            if events is not None:
                with contextlib.suppress(Exception):
                    await events.aclose()  # settles the request as cancelled
            elif ctx.key is not None:
                settle(ctx, http_status=499, cancelled=True)  # cancelled before its first byte
            with contextlib.suppress(Exception):
                await self.send(
                    _frame({"type": "cancelled", "id": cid, "request_id": ctx.request_id})
                )
            raise
        except Exception:
            status = 500
            logger.exception("realtime request %s failed unexpectedly", ctx.request_id)
            await self._error(
                cid,
                ATPError("The server had an error while processing your request.", status=500),
                ctx.request_id,
            )
        finally:
            finish(ctx)
            if ctx.span is not None:
                tracing.end_request(ctx, status)

    async def _done(self, cid: str, ctx: RequestContext, usage_chunk: dict | None) -> None:
        dep = ctx.deployment
        out: dict[str, Any] = {
            "type": "done",
            "id": cid,
            "request_id": ctx.request_id,
            "model": dep.public_name if dep else None,
            "provider": dep.provider_name if dep else None,
            "route": ctx.route or None,
            "cache": ctx.cache or None,
        }
        if usage_chunk is not None:
            out["usage"] = usage_chunk.get("usage")
            out["cost_usd"] = (usage_chunk.get("atp") or {}).get("cost_usd")
        await self.send(_frame(out))

    async def _error(self, cid: str | None, err: ATPError, request_id: str = "") -> None:
        body = openai_error_body(err, request_id or new_request_id())
        await self.send(_frame({"type": "error", "id": cid, **body}))


realtime_app = RealtimeConsumer.as_asgi()
