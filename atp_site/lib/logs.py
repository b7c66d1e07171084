"""Logging set-up: Django's dictConfig plus a filter that keeps query strings out of server logs.

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
from typing import Any

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


def configure(config: dict[str, Any]) -> None:
    """LOGGING_CONFIG: apply settings.LOGGING, then filter the servers' request loggers.

    The filter is added to those loggers without reconfiguring them, so the servers keep
    their own handlers and formats (and uvicorn's --no-access-log keeps working).
    """
    logging.config.dictConfig(config)
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQueryStrings) for f in logger.filters):
            logger.addFilter(RedactQueryStrings())
