"""Fifty writers in two processes extend one gap-free chain (real PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection

from apps.audit.models import AuditEvent
from apps.audit.verify import verify_chain

ROOT = Path(__file__).resolve().parents[2]

WRITER = """
import os, sys, threading, time
import django
django.setup()
from django.db import connections
from apps.audit.services import audit_record

start_at, threads, label = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
errors = []

def write(i):
    try:
        while time.time() < start_at:
            time.sleep(0.001)
        audit_record(event_type="test.concurrent", action="write",
                     resource_type="writer", resource_id=f"{label}-{i}")
    except Exception as exc:
        errors.append(repr(exc))
    finally:
        connections.close_all()

workers = [threading.Thread(target=write, args=(i,)) for i in range(threads)]
for w in workers: w.start()
for w in workers: w.join(60)
if errors:
    print("\\n".join(errors)); sys.exit(1)
"""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")
def test_fifty_concurrent_writers_in_two_processes_form_one_chain():
    url = urlsplit(os.environ["DATABASE_URL"])
    test_db_url = urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"]))
    env = {
        **os.environ,
        "DATABASE_URL": test_db_url,
        "ATP_AUDIT_SIGNING_KEYS": ",".join(settings.ATP_AUDIT_SIGNING_KEYS),
        "DJANGO_SETTINGS_MODULE": "atp_site.settings",
    }
    start_at = str(time.time() + 3)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, start_at, "25", label],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for label in ("a", "b")
    ]
    for proc in procs:
        out, _ = proc.communicate(timeout=90)
        assert proc.returncode == 0, out
    sequences = list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True))
    assert sequences == list(range(1, 51))
    writers = set(AuditEvent.objects.values_list("resource_id", flat=True))
    assert len(writers) == 50
    result = verify_chain()
    assert result.ok and result.checked == 50
