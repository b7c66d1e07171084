"""The ledger's rows ride on the request log's: written by its writer, in its transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from apps.costs.ledger import PROJECT
from apps.costs.models import UsageRecord
from apps.routing.models import RequestLog
from apps.routing.writebehind import write_request_logs

pytestmark = pytest.mark.django_db(transaction=True)


def _log(**fields):
    return {
        "request_id": f"req-{uuid.uuid4().hex}",
        "created_at": datetime.now(UTC),
        "tenant_id": uuid.uuid4(),
        "api_key_id": None,
        "end_user": "",
        "model": "sim-fast",
        "provider_id": None,
        "deployment_id": None,
        "route": "",
        "status": "success",
        "http_status": 200,
        "endpoint": "chat.completions",
        "latency_ms": 5,
        "input_tokens": 10,
        "output_tokens": 5,
        "cached_input_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "cost_usd": Decimal("0.00001500"),
        "cache": "",
        "shadow_of": "",
        **fields,
    }


def test_marked_rows_get_their_ledger_row_in_the_same_write():
    project = uuid.uuid4()
    served = _log(**{PROJECT: project})
    shadow = _log(shadow_of="req-original", **{PROJECT: None})  # ATP's own evaluation
    failed_free = _log(status="error", cost_usd=Decimal(0), **{PROJECT: None})
    unmarked = _log()  # queued on its own by an earlier version: its ledger row was too
    write_request_logs([served, shadow, failed_free, unmarked])
    assert RequestLog.objects.count() == 4
    (entry,) = UsageRecord.objects.all()
    assert entry.request_id == served["request_id"]
    assert entry.project_id == project and entry.cost_usd == served["cost_usd"]


def test_a_failing_ledger_insert_leaves_no_request_log_row(monkeypatch):
    from apps.costs import ledger

    def broken(rows):
        raise RuntimeError("ledger table unavailable")

    monkeypatch.setattr(ledger, "insert_ledger", broken)
    with pytest.raises(RuntimeError):
        write_request_logs([_log(**{PROJECT: None})])
    assert not RequestLog.objects.exists()  # so the queue keeps (or spills) the row whole
