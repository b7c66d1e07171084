"""A gateway process killed with rows still queued: the next process writes them."""

from __future__ import annotations

import os
import time
import uuid

import httpx
import pytest

pytestmark = [pytest.mark.live, pytest.mark.redis]


def wait_for(condition, what: str, timeout: float = 15.0, explain=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for the {what}\n{explain()}"
        time.sleep(0.05)


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL)")
def test_rows_of_a_killed_process_are_written_by_the_next_one(live):
    import redis as redis_client

    redis = redis_client.Redis.from_url(os.environ["REDIS_URL"])
    env = {
        "ATP_REDIS_PREFIX": f"atp-crash-{uuid.uuid4().hex[:8]}",
        "ATP_WRITE_BEHIND_ALIVE_SECONDS": "2",
    }
    # Nothing is flushed on a timer: only the journal can save these rows.
    first = live.start_server(
        **env, ATP_WRITE_BEHIND_INTERVAL="300", ATP_WRITE_BEHIND_BATCH="100000"
    )
    live.extra_servers.append(first)
    ids = [f"crash-{uuid.uuid4().hex[:12]}" for _ in range(10)]
    with httpx.Client(base_url=first.base_url, timeout=10) as http:
        for rid in ids:
            resp = http.post(
                "/v1/chat/completions",
                headers={"authorization": f"Bearer {live.key}", "x-request-id": rid},
                json={"model": "sim-fast", "messages": [{"role": "user", "content": "hi"}]},
            )
            assert resp.status_code == 200
    # The journal push follows the response within one loop turn: wait until Redis holds
    # every row of both queues before the kill.
    prefix = env["ATP_REDIS_PREFIX"]
    journaled = lambda queue: sum(  # noqa: E731
        redis.llen(key) for key in redis.scan_iter(match=f"{prefix}:wb:{queue}:*")
    )
    wait_for(
        lambda: journaled("request-log") >= 10 and journaled("audit") >= 10,
        "journal",
        explain=lambda: (
            f"request-log {journaled('request-log')}, audit {journaled('audit')}, "
            f"keys {sorted(k.decode() for k in redis.scan_iter(match=f'{prefix}:*'))}\n"
            + first.log()[-4000:]
        ),
    )
    first.process.kill()  # SIGKILL: no drain, no exit hooks
    first.process.wait(10)
    assert live.log_rows(ids, timeout=0.5) == {}
    # The killed process's liveness key expires (ATP_WRITE_BEHIND_ALIVE_SECONDS).
    wait_for(lambda: not list(redis.scan_iter(match=f"{prefix}:wb-alive:*")), "liveness")
    second = live.start_server(**env)
    live.extra_servers.append(second)
    rows = live.log_rows(ids, timeout=15)
    assert len(rows) == 10, second.log()
    events = live.db.query(
        "SELECT COUNT(*) FROM audit_auditevent WHERE event_type = 'gateway.request' "
        f"AND request_id IN ({','.join(['%s'] * len(ids))})",
        tuple(ids),
    )
    assert events[0][0] == 10
    assert "recovered 10 rows journaled by a stopped process" in second.log()
