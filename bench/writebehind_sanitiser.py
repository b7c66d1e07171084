"""Per-row cost of making write-behind values storable (atp_site/lib/storable.py).

Builds the parameters the row inserter sends for realistic request log rows, with the
per-column adapters that clean text, integers, decimals and JSON, and with the adapters
the inserter used before (plain values passed through, JSON serialised as it was): the
difference is what the cleaning costs per row. Also the audit event's extra step (text
cleaned before hashing) and the data plane's identifier check. No database is touched.
Pinned to one core with taskset when it is available; CPU time of this process
(time.process_time), so other load on a shared machine disturbs the figures less. Compare
the "best" column: the medians carry that load.

    .venv/bin/python bench/writebehind_sanitiser.py [--rows 20000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _setup() -> None:
    # DATABASE_URL, when set, picks the backend whose value adapters are measured (no
    # query is made); unset, SQLite's.
    os.environ.setdefault("ATP_DATA_DIR", tempfile.mkdtemp(prefix="atp-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atp_site.settings")
    import django

    django.setup()


def _row(i: int) -> dict:
    now = datetime.now(UTC)
    return {
        "request_id": f"req_3f2a9c0d81b4e7a6{i:012x}",
        "created_at": now,
        "completed_at": now,
        "endpoint": "chat.completions",
        "tenant_id": "6f1c2a52-8a4e-4d8b-9a57-0c5d3e2f1a10",
        "api_key_id": "0b8e5e2c-3f7a-4c61-b0f2-9d4e6a1c7b33",
        "end_user": f"user-{i % 500}",
        "requested_model": "auto",
        "model": "gpt-4o-mini",
        "upstream_model": "gpt-4o-mini-2024-07-18",
        "deployment_id": "7c3b1e9a-2d4f-4a8e-b6c1-5f0e9d2a3b44",
        "provider_id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        "stream": False,
        "status": "success",
        "http_status": 200,
        "input_tokens": 412,
        "output_tokens": 128,
        "cached_input_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "usage_estimated": False,
        "cost_usd": Decimal("0.00013860"),
        "latency_ms": 183,
        "ttft_ms": None,
        "error_type": "",
        "error_message": "",
        "route": "auto",
        "decision": {
            "route": "auto",
            "strategy": "learned",
            "model": "gpt-4o-mini",
            "provider": "openai",
            "confidence": 0.82,
            "task_cluster": 4,
            "reasoning": [
                "12 candidates after filters",
                "tier balanced: quality 0.55, cost 0.30, latency 0.15",
                "bandit (cluster 4) chose gpt-4o-mini",
            ],
        },
        "task_cluster": 4,
        "cache": "",
        "shadow_of": "",
    }


def _old_adapters(connection) -> list:
    """The inserter's adapters before values were cleaned (kept here as the baseline)."""
    import orjson
    from django.apps import apps

    plain = {
        "CharField",
        "TextField",
        "BooleanField",
        "IntegerField",
        "PositiveIntegerField",
        "PositiveSmallIntegerField",
        "PositiveBigIntegerField",
        "SmallIntegerField",
        "BigIntegerField",
    }

    def _json(value):
        return None if value is None else orjson.dumps(value).decode()

    def _prep(field, value):
        return field.get_db_prep_save(value, connection)

    out = []
    for f in apps.get_model("routing.RequestLog")._meta.concrete_fields:
        if f.primary_key:
            continue
        kind = f.get_internal_type()
        adapt = None if kind in plain else _json if kind == "JSONField" else partial(_prep, f)
        default = None if f.has_default() and callable(f.default) else f.get_default()
        out.append((f.attname, adapt, default))
    return out


def _params(adapters: list, rows: list[dict]) -> list:
    return [
        [
            row.get(key, default) if adapt is None else adapt(row.get(key, default))
            for key, adapt, default in adapters
        ]
        for row in rows
    ]


