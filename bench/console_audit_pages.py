"""Server time of the console's audit pages over a 1,000,000-event chain on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/atp_bench_audit ATP_DATA_DIR=$(mktemp -d) \
        .venv/bin/python bench/console_audit_pages.py --events 1000000 --runs 40

Creates the database named by DATABASE_URL afresh (drops it at the end unless --keep),
migrates it and seeds N events as a valid chain: each event's canonical form is hashed and
signed in Python exactly as apps.audit.services does, rows are streamed with COPY after the
current chain head, and the head moves forward to the last one — an append, so the
append-only triggers never need lifting. Tenants, actors, outcomes, classifications and
times are spread as a busy gateway's are (mostly gateway requests, a few rare values).

Then it times each page with Django's test client in this process (the view, middleware,
queries and template; no network), after a warm-up, as a superuser and as an auditor of one
tenant: the list unfiltered, with each filter (common and rare values), deep pages (keyset
cursors far into the log) and one event's detail. Prints p50/p95/max in milliseconds, then
the plan PostgreSQL chose for each filter's query (EXPLAIN ANALYZE), to show the index.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atp_site.settings")

from apps.audit.chain import HASHED_FIELDS  # noqa: E402  (pure: no Django needed)

# The columns COPY fills: the hashed fields in the chain's own order, then what it derives.
COLUMNS = ("sequence", *HASHED_FIELDS, "hash", "key_id", "signature")


def _postgres(create: bool) -> None:
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    parts = urlsplit(os.environ["DATABASE_URL"])
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')


def _pick(rng: random.Random, weighted: list[tuple[object, float]]) -> object:
    r = rng.random()
    for value, weight in weighted:
        r -= weight
        if r <= 0:
            return value
    return weighted[-1][0]


def seed(n: int, tenants: list[uuid.UUID], *, seed_value: int = 7) -> float:
    """Append `n` events to the chain with COPY; returns the seconds it took."""
    import orjson
    from django.db import connection, transaction

    from apps.audit import chain
    from apps.audit.models import AuditChainHead

    rng = random.Random(seed_value)
    tenant_weights = [
        (tenants[0], 0.50),
        (tenants[1], 0.30),
        (tenants[2], 0.19),
        (tenants[3], 0.01),
    ]
    actors = [f"user-{i:02d}" for i in range(50)]
    types = [
        (("gateway.request", "request"), 0.80),
        (("key.created", "create"), 0.05),
        (("key.revoked", "revoke"), 0.04),
        (("auth.login", "login"), 0.06),
        (("policy.denied", "deny"), 0.049),
        (("privacy.subject_erased", "erase"), 0.001),
    ]
    outcomes = [("success", 0.97), ("failure", 0.01), ("denied", 0.02)]
    classes = [("internal", 0.90), ("confidential", 0.05), ("restricted", 0.05)]
    start = datetime.now(UTC) - timedelta(days=90)
    step = timedelta(days=90) / n
    began = time.perf_counter()
    with transaction.atomic():
        head = AuditChainHead.objects.select_for_update().get(pk=1)
        sequence, prev = head.sequence, head.hash
        cols = ", ".join(COLUMNS)
        with connection.cursor() as cursor:
            raw = cursor.cursor
            with raw.copy(f"COPY audit_auditevent ({cols}) FROM STDIN") as copy:
                for i in range(n):
                    sequence += 1
                    event_type, action = _pick(rng, types)
                    tenant = _pick(rng, tenant_weights) if event_type != "auth.login" else None
                    actor = rng.choice(actors)
                    fields = {
                        "event_id": uuid.UUID(int=rng.getrandbits(128), version=4),
                        "event_type": event_type,
                        "occurred_at": start + step * i,
                        "tenant_id": tenant,
                        "user_id": actor,
                        "actor": actor,
                        "source": "data_plane" if event_type == "gateway.request" else "api",
                        "session_id": "",
                        "request_id": f"req-{sequence}",
                        "ip_address": None,
                        "resource_type": "model",
                        "resource_id": "sim-fast",
                        "action": action,
                        "outcome": _pick(rng, outcomes),
                        "data": {"model": "sim-fast", "tokens": rng.randint(10, 4000)},
                        "before": None,
                        "after": None,
                        "classification": _pick(rng, classes),
                        "retention_days": None,
                        "prev_hash": prev,
                    }
                    digest = chain.event_hash(fields)
                    key_id, signature = chain.sign(digest)
                    derived = {
                        "sequence": sequence,
                        "data": orjson.dumps(fields["data"]).decode(),
                        "hash": digest,
                        "key_id": key_id,
                        "signature": signature,
                    }
                    copy.write_row(tuple(derived.get(c, fields.get(c)) for c in COLUMNS))
                    prev = digest
                    if (i + 1) % 100_000 == 0:
                        print(f"  seeded {i + 1:,} events", flush=True)
        head.sequence, head.hash = sequence, prev
        head.save(update_fields=["sequence", "hash"])
    took = time.perf_counter() - began
    # What autovacuum does to a table this size soon after: statistics and the visibility
    # map (index-only scans).
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE audit_auditevent")
    return took


def _time(client, path: str, params: dict, runs: int) -> list[float]:
    client.get(path, params)  # warm-up
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        response = client.get(path, params)
        times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, (path, params, response.status_code)
    return times


def _cursor(pk: int) -> str:
    from atp_site.console.tables import _encode

    return _encode([pk, pk])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="use an already seeded database")
    args = parser.parse_args()
    if "postgres" not in os.environ.get("DATABASE_URL", ""):
        sys.exit("Set DATABASE_URL to a PostgreSQL database this benchmark may create and drop.")
    if not args.reuse:
        _postgres(create=True)

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from guardian.shortcuts import assign_perm

    from apps.audit.models import AuditEvent
    from apps.tenants.models import Tenant

    if args.reuse:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE audit_auditevent")
    else:
        call_command("migrate", verbosity=0)
        tenants = [
            Tenant.objects.create(slug=slug, name=slug.title()).pk
            for slug in ("big", "medium", "small", "rare")
        ]
        print(f"Seeding {args.events:,} events...", flush=True)
        took = seed(args.events, tenants)
        print(f"Seeded in {took:.1f} s ({args.events / took:,.0f} events/s)")
    users = get_user_model().objects
    admin = users.filter(username="bench-admin").first() or users.create_superuser("bench-admin")
    auditor = users.filter(username="bench-auditor").first() or users.create_user("bench-auditor")
    assign_perm("tenants.audit_tenant", auditor, Tenant.objects.get(slug="medium"))
    total = AuditEvent.objects.count()
    print(f"{total:,} events in the table")

    first = AuditEvent.objects.order_by("pk").values_list("pk", flat=True).first()
    last = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
    middle = AuditEvent.objects.filter(pk__gte=(first + last) // 2).order_by("pk").first()
    mid_time = middle.occurred_at
    scenarios = [
        ("list, unfiltered", {}),
        ("list, tenant (50% of events)", {"tenant": "big"}),
        ("list, tenant (1%)", {"tenant": "rare"}),
        ("list, outcome denied (2%)", {"outcome": "denied"}),
        ("list, action erase (0.1%)", {"action": "erase"}),
        ("list, actor (2%)", {"actor": "user-07"}),
        ("list, classification restricted (5%)", {"classification": "restricted"}),
        ("list, event type prefix key. (9%)", {"event_type": "key."}),
        (
            "list, one day in the middle",
            {
                "since": (mid_time - timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M"),
                "until": (mid_time + timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M"),
            },
        ),
        ("list, tenant + denied", {"tenant": "small", "outcome": "denied"}),
        ("list, deep page (middle)", {"cursor": _cursor(middle.pk)}),
        ("list, deep page (oldest end)", {"cursor": _cursor(first + 60)}),
        ("list, rare tenant, deep page", {"tenant": "rare", "cursor": _cursor(middle.pk)}),
        ("list, oldest first", {"sort": "sequence"}),
    ]
    client = Client()
    client.force_login(admin)
    scoped = Client()
    scoped.force_login(auditor)
    print(f"\n{'page':52} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    rows = []
    for name, params in scenarios:
        rows.append((name, _time(client, "/audit/", params, args.runs)))
    rows.append(("list, auditor of one tenant (30%)", _time(scoped, "/audit/", {}, args.runs)))
    rows.append(
        (
            "list, auditor of one tenant, deep page",
            _time(scoped, "/audit/", {"cursor": _cursor(middle.pk)}, args.runs),
        )
    )
    rows.append(("detail (newest event)", _time(client, f"/audit/events/{last}/", {}, args.runs)))
    rows.append(
        (
            "detail (middle event)",
            _time(client, f"/audit/events/{middle.sequence}/", {}, args.runs),
        )
    )
    for name, times in rows:
        times.sort()
        p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
        print(f"{name:52} {statistics.median(times):8.1f} {p95:8.1f} {times[-1]:8.1f}")

    print("\nPlans of the filtered first pages (EXPLAIN ANALYZE):")
    from apps.audit.selectors import AuditEventFilters, audit_event_filter

    tenant_ids = dict(Tenant.objects.values_list("slug", "pk"))
    for name, filters in [
        ("tenant 1%", AuditEventFilters(tenant_id=tenant_ids["rare"])),
        ("outcome denied", AuditEventFilters(outcome="denied")),
        ("action erase", AuditEventFilters(action="erase")),
        ("actor", AuditEventFilters(actor="user-07")),
        ("classification", AuditEventFilters(classification="restricted")),
        ("event type prefix", AuditEventFilters(event_type_prefix="key.")),
    ]:
        query = audit_event_filter(AuditEvent.objects.all(), filters).order_by("-pk")[:51]
        sql, params = query.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {sql}", params)
            plan = [line for (line,) in cursor.fetchall()]
        uses = next((line.strip() for line in plan if "Index" in line or "Scan" in line), "")
        print(f"  {name:20} {uses}")
    connection.close()
    if not args.keep:
        _postgres(create=False)


if __name__ == "__main__":
    main()
