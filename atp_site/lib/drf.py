"""DRF glue: one exception handler that renders ATPError and validation errors."""

from __future__ import annotations

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from atp_site.lib.errors import ATPError


def exception_handler(exc, context):
    if isinstance(exc, ATPError):
        body = {"detail": exc.message, "code": exc.code}
        if exc.param:
            body["field"] = exc.param
        return Response(body, status=exc.status)
    # Unknown exceptions return None and stay 500s, logged by Django.
    return drf_exception_handler(exc, context)
