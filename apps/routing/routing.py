"""ASGI routes of the data plane: /v1 HTTP paths and the /v1/realtime WebSocket."""

from __future__ import annotations

from apps.routing.consumers import V1Consumer

V1_PREFIX = "/v1/"
v1_app = V1Consumer.as_asgi()


def http_router(django_app):
    """/v1/* to the data plane, everything else to Django.

    A prefix test instead of a URL resolver: the data plane sees every request first,
    so its dispatch is kept to a string comparison.
    """

    async def app(scope, receive, send):
        path = scope["path"]
        if path.startswith(V1_PREFIX) or path == "/v1":
            return await v1_app(scope, receive, send)
        return await django_app(scope, receive, send)

    return app


def _console_urlpatterns() -> list:
    # The console's live topics (session-authenticated, behind the origin check).
    from django.urls import path

    from atp_site.console.live.consumer import ConsoleConsumer

    return [path("ws/console/", ConsoleConsumer.as_asgi())]


websocket_urlpatterns: list = _console_urlpatterns()


def websocket_router(console_app):
    """/v1/realtime to the streaming consumer (API-key authenticated, so no origin or
    session checks); other WebSockets to the console's stack."""
    from apps.routing.realtime import realtime_app

    async def app(scope, receive, send):
        path = scope["path"].rstrip("/")
        if path == "/v1/realtime":
            return await realtime_app(scope, receive, send)
        if path.startswith("/v1"):
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 4404})
            return None
        return await console_app(scope, receive, send)

    return app
