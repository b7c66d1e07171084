"""What a pipeline handler returns for the edge (HTTP consumer or WebSocket) to render."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(slots=True)
class JsonResult:
    status: int
    body: Any
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def encode(self) -> bytes:
        return orjson.dumps(self.body)


@dataclass(slots=True)
class StreamResult:
    """A server-sent-event stream: `events` yields complete SSE frames as bytes."""

    events: AsyncIterator[bytes]
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    status: int = 200


def sse(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"
