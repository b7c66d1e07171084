"""Hostile values in every field that reaches the records never stop the records.

A live server on PostgreSQL takes requests with NUL, U+2028, lone-surrogate escapes, 1 MB
strings and deeply nested JSON in model, user, metadata, tools, hints and content, and
upstream answers with NUL in their errors and absurd usage, interleaved with plain
requests. On PostgreSQL one such value used to fail the COPY of its whole batch and, the
batch going back to the head of the queue, every batch after it: no request log, audit
event or stored exchange was written again for any tenant.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid

import httpx
import pytest
import yaml

from tests.e2e.conftest import run_manage
from tests.fakes.openai_server import Script

pytestmark = [
    pytest.mark.live,
    pytest.mark.postgres,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
        reason="needs PostgreSQL (DATABASE_URL)",
    ),
]

KEY = "atp_records-hostile-key-Wc6Jt3Pz8Nq5Ry2Ke7Mb"
MB = "u" * 1_000_000


def _nested(depth: int) -> dict:
    value: dict = {"type": "object"}
    for _ in range(depth):
        value = {"type": "object", "properties": {"x": value}}
    return value


def _deep_list(depth: int) -> list:
    value: list = ["leaf"]
    for _ in range(depth):
        value = [value]
    return value


def _chat(**extra) -> dict:
    return {"model": "sim-fast", "messages": [{"role": "user", "content": "hi"}], **extra}


# (name, body as JSON value or raw bytes, extra headers, upstream script, expected status)
HOSTILE = [
    ("model-nul", _chat(model="sim-fast\x00"), {}, None, 400),
    ("model-nul-unknown", _chat(model="x\x00"), {}, None, 400),
    ("model-1mb", _chat(model="m" * 1_000_000), {}, None, 404),
    ("user-nul", _chat(user="user\x00"), {}, None, 400),
    ("user-u2028", _chat(user="user\u2028two"), {}, None, 400),
    (
        "user-lone-surrogate",
        b'{"model":"sim-fast","messages":[{"role":"user","content":"hi"}],"user":"a\\ud800"}',
        {},
        None,
        400,
    ),
    ("user-1mb", _chat(user=MB), {}, None, 200),
    ("metadata-deep", _chat(metadata={"deep": _nested(300)}), {}, None, 400),
    ("metadata-nested", _chat(metadata={"deep": _nested(60)}), {}, None, 200),
    (
        "tools-deep",
        _chat(tools=[{"type": "function", "function": {"name": "f", "parameters": _nested(300)}}]),
        {},
        None,
        400,
    ),
    (
        "tools-nested",
        _chat(tools=[{"type": "function", "function": {"name": "f", "parameters": _nested(60)}}]),
        {},
        None,
        200,
    ),
    ("atp-deep", _chat(atp={"region": _deep_list(300)}), {}, None, 400),
    ("atp-bad-number", _chat(atp={"max_cost_usd": "abc"}), {}, None, 400),
    ("atp-unknown", _chat(atp={"\x00": _nested(50)}), {}, None, 400),
    (
        "content-nul-u2028-1mb",
        _chat(messages=[{"role": "user", "content": "a\x00b\u2028c" + MB}]),
        {},
        None,
        200,
    ),
    (
        "stream-content-nul",
        _chat(stream=True, messages=[{"role": "user", "content": "x\x00y"}]),
        {},
        None,
        200,
    ),
    (
        "upstream-error-nul",
        _chat(model="gpt-test"),
        {},
        Script(status=400, error="the upstream says \x00 and \u2028 " + "e" * 5000),
        400,
    ),
    (
        "upstream-absurd-usage",
        _chat(model="gpt-test"),
        {},
        Script(text="ok\x00", prompt_tokens=10**13, completion_tokens=10**13),
        200,
    ),
]


@pytest.fixture
def hostile_server(live):
    config = {
        "version": 1,
        "tenants": [
            {
                "slug": "records-hostile",
                "name": "Records under hostile input",
                "store_bodies": True,
                "api_keys": [{"name": "hostile", "key": "env:LIVE_RECORDS_KEY"}],
            }
        ],
    }
    path = live.data_dir / "records-hostile.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**live.env, "LIVE_RECORDS_KEY": KEY}
    run_manage(env, "atp_apply", str(path))
    server = live.start_server(LIVE_RECORDS_KEY=KEY)
    live.extra_servers.append(server)
    yield server
    server.stop()


def _count(live, sql: str, ids: list[str]) -> set[str]:
    marks = ",".join(["%s"] * len(ids))
    return {row[0] for row in live.db.query(sql.format(marks=marks), tuple(ids))}


def test_hostile_values_never_stop_the_records(live, hostile_server):
    run = uuid.uuid4().hex[:8]
    ids: list[str] = []
    statuses: dict[str, int] = {}
    with httpx.Client(base_url=hostile_server.base_url, timeout=30) as http:

        def send(name: str, body, headers: dict, expected: int) -> None:
            rid = f"{run}-{name}"
            ids.append(rid)
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            resp = http.post(
                "/v1/chat/completions",
                content=raw,
                headers={
                    "authorization": f"Bearer {KEY}",
                    "content-type": "application/json",
                    "x-request-id": rid,
                    **headers,
                },
            )
            statuses[rid] = resp.status_code
            assert resp.status_code == expected, (name, resp.status_code, resp.text[:500])
            if expected >= 400:
                assert resp.json()["error"]["message"]

        for i, (name, body, headers, script, expected) in enumerate(HOSTILE):
            if script is not None:
                live.openai_upstream.enqueue(script)
            send(name, body, headers, expected)
            send(f"good-{i}", _chat(user=f"good-user-{i}"), {}, 200)

    good = [rid for rid in ids if "-good-" in rid]
    # Every request that reached the pipeline has its request log row, its audit event and,
    # this tenant storing bodies, its stored exchange: the good ones and the refused ones.
    deadline = time.monotonic() + 20
    while True:
        logged = _count(
            live, "SELECT request_id FROM routing_requestlog WHERE request_id IN ({marks})", ids
        )
        audited = _count(
            live,
            "SELECT request_id FROM audit_auditevent WHERE event_type = 'gateway.request' "
            "AND request_id IN ({marks})",
            ids,
        )
        stored = _count(
            live, "SELECT request_id FROM audit_storedexchange WHERE request_id IN ({marks})", ids
        )
        if (logged == audited == stored == set(ids)) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert set(good) <= logged and set(good) <= audited and set(good) <= stored, (
        hostile_server.log()[-3000:]
    )
    assert logged == set(ids) and audited == set(ids) and stored == set(ids)

    [(end_user, tokens, cost)] = live.db.query(
        "SELECT end_user, input_tokens, cost_usd FROM routing_requestlog WHERE request_id = %s",
        (f"{run}-upstream-absurd-usage",),
    )
    assert tokens == 2**31 - 1 and cost > 0
    [(message,)] = live.db.query(
        "SELECT error_message FROM routing_requestlog WHERE request_id = %s",
        (f"{run}-upstream-error-nul",),
    )
    assert "\x00" not in message and "\ufffd" in message
    [(long_user,)] = live.db.query(
        "SELECT end_user FROM routing_requestlog WHERE request_id = %s", (f"{run}-user-1mb",)
    )
    assert len(long_user) == 256

    # Nothing had to be set aside, and the chain verifies over the cleaned values.
    metrics = httpx.get(f"{hostile_server.base_url}/metrics", timeout=10).text
    assert not re.search(r"atp_writebehind_dead_lettered_rows_total\{[^}]*\} [1-9]", metrics)
    assert run_manage(live.env, "audit_verify").stdout.startswith("OK")
