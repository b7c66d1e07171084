"""Every value written behind is storable: hostile text, JSON and numbers never fail a batch."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from apps.audit.models import AuditEvent
from apps.audit.services import PendingEvent, audit_append
from apps.audit.verify import verify_chain
from apps.audit.writebehind import gateway_event, write_audit_events
from apps.routing.models import RequestLog
from apps.routing.writebehind import request_logs_writer
from atp_site.lib.bulk import RowInserter
from atp_site.lib.storable import (
    MAX_DEPTH,
    REPLACEMENT,
    TOO_DEEP,
    clean_json,
    clean_text,
    int_adapter,
    json_text,
    text_adapter,
)

NUL = "\x00"
LONE = "\ud800"  # what a JSON "\ud800" escape decodes to
SEP = "\u2028"


def _nested(depth: int) -> dict:
    value: dict = {"leaf": True}
    for _ in range(depth):
        value = {"n": value}
    return value


# --- the pure functions --------------------------------------------------------------------


def test_clean_text_keeps_clean_text_and_repairs_the_rest():
    assert clean_text("plain") == "plain"
    assert clean_text("naïve ✓ " + SEP) == "naïve ✓ " + SEP  # storable, kept
    assert clean_text("a" + NUL + "b") == "a" + REPLACEMENT + "b"
    assert clean_text("é" + NUL + LONE) == "é" + REPLACEMENT * 2
    assert clean_text("x" * 300, 256) == "x" * 256
    assert clean_text("é" * 300 + NUL, 10) == "é" * 10


def test_adapters_are_idempotent_and_leave_clean_values_alone():
    text = text_adapter(8)
    value = "id-1"
    assert text(value) is value
    assert text(None) is None
    assert text(123) == "123"
    once = text(NUL + LONE + "x" * 20)
    assert text(once) == once and len(once) == 8
    number = int_adapter(0, 2**31 - 1)
    assert number(5) == 5
    assert number(10**12) == 2**31 - 1
    assert number(-3) == 0
    assert number(float("nan")) is None
    assert number("12") == 12


def test_json_text_stores_what_orjson_or_jsonb_refuse():
    value = {
        "nul": "a" + NUL,
        "lone": LONE,
        NUL + "key": 1,
        7: "non-string key",
        "big": 10**30,
        "decimal": Decimal("1.5"),
        "when": datetime(2026, 1, 2, tzinfo=UTC),
        "set": {1},
        "deep": _nested(MAX_DEPTH + 20),
        "sep": SEP,
    }
    text = json_text(value)
    assert "\\u0000" not in text
    back = orjson.loads(text)
    assert back["nul"] == "a" + REPLACEMENT and back["lone"] == REPLACEMENT
    assert back[REPLACEMENT + "key"] == 1 and back["7"] == "non-string key"
    assert back["big"] == str(10**30) and back["decimal"] == "1.5" and back["set"] == [1]
    assert back["sep"] == SEP
    depth, node = 0, back["deep"]
    while isinstance(node, dict):
        node, depth = node["n"], depth + 1
    assert node == TOO_DEEP and depth < MAX_DEPTH
    # A clean value is serialised as it is, and cleaning a cleaned value changes nothing.
    assert json_text({"a": [1, "b"]}) == '{"a":[1,"b"]}'
    assert clean_json(back) == back


# --- through the database --------------------------------------------------------------------


def _log(request_id: str, **extra) -> dict:
    now = datetime.now(UTC)
    return {
        "request_id": request_id,
        "created_at": now,
        "completed_at": now,
        "endpoint": "chat.completions",
        "status": "success",
        "http_status": 200,
        "cost_usd": Decimal("0.001"),
        **extra,
    }


HOSTILE = {
    "end_user": "user" + NUL + LONE + "x" * 1_000_000,
    "requested_model": "x" + NUL,
    "error_message": "upstream said " + NUL + LONE + SEP,
    "route": "r" * 5000,
    "input_tokens": 10**12,
    "output_tokens": -5,
    "cost_usd": Decimal("1e9"),
    "decision": {"reasoning": ["a" + NUL, LONE], "deep": _nested(400), 1: Decimal("2")},
}


@pytest.mark.django_db(transaction=True)
def test_a_batch_with_hostile_values_is_written_whole():
    """One hostile row among good ones: on PostgreSQL its NUL, lone surrogate or overlong
    string used to fail the COPY of the whole batch."""
    rows = [_log(f"good-{i}") for i in range(5)]
    rows.insert(2, _log("bad-1", **HOSTILE))
    request_logs_writer(rows)
    assert RequestLog.objects.filter(request_id__startswith="good-").count() == 5
    bad = RequestLog.objects.get(request_id="bad-1")
    assert bad.requested_model == "x" + REPLACEMENT
    assert bad.end_user.startswith("user" + REPLACEMENT * 2) and len(bad.end_user) == 256
    assert bad.error_message == "upstream said " + REPLACEMENT * 2 + SEP
    assert len(bad.route) == 200
    assert (bad.input_tokens, bad.output_tokens) == (2**31 - 1, 0)
    assert bad.cost_usd == Decimal("999999.99999999")  # numeric(14, 8) at its largest
    assert bad.decision["reasoning"] == ["a" + REPLACEMENT, REPLACEMENT]


@pytest.mark.django_db(transaction=True)
def test_audit_events_with_hostile_values_verify():
    """The chain hashes the values as stored: a NUL in `model` or `data`, a lone surrogate
    or an overlong id is cleaned before hashing, so verification passes."""
    log = _log("r" * 300 + NUL, **HOSTILE)
    log["model"] = "m" + NUL
    write_audit_events([gateway_event(log), gateway_event(_log("plain"))])
    audit_append(
        [
            PendingEvent(
                event_type="test.hostile",
                action="x" + NUL,
                resource_id=LONE * 3,
                data={"note": NUL + LONE, "deep": _nested(300), "n": 10**25},
                tenant_id=uuid.uuid4(),
            )
        ]
    )
    events = list(AuditEvent.objects.order_by("sequence"))
    assert len(events) == 3
    first = events[0]
    assert first.resource_id == "m" + REPLACEMENT
    assert len(first.request_id) == 128 and NUL not in first.request_id
    assert first.data["route_decision"]["reasoning"] == ["a" + REPLACEMENT, REPLACEMENT]
    assert first.data["request_id"] == "r" * 300 + REPLACEMENT
    assert events[2].data["note"] == REPLACEMENT * 2 and events[2].data["n"] == str(10**25)
    result = verify_chain()
    assert result.ok, result.problem
    assert result.checked == 3


@pytest.mark.django_db(transaction=True)
def test_clean_rows_and_inserted_rows_agree():
    inserter = RowInserter("routing.RequestLog")
    row = _log("agree", **HOSTILE)
    cleaned = inserter.clean(row)
    inserter([row])
    stored = RequestLog.objects.get(request_id="agree")
    for name in ("end_user", "requested_model", "error_message", "route", "input_tokens"):
        assert getattr(stored, name) == cleaned[name]
    assert stored.decision == orjson.loads(json_text(cleaned["decision"]))
