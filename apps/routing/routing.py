"""ASGI routes of the data plane: /v1 HTTP paths and (later) WebSocket paths."""

from __future__ import annotations

from django.urls import re_path

from apps.routing.consumers import V1Consumer

http_urlpatterns = [re_path(r"^v1/", V1Consumer.as_asgi())]

websocket_urlpatterns: list = []
