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
     "usage": {...}, "cost_usd": "0.00001234"}
    {"type": "cancelled", "id": "c1", "request_id": "..."}
    {"type": "error", "id": "c1" | null, "error": {<OpenAI error object>}}
    {"type": "pong"}

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
from typing import Any

import orjson
from channels.generic.websocket import AsyncWebsocketConsumer

from apps.routing.pipeline import openai_api
from apps.routing.pipeline.auth import authenticate
from apps.routing.pipeline.context import RequestContext
from apps.routing.pipeline.results import JsonResult
from apps.routing.pipeline.settle import settle
from apps.routing.snapshot import holder
from atp_site.lib.errors import ATPError, AuthenticationFailed, InvalidRequest, openai_error_body
from atp_site.lib.hot_settings import hot
from atp_site.lib.identifiers import control_free
from atp_site.lib.request_ids import new_request_id

logger = logging.getLogger(__name__)

_ID_MAX = 128
# Request headers a message may carry for the pipeline (routing hints, cache control).
_FORWARDED = ("x-atp-", "cache-control")


def _frame(payload: dict[str, Any]) -> str:
    return orjson.dumps(payload).decode()


class RealtimeConsumer(AsyncWebsocketConsumer):
    """One client socket; each request is a task streaming its chunks back."""

    async def connect(self) -> None:
        self.headers = dict(self.scope.get("headers") or ())
        self.authorization: bytes | None = None
        self.tasks: dict[str, asyncio.Task] = {}
        await self.accept()
        if self.headers.get(b"authorization"):
            await self._authenticate(self.headers[b"authorization"])

    async def disconnect(self, code: int) -> None:
        for task in list(self.tasks.values()):
            task.cancel()
        for task in list(self.tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks.clear()

    async def _authenticate(self, authorization: bytes) -> bool:
        snapshot = await holder.get()
        try:
            key = authenticate(snapshot, {b"authorization": authorization})
        except ATPError as err:
            await self._error(None, err)
            await self.close(code=4401)
            return False
        self.authorization = authorization
        await self.send(_frame({"type": "ready", "tenant": key.tenant_slug}))
        return True

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        try:
            message = orjson.loads(text_data if text_data is not None else bytes_data or b"")
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
            await self.close(code=4401)
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
            await self._error(
                request_id, InvalidRequest(f"Request '{request_id}' is still running.", param="id")
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
            await self._error(cid, err, ctx.request_id)
        except asyncio.CancelledError:
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
            logger.exception("realtime request %s failed unexpectedly", ctx.request_id)
            await self._error(
                cid,
                ATPError("The server had an error while processing your request.", status=500),
                ctx.request_id,
            )

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
