"""A graceful shutdown seals the audit chain's head outside the database, after the drain."""

from __future__ import annotations

import json
import signal
import uuid

import httpx
import pytest

from apps.audit import heads
from tests.e2e.conftest import run_manage

pytestmark = pytest.mark.live


def test_sigterm_seals_the_drained_chain_with_the_head_key(live):
    # A flush interval far longer than the test: only the shutdown drain writes the events.
    server = live.start_server(ATP_WRITE_BEHIND_INTERVAL="300", ATP_WRITE_BEHIND_BATCH="100000")
    live.extra_servers.append(server)
    ids = [f"seal-{uuid.uuid4().hex[:12]}" for _ in range(3)]
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        for rid in ids:
            resp = http.post(
                "/v1/chat/completions",
                headers={"authorization": f"Bearer {live.key}", "x-request-id": rid},
                json={"model": "sim-fast", "messages": [{"role": "user", "content": "hi"}]},
            )
            assert resp.status_code == 200
    assert server.stop() in (0, -signal.SIGTERM), server.log()

    marks = ",".join(["%s"] * len(ids))
    drained = live.db.query(
        f"SELECT MAX(sequence) FROM audit_auditevent WHERE request_id IN ({marks})", tuple(ids)
    )[0][0]
    assert drained is not None
    last_line = (live.data_dir / "audit_heads.jsonl").read_text().splitlines()[-1]
    record = json.loads(last_line)
    public = heads.public_key_from_pem(run_manage(live.env, "audit_public_key").stdout)
    statement = heads.verified_statement(record, public)
    assert statement["reason"] == "shutdown"
    assert statement["sequence"] >= drained
    [(digest,)] = live.db.query(
        "SELECT hash FROM audit_auditevent WHERE sequence = %s", (statement["sequence"],)
    )
    assert statement["hash"] == digest
    verified = run_manage(live.env, "audit_verify", "--full").stdout
    assert verified.startswith("OK:") and f"signed head #{statement['sequence']}" in verified
