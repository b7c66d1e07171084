"""The console's WebSocket at /ws/console/: live topics, each filtered by the viewer's
permissions, re-checked while the socket is open.

Frames (JSON):

    client: {"type": "subscribe", "topics": ["system.metrics", ...]}
            {"type": "unsubscribe", "topics": [...]}
    server: {"type": "subscribed", "topic": t}
            {"type": "error", "topic": t, "code": "forbidden" | "unknown_topic", "message": m}
            {"type": "error", "code": "bad_frame", "message": m}
            {"type": "update", "topic": t, "data": ...}

The socket is authenticated by the session cookie (AuthMiddlewareStack, behind the
origin check in atp_site.asgi). A refused topic leaves the socket open. Every
TICK_SECONDS, and before each push of the request stream, the session and the viewer's
permissions are read again: the socket closes with 4401 when the viewer signed out (or the
session expired, or the account was disabled) and 4403 when a subscribed topic is no longer
allowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from atp_site.console.live import figures
from atp_site.console.live.publisher import REQUESTS_GROUP
from atp_site.console.live.topics import REQUESTS_STREAM, TOPICS

logger = logging.getLogger(__name__)

TICK_SECONDS = 2.0
CLOSE_SIGNED_OUT = 4401
CLOSE_FORBIDDEN = 4403
MAX_TOPICS_PER_FRAME = 20


def _current_user(session_key: str | None) -> Any:
    """The user the session still signs in (None when signed out, expired or disabled)."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib import auth

    if not session_key:
        return None
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)

    class _Request:
        session = store

    user = auth.get_user(_Request)
    if not user.is_authenticated or not user.is_active or _past_lifetime(store):
        return None
    return user


def _past_lifetime(session: Any) -> bool:
    """The sign-in policy's absolute and idle lifetimes (atp_site.auth.middleware), read
    without touching the session: a page's socket does not keep its session alive."""
    from django.conf import settings

    signed_in = session.get("atp_signed_in_at")
    if signed_in is None:
        return False
    now = time.time()
    absolute = getattr(settings, "ATP_SESSION_SECONDS", None)
    idle = getattr(settings, "ATP_SESSION_IDLE_SECONDS", None)
    if absolute and now - signed_in > absolute:
        return True
    return bool(idle and now - session.get("atp_seen_at", signed_in) > idle)


def _access(session_key: str | None) -> figures.ViewerScope | None:
    user = _current_user(session_key)
    return figures.viewer_scope(user) if user is not None else None


def _figures(scope: figures.ViewerScope) -> dict[str, Any]:
    return figures.figures_for(scope)


def _with_tenant_names(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = figures._tenant_names({r["tenant_id"] for r in rows if r.get("tenant_id")})
    return [{**r, "tenant": names.get(r.get("tenant_id") or "", "")} for r in rows]


class ConsoleConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.topics: set[str] = set()
        self.scope_of_viewer: figures.ViewerScope | None = None
        self.in_group = False
        self.ticker: asyncio.Task | None = None
        self.closed = False
        session = self.scope.get("session")
        self.session_key = getattr(session, "session_key", None)
        user = self.scope.get("user")
        await self.accept()
        if user is None or not user.is_authenticated:
            await self._close(CLOSE_SIGNED_OUT)
            return
        self.ticker = asyncio.get_running_loop().create_task(self._tick())

    async def disconnect(self, code: int) -> None:
        self.closed = True
        if getattr(self, "ticker", None) is not None:
            self.ticker.cancel()
        if getattr(self, "in_group", False):
            await self.channel_layer.group_discard(REQUESTS_GROUP, self.channel_name)
            self.in_group = False

    async def _close(self, code: int) -> None:
        if self.closed:
            return
        self.closed = True
        if self.in_group:
            with contextlib.suppress(Exception):
                await self.channel_layer.group_discard(REQUESTS_GROUP, self.channel_name)
            self.in_group = False
        if self.ticker is not None and self.ticker is not asyncio.current_task():
            self.ticker.cancel()
        await self.close(code=code)

    async def _check(self) -> figures.ViewerScope | None:
        """Read the session and permissions again; close the socket when they are gone."""
        scope = await database_sync_to_async(_access)(self.session_key)
        if scope is None:
            await self._close(CLOSE_SIGNED_OUT)
            return None
        if any(not TOPICS[t].allowed(scope) for t in self.topics):
            await self._close(CLOSE_FORBIDDEN)
            return None
        self.scope_of_viewer = scope
        return scope

    # --- frames from the browser -------------------------------------------------------------

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if self.closed:
            return
        kind = content.get("type") if isinstance(content, dict) else None
        names = content.get("topics") if isinstance(content, dict) else None
        if kind not in ("subscribe", "unsubscribe") or not isinstance(names, list):
            await self.send_json(
                {
                    "type": "error",
                    "code": "bad_frame",
                    "message": 'Send {"type": "subscribe", "topics": [...]}.',
                }
            )
            return
        names = [n for n in names if isinstance(n, str)][:MAX_TOPICS_PER_FRAME]
        if kind == "unsubscribe":
            self.topics.difference_update(names)
            if REQUESTS_STREAM not in self.topics and self.in_group:
                await self.channel_layer.group_discard(REQUESTS_GROUP, self.channel_name)
                self.in_group = False
            return
        scope = await self._check()
        if scope is None:
            return
        added = []
        for name in names:
            topic = TOPICS.get(name)
            if topic is None:
                await self.send_json(
                    {
                        "type": "error",
                        "topic": name[:100],
                        "code": "unknown_topic",
                        "message": f"There is no topic {name[:100]!r}.",
                    }
                )
            elif not topic.allowed(scope):
                await self.send_json(
                    {
                        "type": "error",
                        "topic": name,
                        "code": "forbidden",
                        "message": f"You may not see {name}.",
                    }
                )
            else:
                self.topics.add(name)
                added.append(name)
                await self.send_json({"type": "subscribed", "topic": name})
        if REQUESTS_STREAM in self.topics and not self.in_group:
            await self.channel_layer.group_add(REQUESTS_GROUP, self.channel_name)
            self.in_group = True
        if any(TOPICS[n].figures_key for n in added):
            await self._push_figures(scope, only=added)

    # --- pushes -------------------------------------------------------------------------------

    async def _tick(self) -> None:
        while not self.closed:
            await asyncio.sleep(TICK_SECONDS)
            try:
                scope = await self._check()
                if scope is None:
                    return
                await self._push_figures(scope)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("console socket: figures not pushed")

    async def _push_figures(self, scope: figures.ViewerScope, only: list[str] | None = None):
        wanted = [t for t in (only or sorted(self.topics)) if TOPICS[t].figures_key]
        if not wanted or self.closed:
            return
        data = await database_sync_to_async(_figures)(scope)
        for name in wanted:
            key = TOPICS[name].figures_key
            if key in data:
                await self.send_json({"type": "update", "topic": name, "data": data[key]})

    async def requests_batch(self, event: dict[str, Any]) -> None:
        """Requests settled by some gateway process (channel layer group message)."""
        if self.closed or REQUESTS_STREAM not in self.topics:
            return
        scope = await self._check()
        if scope is None:
            return
        rows = [r for r in event.get("rows", []) if scope.sees_tenant(r.get("tenant_id"))]
        if not rows:
            return
        rows = await database_sync_to_async(_with_tenant_names)(rows)
        await self.send_json(
            {"type": "update", "topic": REQUESTS_STREAM, "data": {"requests": rows}}
        )
