"""The Content-Security-Policy of each response: the strict default, per-view exceptions.

Every page ATP renders itself runs with no inline script and no inline style. Two
third-party pages cannot: Swagger UI and Redoc (drf-spectacular, served from this
server's static files) write `<style>` elements and `style` attributes as they render,
Redoc starts a web worker from a blob: URL, and Swagger UI is started by an inline
script. Those views, named in PAGE_POLICIES, get what they need and nothing more: inline
styles, the worker, and for Swagger UI's start-up script a per-request nonce
(templates/drf_spectacular/swagger_ui.html); every other script still loads from this
server only.
"""

from __future__ import annotations

from csp.constants import NONCE
from csp.middleware import CSPMiddleware, PolicyParts
from django.http import HttpRequest, HttpResponseBase

UNSAFE_INLINE = "'unsafe-inline'"

# URL name -> the directives added for that view.
PAGE_POLICIES: dict[str, dict[str, list[str]]] = {
    "api-docs": {"script-src": [NONCE], "style-src": [UNSAFE_INLINE]},
    "api-redoc": {"style-src": [UNSAFE_INLINE], "worker-src": ["'self'", "blob:"]},
}


class PolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, adding the WebSocket origin and the per-view exceptions."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if report_only:
            return parts
        host = request.get_host()
        update: dict[str, list[str]] = {"connect-src": [f"ws://{host}", f"wss://{host}"]}
        match = getattr(request, "resolver_match", None)
        for directive, sources in PAGE_POLICIES.get(match.url_name if match else "", {}).items():
            update.setdefault(directive, []).extend(sources)
        for directive, sources in (parts.update or {}).items():
            update.setdefault(directive, []).extend(
                [sources] if isinstance(sources, str) else sources
            )
        parts.update = update
        return parts
