"""The project's base error and its rendering in each ecosystem's error shape."""

from __future__ import annotations

from typing import Any


class ATPError(Exception):
    """An error with a status, a type, a retryable flag and a message safe to show a caller.

    `message` must never carry a secret or an upstream credential: it is sent to callers
    and written to the request log as it is.
    """

    status: int = 500
    type: str = "api_error"
    code: str | None = None
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        if code is not None:
            self.code = code
        if retryable is not None:
            self.retryable = retryable
        self.param = param
        self.retry_after = retry_after
        self.details = details or {}
        # Response headers the error carries (x-ratelimit-*, x-should-retry).
        self.headers: list[tuple[bytes, bytes]] = []


class InvalidRequest(ATPError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class AuthenticationFailed(ATPError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(ATPError):
    status = 403
    type = "permission_error"
    code = "permission_denied"


class NotFound(ATPError):
    status = 404
    type = "not_found_error"
    code = "model_not_found"


class PayloadTooLarge(ATPError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class RateLimited(ATPError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"
    retryable = True


# Anthropic's error types by HTTP status
# (https://docs.anthropic.com/en/api/errors).
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "api_error",
    529: "overloaded_error",
}


def openai_error_body(err: ATPError, request_id: str | None) -> dict[str, Any]:
    """OpenAI's error object, extended with `retryable`, `retry_after` and `request_id`."""
    body: dict[str, Any] = {
        "message": err.message,
        "type": err.type,
        "param": err.param,
        "code": err.code,
        "retryable": err.retryable,
        "retry_after": err.retry_after,
        "request_id": request_id,
    }
    if err.details:
        body["atp"] = err.details
    return {"error": body}


def anthropic_error_body(err: ATPError, request_id: str | None) -> dict[str, Any]:
    """Anthropic's error envelope, extended the same way as the OpenAI one."""
    err_type = _ANTHROPIC_TYPES.get(err.status, "api_error")
    body: dict[str, Any] = {
        "type": err_type,
        "message": err.message,
        "retryable": err.retryable,
        "retry_after": err.retry_after,
    }
    if err.param:
        body["param"] = err.param
    if err.details:
        body["atp"] = err.details
    return {"type": "error", "error": body, "request_id": request_id}
