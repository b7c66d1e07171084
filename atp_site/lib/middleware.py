"""Django middleware shared by the console, admin and management API."""

from __future__ import annotations

import re
import uuid

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class RequestIdMiddleware:
    """Give every response an `X-Request-ID`: the caller's when it is sane, else a new one."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get("X-Request-ID", "")
        request.request_id = given if _REQUEST_ID.match(given) else f"req_{uuid.uuid4().hex}"
        response = self.get_response(request)
        response.headers.setdefault("X-Request-ID", request.request_id)
        return response
