"""Per-request state carried through the pipeline."""

from __future__ import annotations

import itertools
import os
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from apps.routing.snapshot import DeploymentInfo, KeyInfo

# Request ids: a random per-process prefix and a counter. Unique across processes without a
# system call per request (os.urandom per id showed in profiles).
_PROCESS_PREFIX = os.urandom(8).hex()
_counter = itertools.count(1)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def request_id_from(headers: dict[bytes, bytes]) -> str:
    """The caller's x-request-id when it is a sane token, else a new one."""
    given = headers.get(b"x-request-id")
    if given:
        text = given.decode("latin-1")
        if _REQUEST_ID.match(text):
            return text
    return f"req_{_PROCESS_PREFIX}{next(_counter):012x}"


@dataclass(slots=True)
class RequestContext:
    request_id: str
    endpoint: str
    started: float = field(default_factory=time.monotonic)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    key: KeyInfo | None = None
    requested_model: str = ""
    deployment: DeploymentInfo | None = None
    stream: bool = False
    end_user: str = ""
    first_token_at: float | None = None
    attempts: list[dict] = field(default_factory=list)

    def elapsed_ms(self, since: float | None = None) -> int:
        return int(((since or time.monotonic()) - self.started) * 1000)
