"""The JSON log format and the request fields every record logged during a request gets."""

from __future__ import annotations

import io
import json
import logging

import pytest

from atp_site.lib.logs import JsonFormatter, RequestFields, request_context, trace_id_from


class _Key:
    tenant_slug = "acme"


class _Ctx:
    request_id = "req_1"
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    key = _Key()
    route = "team/chat"
    requested_model = "gpt-4o"


def _logger() -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestFields())
    logger = logging.getLogger("atp.test.json")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, out


def test_a_record_is_one_json_object_with_the_requests_fields():
    logger, out = _logger()
    token = request_context.set(_Ctx())
    try:
        logger.warning("upstream %s slow", "openai", extra={"attempt": 2})
    finally:
        request_context.reset(token)
    logger.info("outside any request")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["message"] == "upstream openai slow" and first["level"] == "WARNING"
    assert first["logger"] == "atp.test.json" and first["time"].endswith("+00:00")
    assert first["request_id"] == "req_1" and first["trace_id"] == _Ctx.trace_id
    assert first["tenant"] == "acme" and first["route"] == "team/chat" and first["attempt"] == 2
    assert "request_id" not in second and "tenant" not in second


def test_query_values_are_masked_and_tracebacks_kept():
    logger, out = _logger()
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("GET /v1/models?api_key=atp_secret failed")
    record = json.loads(out.getvalue())
    assert record["message"] == "GET /v1/models?api_key=*** failed"
    assert "atp_secret" not in out.getvalue()
    assert "ValueError: boom" in record["exc_info"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", _Ctx.trace_id),
        (b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", _Ctx.trace_id),
        (b"00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""),  # invalid id
        (b"00-4bf92f3577b34da6-00f067aa0ba902b7-01", ""),
        (b"not a trace", ""),
        (None, ""),
    ],
)
def test_the_trace_id_comes_from_a_valid_traceparent(header, expected):
    headers = {} if header is None else {b"traceparent": header}
    assert trace_id_from(headers) == expected
