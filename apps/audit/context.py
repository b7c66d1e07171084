"""Who is acting: set once per request or command, read by every audit record."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class AuditActor:
    user_id: str = ""
    actor: str = "system"
    source: str = "system"
    session_id: str = ""
    request_id: str = ""
    ip_address: str | None = None

    def but(self, **changes) -> AuditActor:
        return replace(self, **changes)


SYSTEM = AuditActor()
_current: ContextVar[AuditActor] = ContextVar("atp_audit_actor", default=SYSTEM)


def current_actor() -> AuditActor:
    return _current.get()


@contextmanager
def acting_as(actor: AuditActor) -> Iterator[AuditActor]:
    token = _current.set(actor)
    try:
        yield actor
    finally:
        _current.reset(token)


def session_digest(session_key: str | None) -> str:
    """A stable reference to a session that cannot be used to hijack it."""
    if not session_key:
        return ""
    return hashlib.sha256(session_key.encode()).hexdigest()[:32]
