"""Audit chain verification: a full walk against one from the last verified checkpoint.

    ATP_DATA_DIR=$(mktemp -d) .venv/bin/python bench/audit_verify.py --events 100000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/atp_bench ATP_DATA_DIR=$(mktemp -d) \
        .venv/bin/python bench/audit_verify.py --events 100000

Builds a chain of N gateway-like events in a fresh database (SQLite in ATP_DATA_DIR, or
the PostgreSQL database named by DATABASE_URL, which it creates and drops), then times,
over several runs each: a full walk; an incremental check with nothing new; and an
incremental check after 1,000 new events. Prints median and spread in seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atp_site.settings")


def _postgres(create: bool) -> None:
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    url = os.environ["DATABASE_URL"]
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')


def _events(n: int) -> list:
    from apps.audit.context import AuditActor
    from apps.audit.services import PendingEvent

    actor = AuditActor(actor="api_key:bench", source="data_plane")
    tenant = uuid.uuid4()
    return [
        PendingEvent(
            event_type="gateway.request",
            action="request",
            tenant_id=tenant,
            resource_type="model",
            resource_id="sim-fast",
            data={
                "endpoint": "chat.completions",
                "model": "sim-fast",
                "status": "success",
                "http_status": 200,
                "usage": {"input": 12, "output": 40},
                "cost_usd": "0.000092",
                "latency_ms": 31,
            },
            actor=actor,
            masked=True,
        )
        for _ in range(n)
    ]


def _timed(fn, runs: int) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    spread = max(times) - min(times)
    return statistics.median(times), spread, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if os.environ.get("DATABASE_URL"):
        _postgres(create=True)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from apps.audit.services import audit_append
    from apps.audit.verify import verify_chain

    call_command("migrate", verbosity=0)
    start = time.perf_counter()
    for _ in range(args.events // 1000):
        audit_append(_events(1000), returning=False)
    print(
        f"{connection.vendor}: {args.events} events appended in {time.perf_counter() - start:.1f} s"
    )

    full, full_spread, result = _timed(lambda: verify_chain(full=True, record=False), args.runs)
    assert result.ok and result.checked == args.events, result
    verify_chain()  # the checkpoint incremental checks start from
    idle, idle_spread, result = _timed(verify_chain, args.runs)
    assert result.ok and not result.full and result.checked == 0, result

    def after_new_events():
        audit_append(_events(1000), returning=False)
        begin = time.perf_counter()
        outcome = verify_chain()
        return time.perf_counter() - begin, outcome

    samples = [after_new_events() for _ in range(args.runs)]
    assert all(o.ok and not o.full and o.checked == 1000 for _, o in samples)
    fresh = [t for t, _ in samples]
    print(f"full walk ({args.events} events): median {full:.3f} s, spread {full_spread:.3f} s")
    print(
        f"incremental, nothing new:  median {idle * 1000:.1f} ms, spread {idle_spread * 1000:.1f} ms"
    )
    print(
        f"incremental, 1000 new:     median {statistics.median(fresh) * 1000:.1f} ms, "
        f"spread {(max(fresh) - min(fresh)) * 1000:.1f} ms"
    )
    connection.close()
    if os.environ.get("DATABASE_URL"):
        _postgres(create=False)


if __name__ == "__main__":
    main()
