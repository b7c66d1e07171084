"""A minimal pipelined Redis connection for the commands the data plane sends per request.

redis-py's asyncio client costs about 50 µs of CPU per command (a connection taken from
and returned to a pool under a lock, command packing and reply parsing in layers of
Python), which at thousands of requests a second per process is a large share of a
request's budget. The per-request commands (the limit scripts, EVALSHA with one argument;
the write-behind journal's RPUSH) go through this client instead: one connection per
event loop, each command written straight to the socket, replies matched in order (Redis
answers a connection's commands in the order it received them) and parsed by hiredis.

Everything else (the cache, breakers, journal trims and recovery, health checks) keeps
using redis-py.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections import deque
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis

CONNECT_TIMEOUT = 2.0
REPLY_TIMEOUT = 2.0


class RedisReplyError(Exception):
    """Redis answered a command with an error."""


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def command(*parts: bytes) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(_bulk(p) for p in parts)


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reader = hiredis.Reader()
        self.waiting: deque[asyncio.Future] = deque()
        self.deadlines: deque[float] = deque()  # when each waiting reply is overdue
        self.watchdog: asyncio.TimerHandle | None = None
        self.lost: BaseException | None = None
        # Commands of this loop turn, written together when the turn ends (one write
        # for the admissions, settlements and journal pushes of many requests).
        self.out: list[bytes] = []

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """One timer per connection, not one per command: a reply overdue by
        REPLY_TIMEOUT aborts the connection, which fails every command waiting on it."""
        if self.watchdog is None:
            self.watchdog = loop.call_later(REPLY_TIMEOUT / 2, self._check, loop)

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        self.watchdog = None
        if not self.waiting:
            return
        if self.deadlines[0] <= loop.time():
            if self.transport is not None:
                self.transport.abort()
            return
        self.watch(loop)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def flush(self) -> None:
        out, self.out = self.out, []
        if self.lost is None and self.transport is not None:
            self.transport.write(b"".join(out))
        else:
            self._fail_waiting()

    def _fail_waiting(self) -> None:
        self.deadlines.clear()
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(ConnectionError(str(self.lost)))

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            reply = self.reader.gets()
            if reply is False:
                return
            if not self.waiting:  # a reply nobody waits for (timed out): drop it
                continue
            future = self.waiting.popleft()
            self.deadlines.popleft()
            if future.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(RedisReplyError(str(reply)))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = exc or ConnectionResetError("Redis closed the connection")
        self._fail_waiting()


class PipelinedClient:
    """Sends commands over one pipelined connection per event loop."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conns: dict[asyncio.AbstractEventLoop, _Protocol] = {}
        self._connecting: dict[asyncio.AbstractEventLoop, asyncio.Future] = {}

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Protocol:
        parts = urlsplit(self.url)
        if parts.scheme == "unix":
            _, proto = await loop.create_unix_connection(_Protocol, parts.path)
        else:
            context = ssl.create_default_context() if parts.scheme == "rediss" else None
            _, proto = await loop.create_connection(
                _Protocol, parts.hostname or "127.0.0.1", parts.port or 6379, ssl=context
            )
        setup = []
        if parts.password:
            user = unquote(parts.username) if parts.username else None
            password = unquote(parts.password)
            setup.append(
                command(b"AUTH", user.encode(), password.encode())
                if user
                else command(b"AUTH", password.encode())
            )
        db = (parts.path or "/").strip("/")
        if db and db != "0":
            setup.append(command(b"SELECT", db.encode()))
        for cmd in setup:
            await self._send(proto, loop, cmd)
        return proto

    async def _connection(self) -> tuple[_Protocol, asyncio.AbstractEventLoop]:
        loop = asyncio.get_running_loop()
        proto = self._conns.get(loop)
        if proto is not None and proto.lost is None:
            return proto, loop
        pending = self._connecting.get(loop)
        if pending is None:
            for stale in [lp for lp in self._conns if lp.is_closed()]:
                self._conns.pop(stale, None)
            pending = self._connecting[loop] = loop.create_future()
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    proto = await self._open(loop)
            except BaseException as exc:
                pending.set_exception(ConnectionError(f"Redis unreachable: {exc!r}"))
                pending.exception()  # retrieved: no "never retrieved" warning
                self._connecting.pop(loop, None)
                raise ConnectionError(f"Redis unreachable: {type(exc).__name__}") from None
            self._conns[loop] = proto
            self._connecting.pop(loop, None)
            pending.set_result(proto)
            return proto, loop
        return await asyncio.shield(pending), loop

    @staticmethod
    async def _send(proto: _Protocol, loop: asyncio.AbstractEventLoop, payload: bytes) -> Any:
        if proto.lost is not None:
            raise ConnectionError(str(proto.lost))
        future = loop.create_future()
        proto.waiting.append(future)
        proto.deadlines.append(loop.time() + REPLY_TIMEOUT)
        if not proto.out:
            loop.call_soon(proto.flush)
        proto.out.append(payload)
        proto.watch(loop)
        return await future

    async def command(self, *parts: bytes) -> Any:
        """Send one command (its parts already bytes) and return Redis's reply."""
        proto, loop = await self._connection()
        return await self._send(proto, loop, command(*parts))

    async def run(self, script: Script, arg: bytes) -> Any:
        proto, loop = await self._connection()
        try:
            return await self._send(proto, loop, script.evalsha(arg))
        except RedisReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            return await self._send(proto, loop, script.eval(arg))

    async def close(self) -> None:
        proto = self._conns.pop(asyncio.get_running_loop(), None)
        if proto is not None and proto.transport is not None:
            proto.transport.close()


_shared: dict[str, PipelinedClient] = {}


def shared_client(url: str) -> PipelinedClient:
    """The process's pipelined client for `url`: the limit counters and every queue's
    journal share its connection per event loop, so their commands of one loop turn
    leave in one write and their replies arrive in one read."""
    client = _shared.get(url)
    if client is None:
        client = _shared[url] = PipelinedClient(url)
    return client


class Script:
    """A Lua script sent by SHA1 (EVALSHA), and in full the first time Redis lacks it."""

    def __init__(self, source: str) -> None:
        self.source = source.encode()
        self.sha = hashlib.sha1(self.source).hexdigest().encode()  # noqa: S324 - Redis's id
        self._evalsha_head = b"*4\r\n" + _bulk(b"EVALSHA") + _bulk(self.sha) + _bulk(b"0")
        self._eval_head = b"*4\r\n" + _bulk(b"EVAL") + _bulk(self.source) + _bulk(b"0")

    def evalsha(self, arg: bytes) -> bytes:
        return self._evalsha_head + _bulk(arg)

    def eval(self, arg: bytes) -> bytes:
        return self._eval_head + _bulk(arg)
