"""The ASGI application: /v1 data plane consumers first, then Django, WebSockets, lifespan."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atp_site.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from apps.routing import lifecycle  # noqa: E402
from apps.routing.routing import (  # noqa: E402
    http_router,
    websocket_router,
    websocket_urlpatterns,
)

application = ProtocolTypeRouter(
    {
        "http": http_router(django_asgi_app),
        "websocket": websocket_router(
            AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
        "lifespan": lifecycle.lifespan,
    }
)
