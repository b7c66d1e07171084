"""The /v1 HTTP edge: parse, run the pipeline, render JSON or SSE in the caller's shape."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import orjson
from channels.exceptions import StopConsumer
from channels.generic.http import AsyncHttpConsumer

from apps.routing.pipeline import anthropic_api, native_api, openai_api
from apps.routing.pipeline.admit import finish
from apps.routing.pipeline.context import RequestContext, request_id_from
from apps.routing.pipeline.results import JsonResult, StreamResult
from atp_site.lib import tracing
from atp_site.lib.errors import (
    ATPError,
    NotFound,
    PayloadTooLarge,
    anthropic_error_body,
    openai_error_body,
)
from atp_site.lib.hot_settings import hot
from atp_site.lib.logs import request_context, trace_id_from
from atp_site.lib.request_ids import new_request_id

logger = logging.getLogger(__name__)

# Relaying a stream: events relayed before other requests get a turn, and events waiting
# for a slow caller before the upstream is read further.
FRAMES_PER_TURN = 16
MAX_QUEUED_FRAMES = 1024

Handler = Callable[..., Awaitable[JsonResult | StreamResult]]

JSON = (b"content-type", b"application/json")
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]

# (method, path) -> (endpoint name, handler, error shape)
ROUTES: dict[tuple[str, str], tuple[str, Handler, str]] = {
    ("POST", "/v1/chat/completions"): ("chat.completions", openai_api.chat_completions, "openai"),
    ("POST", "/v1/embeddings"): ("embeddings", openai_api.embeddings, "openai"),
    ("GET", "/v1/models"): ("models", openai_api.list_models, "openai"),
    ("POST", "/v1/messages"): ("messages", anthropic_api.messages, "anthropic"),
    ("POST", "/v1/route"): ("route", native_api.route, "openai"),
    ("POST", "/v1/ask"): ("ask", native_api.ask, "openai"),
    ("POST", "/v1/feedback"): ("feedback", native_api.feedback, "openai"),
}
PATHS = {path for _, path in ROUTES}


class MethodNotAllowed(ATPError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class V1Consumer(AsyncHttpConsumer):
    """Serves every /v1 path. No channel layer and no database connection handling:
    the data plane never touches the database on the request path."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.size = 0
        self.stream_task: asyncio.Task | None = None
        self.shape = "openai"
        self.bad_request_id: ATPError | None = None

    async def __call__(self, scope, receive, send) -> None:
        # AsyncConsumer.__call__ looks up a channel layer and runs a task per received
        # message; an HTTP request needs neither, so read messages in a plain loop.
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message) -> None:
        # AsyncConsumer.dispatch closes old DB connections through a thread hop on
        # every message; the data plane holds none, so skip it.
        if message["type"] == "http.request":
            await self.http_request(message)
        elif message["type"] == "http.disconnect":
            await self.http_disconnect(message)

    async def http_request(self, message) -> None:
        if not self.body:
            self.headers = dict(self.scope["headers"])
            try:
                self.request_id = request_id_from(self.headers)
            except ATPError as err:  # answered once the path says in which shape
                self.request_id, self.bad_request_id = new_request_id(), err
            length = self.headers.get(b"content-length")
            if length and length.isdigit() and int(length) > hot.ATP_MAX_BODY_BYTES:
                await self._too_large()
        chunk = message.get("body", b"")
        self.size += len(chunk)
        if self.size > hot.ATP_MAX_BODY_BYTES:
            await self._too_large()
        self.body.append(chunk)
        if message.get("more_body"):
            return
        await self.respond(b"".join(self.body))
        if self.stream_task is None:
            raise StopConsumer()

    async def http_disconnect(self, message) -> None:
        if self.stream_task is not None and not self.stream_task.done():
            self.stream_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.stream_task
        raise StopConsumer()

    async def _too_large(self) -> None:
        err = PayloadTooLarge(
            f"The request body is larger than the limit of {hot.ATP_MAX_BODY_BYTES} bytes."
        )
        await self._send_error(err)
        raise StopConsumer()

    async def respond(self, raw: bytes) -> None:
        scope = self.scope
        path = scope["path"].rstrip("/") or "/"
        method = scope["method"]
        route = ROUTES.get((method, path))
        args: tuple = ()
        if route is None and method == "GET" and path.startswith("/v1/models/"):
            route = ("models", openai_api.retrieve_model, "openai")
            args = (path[len("/v1/models/") :],)
        if route is not None:
            self.shape = route[2]
        ctx = RequestContext(request_id=self.request_id, endpoint=route[0] if route else path)
        if tracing.enabled:
            tracing.start_request(ctx, self.headers, method, path)
        elif b"traceparent" in self.headers:
            ctx.trace_id = trace_id_from(self.headers)
        request_context.set(ctx)
        try:
            if self.bad_request_id is not None:
                raise self.bad_request_id
            if route is None:
                if path in PATHS:
                    raise MethodNotAllowed(f"Method {method} is not allowed on {path}.")
                raise NotFound(f"Unknown path {method} {path}.", code="unknown_url")
            result = await route[1](ctx, self.headers, raw, *args)
        except ATPError as err:
            finish(ctx)
            await self._send_error(err)
            if ctx.span is not None:
                tracing.end_request(ctx, err.status)
            return
        except Exception:
            finish(ctx)
            logger.exception("request %s failed unexpectedly", self.request_id)
            await self._send_error(
                ATPError("The server had an error while processing your request.", status=500)
            )
            if ctx.span is not None:
                tracing.end_request(ctx, 500)
            return
        if ctx.admission is not None and ctx.admission.headers:
            result.headers = [*result.headers, *ctx.admission.headers]
        if isinstance(result, JsonResult):
            finish(ctx)
            await self._send_json(result.status, result.encode(), result.headers)
            if ctx.span is not None:
                tracing.end_request(ctx, result.status)
            return
        self.ctx = ctx
        self.stream_task = asyncio.ensure_future(self._pump(result))

    async def _pump(self, result: StreamResult) -> None:
        """Send the stream's frames, coalescing those that are ready at the same moment.

        A producer task drains the frame iterator into a queue without suspending while
        the upstream's data is already buffered; the sender then writes everything queued
        in one body message. A fast upstream's whole answer costs a few socket writes
        instead of one per event; a slow one still gets each event out as it arrives.

        A flooding upstream (thousands of events buffered at once) gets no more than
        FRAMES_PER_TURN events relayed before the producer lets other requests run, and
        no more than MAX_QUEUED_FRAMES waiting for a slow caller before it waits too.
        """
        events = result.events
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        room = asyncio.Event()
        room.set()

        async def produce() -> None:
            count = 0
            try:
                async for frame in events:
                    queue.put_nowait(frame)
                    count += 1
                    if count % FRAMES_PER_TURN == 0:
                        if queue.qsize() >= MAX_QUEUED_FRAMES:
                            room.clear()
                            await room.wait()
                        else:
                            await asyncio.sleep(0)
            finally:
                queue.put_nowait(None)

        producer = asyncio.ensure_future(produce())
        send = self.base_send
        finished = False
        try:
            await self.send_headers(
                status=result.status,
                headers=[
                    *SSE_HEADERS,
                    (b"x-request-id", self.request_id.encode()),
                    *result.headers,
                ],
            )
            while not finished:
                frame = await queue.get()
                parts = []
                while True:
                    if frame is None:
                        finished = True
                        break
                    parts.append(frame)
                    if queue.empty():
                        break
                    frame = queue.get_nowait()
                room.set()
                await send(
                    {
                        "type": "http.response.body",
                        "body": b"".join(parts),
                        "more_body": not finished,
                    }
                )
            await producer  # re-raises what the producer failed with
        except asyncio.CancelledError:
            producer.cancel()
            raise
        except Exception:
            logger.exception("stream %s failed unexpectedly", self.request_id)
            if not finished:
                await self.send_body(b"", more_body=False)
        finally:
            if not producer.done():
                producer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await producer
            await events.aclose()
            finish(self.ctx)
            if self.ctx.span is not None:
                tracing.end_request(self.ctx, result.status)

    async def _send_error(self, err: ATPError) -> None:
        if self.shape == "anthropic":
            body = anthropic_error_body(err, self.request_id)
        else:
            body = openai_error_body(err, self.request_id)
        headers = list(err.headers)
        if err.retry_after is not None:
            headers.append((b"retry-after", str(max(1, round(err.retry_after))).encode()))
        await self._send_json(err.status, orjson.dumps(body), headers)

    async def _send_json(
        self, status: int, payload: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        await self.send_response(
            status,
            payload,
            headers=[
                JSON,
                (b"content-length", str(len(payload)).encode()),
                (b"x-request-id", self.request_id.encode()),
                *headers,
            ],
        )
