"""Logging set-up: Django's dictConfig, a filter that keeps query strings out of server logs,
the request a record was written in, and the JSON format (ATP_LOG_FORMAT=json).

A query string may hold a key (a client putting `?api_key=...` on a WebSocket URL, which
/v1/realtime refuses, or on any other URL); the ASGI servers log the full URL of every
request (uvicorn's access log, and its WebSocket handshake lines on `uvicorn.error` even
with --no-access-log; daphne's `runserver` lines). The filter masks every query value in
those records before any handler formats them: `/v1/realtime?api_key=***`.
"""

from __future__ import annotations

import logging
import logging.config
import re
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

# The loggers ASGI servers write request lines to.
SERVER_LOGGERS = ("uvicorn.access", "uvicorn.error", "django.channels.server", "django.server")

_PATH_WITH_QUERY = re.compile(r"(/[^\s?#\"']*)\?([^\s#\"']*)")


def _mask(query: str) -> str:
    parts = (p.split("=", 1)[0] + "=***" if "=" in p else "***" for p in query.split("&") if p)
    return "&".join(parts) or "***"


def redact(text: str) -> str:
    """`text` with the value of every query parameter of every URL path in it masked."""
    if "?" not in text:
        return text
    return _PATH_WITH_QUERY.sub(lambda m: f"{m.group(1)}?{_mask(m.group(2))}", text)


def _redact_value(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactQueryStrings(logging.Filter):
    """Masks query values in a record's arguments (keeping their shape, which uvicorn's
    access formatter unpacks) and in its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_value(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redact_value(v) for k, v in record.args.items()}
        return True


def _uses_json(config: dict[str, Any]) -> bool:
    handlers = config.get("handlers", {}).values()
    return any(h.get("formatter") == "json" for h in handlers)


def configure(config: dict[str, Any]) -> None:
    """LOGGING_CONFIG: apply settings.LOGGING, then filter the servers' request loggers.

    The filter is added to those loggers without reconfiguring them, so the servers keep
    their own handlers and formats (and uvicorn's --no-access-log keeps working).
    """
    logging.config.dictConfig(config)
    if _uses_json(config):
        # The ASGI server set up its own text handlers before loading ATP; in JSON mode its
        # records go through ATP's handlers too, so every line is one JSON object.
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            logger = logging.getLogger(name)
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQueryStrings) for f in logger.filters):
            logger.addFilter(RedactQueryStrings())


# The data-plane request being served in this task (apps.routing.pipeline.context.
# RequestContext), set where a request starts; every record logged while it runs carries
# its ids.
request_context: ContextVar[Any] = ContextVar("atp_request", default=None)

# W3C trace context: "00-<trace id>-<parent id>-<flags>".
_TRACEPARENT = re.compile(rb"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")


def trace_id_from(headers: dict[bytes, bytes]) -> str:
    """The trace id of the caller's `traceparent` header ("" without a valid one)."""
    given = headers.get(b"traceparent")
    if not given:
        return ""
    found = _TRACEPARENT.fullmatch(given.strip().lower())
    if found is None or found.group(1) == b"0" * 32:
        return ""
    return found.group(1).decode()


class RequestFields(logging.Filter):
    """Adds the request a record was logged in: `request_id`, `trace_id`, `tenant` (the
    tenant's slug) and `route`. Records logged outside a request are left as they are."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = request_context.get()
        if ctx is not None and not hasattr(record, "request_id"):
            record.request_id = ctx.request_id
            record.trace_id = ctx.trace_id or None
            record.tenant = ctx.key.tenant_slug if ctx.key is not None else None
            record.route = ctx.route or ctx.requested_model or None
        return True


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the
    request's fields when there is one, any `extra` fields, and the exception's traceback.
    Query values in messages are masked as in the plain format."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("timestamp", "time")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        super().__init__("%(levelname)s %(name)s %(message)s", *args, **kwargs)

    def process_log_record(self, log_record: dict[str, Any]) -> dict[str, Any]:
        message = log_record.get("message")
        if isinstance(message, str):
            log_record["message"] = redact(message)
        return {k: v for k, v in log_record.items() if v is not None}
