"""Django middleware shared by the console, admin and management API."""

from __future__ import annotations

from atp_site.lib.request_ids import request_id_or_new


class RequestIdMiddleware:
    """Give every response an `X-Request-ID`: the caller's when it is sane, else a new one."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get("X-Request-ID", "")
        request.request_id = request_id_or_new(given)
        response = self.get_response(request)
        response.headers.setdefault("X-Request-ID", request.request_id)
        return response
