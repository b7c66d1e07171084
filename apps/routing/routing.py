"""ASGI routes of the data plane: /v1 HTTP paths and (later) WebSocket paths."""

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


websocket_urlpatterns: list = []
