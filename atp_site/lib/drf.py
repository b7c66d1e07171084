"""DRF glue: one exception handler that renders ATPError, validation errors and conflicts.

Shapes (documented in the OpenAPI schema by atp_site.lib.openapi):
- a validation error: `{"<field>": ["message", ...], ...}` (400);
- any other DRF error: `{"detail": "..."}`;
- an ATPError, and a conflict with existing data: `{"detail", "code", "field"?}`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from atp_site.lib.errors import ATPError

logger = logging.getLogger(__name__)

# Validation codes meaning "this value is taken": Django's model and constraint checks,
# DRF's UniqueValidator, and services checking a name by hand (code="unique").
UNIQUE_CODES = frozenset({"unique", "unique_together"})

# PostgreSQL's SQLSTATE for unique_violation; SQLite says so in the message.
_PG_UNIQUE_VIOLATION = "23505"


def drf_validation_error(exc: DjangoValidationError) -> exceptions.ValidationError:
    """A Django ValidationError as DRF's, field by field, keeping each message's code."""

    def details(error: DjangoValidationError) -> list[exceptions.ErrorDetail]:
        out = []
        for item in error.error_list:
            message = item.message % item.params if item.params else item.message
            out.append(exceptions.ErrorDetail(str(message), code=item.code or "invalid"))
        return out

    if hasattr(exc, "error_dict"):
        return exceptions.ValidationError(
            {
                (api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field): [
                    detail for error in errors for detail in details(error)
                ]
                for field, errors in exc.error_dict.items()
            }
        )
    return exceptions.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: details(exc)})


def _conflict(exc: exceptions.ValidationError) -> Response | None:
    """409 for a validation error that only says values are taken, else None."""
    if not isinstance(exc.detail, dict) or not exc.detail:
        return None
    codes = exc.get_codes()
    flat: list[str] = []
    for value in codes.values():
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            return None
        flat.extend(value)
    if not flat or not set(flat) <= UNIQUE_CODES:
        return None
    field, messages = next(iter(exc.detail.items()))
    body = {"detail": str(messages[0]), "code": "conflict"}
    if field != api_settings.NON_FIELD_ERRORS_KEY:
        body["field"] = field
    return Response(body, status=409)


def _is_unique_violation(exc: IntegrityError) -> bool:
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) == _PG_UNIQUE_VIOLATION or str(exc).startswith(
        "UNIQUE constraint failed"
    )


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ATPError):
        body = {"detail": exc.message, "code": exc.code}
        if exc.param:
            body["field"] = exc.param
        set_rollback()
        return Response(body, status=exc.status)
    if isinstance(exc, DjangoValidationError):
        exc = drf_validation_error(exc)
    if isinstance(exc, exceptions.ValidationError) and (conflict := _conflict(exc)) is not None:
        set_rollback()
        return conflict
    if isinstance(exc, IntegrityError) and _is_unique_violation(exc):
        # Two requests raced for the same name: the loser's check passed, the insert did not.
        set_rollback()
        return Response(
            {"detail": "This conflicts with an existing object.", "code": "conflict"}, status=409
        )
    if isinstance(exc, DataError):
        # A value the database cannot store got past validation (which should have named
        # the field): a 400 for the caller, a warning for us to add that validation.
        logger.warning("Management API input the database refused: %s", exc, exc_info=exc)
        set_rollback()
        return Response(
            {"detail": "A value in the request cannot be stored.", "code": "invalid_value"},
            status=400,
        )
    response = drf_exception_handler(exc, context)
    if isinstance(exc, exceptions.ValidationError) and response is not None:
        response.data = _messages_as_lists(response.data)
    # Unknown exceptions return None and stay 500s, logged by Django.
    return response


def _messages_as_lists(data: Any, *, top: bool = True) -> Any:
    """Every field of a validation error with a list of messages, as documented:
    `{"field": "message"}` (a view raising with a plain string) becomes
    `{"field": ["message"]}`, and a bare list of messages is `{"non_field_errors": [...]}`."""
    if top and isinstance(data, list):
        return {api_settings.NON_FIELD_ERRORS_KEY: data}
    if not isinstance(data, dict):
        return data
    return {
        key: [value] if isinstance(value, str) else _messages_as_lists(value, top=False)
        for key, value in data.items()
    }


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 404 page, or DRF's `{"detail": ...}` for a path under /api/ that no route
    matches (an id holding a dot, say), so API clients always get JSON."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    from atp_site.console.views import not_found_page

    return not_found_page(request, exception)