def _time(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    if shutil.which("taskset") and os.environ.get("ATP_BENCH_PINNED") != "1":
        os.environ["ATP_BENCH_PINNED"] = "1"
        os.execvp("taskset", ["taskset", "-c", "0", sys.executable, *sys.argv])
    _setup()
    from django.db import connections

    from apps.audit.services import _storable
    from apps.audit.writebehind import _pending, gateway_event
    from atp_site.lib import bulk
    from atp_site.lib.bulk import RowInserter
    from atp_site.lib.identifiers import control_free

    connection = connections["default"]
    rows = [_row(i) for i in range(args.rows)]
    new = RowInserter("routing.RequestLog")._prepare(connection)[2]
    memo_types, bulk.MEMO_TYPES = bulk.MEMO_TYPES, frozenset()
    unmemoised = RowInserter("routing.RequestLog")._prepare(connection)[2]
    bulk.MEMO_TYPES = memo_types
    old = _old_adapters(connection)

    def per_row(fn) -> tuple[float, float]:
        samples = [t / args.rows * 1e6 for t in _time(fn, args.repeat)]
        return statistics.median(samples), max(samples) - min(samples)

    results = {}
    # Interleave the two so drift on a shared machine touches both alike.
    olds, bares, news = [], [], []
    for _ in range(args.repeat):
        olds.append(per_row(lambda: _params(old, rows))[0])
        bares.append(per_row(lambda: _params(unmemoised, rows))[0])
        news.append(per_row(lambda: _params(new, rows))[0])
    results["request log row: parameters, before"] = (statistics.median(olds), olds)
    results["request log row: cleaned, ids not memoised"] = (statistics.median(bares), bares)
    results["request log row: cleaned, ids memoised"] = (statistics.median(news), news)

    from apps.audit import chain
    from apps.audit.services import _fields

    events = [_pending(gateway_event(row, provider="openai")) for row in rows[:5000]]
    fields = [_fields(e, 1, "0" * 64, uuid.uuid4()) for e in events]

    def hash_plain():
        for f in fields:
            chain.event_hash(f)

    def hash_cleaned():
        for f in fields:
            _storable(f)

    plain_h, cleaned_h = [], []
    for _ in range(args.repeat):
        plain_h.append(min(_time(hash_plain, 1)) / len(fields) * 1e6)
        cleaned_h.append(min(_time(hash_cleaned, 1)) / len(fields) * 1e6)
    results["audit event: canonical form, before"] = (statistics.median(plain_h), plain_h)
    results["audit event: canonical form, cleaned first"] = (
        statistics.median(cleaned_h),
        cleaned_h,
    )

    ids = [f"user-{i}" for i in range(args.rows)]

    def check_ids():
        for value in ids:
            control_free(value)

    idc = [min(_time(check_ids, 1)) / len(ids) * 1e6 for _ in range(args.repeat)]
    results["identifier check (per value)"] = (statistics.median(idc), idc)

    import timeit

    import orjson

    from atp_site.lib.storable import decimal_clamp, int_adapter, json_text, text_adapter

    text, number = text_adapter(200), int_adapter(0, 2**31 - 1)
    money = decimal_clamp(type("F", (), {"max_digits": 14, "decimal_places": 8})())
    decision, cost = rows[0]["decision"], rows[0]["cost_usd"]
    single = {
        "text column, clean ASCII": lambda: text("gpt-4o-mini-2024-07-18"),
        "text column, empty": lambda: text(""),
        "integer column, in range": lambda: number(412),
        "decimal column, in range": lambda: money(cost),
        "JSON column (decision), before: orjson": lambda: orjson.dumps(decision).decode(),
        "JSON column (decision), cleaned: json_text": lambda: json_text(decision),
    }
    for name, fn in single.items():
        timer = timeit.Timer(fn, timer=time.process_time)
        samples = [t / 100_000 * 1e6 for t in timer.repeat(number=100_000, repeat=args.repeat)]
        results[name] = (statistics.median(samples), samples)

    print(f"{args.rows} rows, {args.repeat} interleaved runs; microseconds: median, best, worst")
    for name, (median, samples) in results.items():
        print(f"  {name:46s} {median:7.3f} {min(samples):7.3f} {max(samples):7.3f}")
    for label, pick in (("median", statistics.median), ("best", min)):
        before = pick(results["request log row: parameters, before"][1])
        bare = pick(results["request log row: cleaned, ids not memoised"][1])
        after = pick(results["request log row: cleaned, ids memoised"][1])
        print(
            f"  per request log row ({label}): cleaning {bare - before:+.3f} us, "
            f"with the id memo {after - before:+.3f} us"
        )


if __name__ == "__main__":
    main()
