"""atpctl's errors and the exit status each one ends the command with (docs/cli.md)."""

from __future__ import annotations

from typing import Any

# Exit statuses; 2 is also click's for a usage error (an unknown option, a missing argument).
OK = 0
REFUSED = 1  # the server refused the request (400, 409, ...) or a local file failed
USAGE = 2  # wrong invocation, or no server or token to talk to
UNAUTHENTICATED = 3  # 401: no, an invalid, an expired or a revoked admin token
FORBIDDEN = 4  # 403: the token's user lacks the permission
NOT_FOUND = 5  # 404, or a name that matches nothing
UNAVAILABLE = 6  # 5xx, a timeout, or a server that cannot be reached
CHECK_FAILED = 7  # the command ran but what it checks failed (a broken audit chain, ...)


class CLIError(Exception):
    """A failure to report as one line, `atpctl: <message>`, and end with `code`."""

    def __init__(self, message: str, code: int = REFUSED) -> None:
        super().__init__(one_line(message))
        self.message = one_line(message)
        self.code = code


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def status_code_exit(status: int) -> int:
    if status == 401:
        return UNAUTHENTICATED
    if status == 403:
        return FORBIDDEN
    if status == 404:
        return NOT_FOUND
    if status >= 500:
        return UNAVAILABLE
    return REFUSED


def error_message(body: Any) -> str:
    """The API's error body (docs/management-api.md) as one sentence: `{"detail": ...}`, or
    each invalid field with its messages (`field: message; other[0].name: message`)."""
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return body["detail"]
    parts = [f"{path}: {message}" if path else message for path, message in _flatten(body, "")]
    return "; ".join(parts)


def _flatten(value: Any, path: str) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        found: list[tuple[str, str]] = []
        for key, item in value.items():
            key = str(key)
            if key == "non_field_errors":
                where = path
            elif key.isdigit():
                where = f"{path}[{key}]"
            else:
                where = f"{path}.{key}" if path else key
            found.extend(_flatten(item, where))
        return found
    if isinstance(value, list):
        if all(isinstance(item, str) for item in value):
            return [(path, item) for item in value]
        found = []
        for i, item in enumerate(value):
            found.extend(_flatten(item, f"{path}[{i}]"))
        return found
    return [(path, str(value))]
