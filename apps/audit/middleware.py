"""Who is acting in a console, admin or management API request, for every audit event."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from apps.audit.context import (
    SYSTEM,
    AuditActor,
    _current,
    acting_as,
    current_actor,
    session_digest,
)


def source_of(path: str) -> str:
    if path.startswith("/admin/"):
        return "admin"
    if path.startswith("/api/"):
        return "api"
    return "console"


def actor_for(request: HttpRequest, user=None, *, session_id: str | None = None) -> AuditActor:
    """The actor of `request`, acting as `user` (default: the request's session user)."""
    if user is None:
        user = getattr(request, "user", None)
    authenticated = user is not None and user.is_authenticated
    if session_id is None:
        session = getattr(request, "session", None)
        session_id = session_digest(session.session_key) if session is not None else ""
    return AuditActor(
        user_id=str(user.pk) if authenticated else "",
        actor=user.get_username() if authenticated else "anonymous",
        source=source_of(request.path),
        session_id=session_id,
        request_id=getattr(request, "request_id", ""),
        ip_address=request.META.get("REMOTE_ADDR") or None,
    )


def adopt_actor(actor: AuditActor) -> None:
    """Make `actor` current for the rest of this request.

    For authentication that happens inside the view (DRF's token authentication), after
    the middleware has set the context; the middleware's reset still restores the value
    from before the request when it ends. Outside a request (no middleware context, as
    with a test client's `login()`), nothing would reset it, so it is left alone.
    """
    if current_actor() is SYSTEM:
        return
    _current.set(actor)


class AuditActorMiddleware:
    """Runs each request as its user, so services record who changed what, from where.

    Must come after AuthenticationMiddleware (it reads `request.user`) and after
    RequestIdMiddleware (it reads `request.request_id`).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with acting_as(actor_for(request)):
            return self.get_response(request)
