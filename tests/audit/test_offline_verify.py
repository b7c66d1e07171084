"""An auditor checks an export offline with the public key alone, without Django."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.audit.guards import audit_escape
from apps.audit.models import AuditChainHead, AuditEvent, AuditSignedHead
from apps.audit.sealing import audit_head_seal
from apps.audit.services import audit_purge_through, audit_record

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
EXPORT = "/api/v1/audit/export/"


@pytest.fixture
def public_key(tmp_path) -> Path:
    """What the operator hands the auditor: `manage.py audit_public_key > head.pem`."""
    out = io.StringIO()
    call_command("audit_public_key", stdout=out, stderr=io.StringIO())
    path = tmp_path / "head.pem"
    path.write_text(out.getvalue())
    return path


def record(n: int, **fields) -> list[AuditEvent]:
    return [
        audit_record(event_type="test.event", action="write", data={"i": i, "x": 0.1}, **fields)
        for i in range(n)
    ]


def export(client, tmp_path: Path, fmt: str = "jsonl", **filters) -> Path:
    response = client.get(EXPORT, {"format": fmt, **filters})
    assert response.status_code == 200
    path = tmp_path / f"export.{fmt}"
    path.write_bytes(b"".join(response.streaming_content))
    return path


def offline(export_path: Path, public_key: Path, *heads: Path) -> subprocess.CompletedProcess:
    """The verifier in a fresh interpreter that cannot import Django at all."""
    args = [str(export_path), "--public-key", str(public_key)]
    for path in heads:
        args += ["--heads", str(path)]
    code = (
        "import sys; sys.modules['django'] = None\n"
        "from apps.audit.offline_verify import main\n"
        f"sys.exit(main({args!r}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "ATP_", "DATABASE"))}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_lines(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_a_complete_export_verifies_with_the_public_key_alone(
    admin_client, tmp_path, public_key, fmt
):
    record(5)
    audit_purge_through(sequence=2, reason="retention")  # the start is anchored by a checkpoint
    record(2)
    result = offline(export(admin_client, tmp_path, fmt), public_key)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: ") and "a complete chain" in result.stdout


def test_an_edited_event_is_caught(admin_client, tmp_path, public_key):
    record(4)
    path = export(admin_client, tmp_path)
    records = lines(path)
    records[1]["actor"] = "somebody else"
    write_lines(path, records)
    result = offline(path, public_key)
    assert result.returncode == 1
    assert "modified" in result.stdout and f"event {records[1]['sequence']}" in result.stdout


def test_events_dropped_from_the_export_are_caught(admin_client, tmp_path, public_key):
    record(4)
    path = export(admin_client, tmp_path)
    *events, manifest = lines(path)
    write_lines(path, [*events[:-2], manifest])
    result = offline(path, public_key)
    assert result.returncode == 1 and "deleted" in result.stdout


def test_a_rewritten_manifest_does_not_verify(admin_client, tmp_path, public_key):
    record(4)
    path = export(admin_client, tmp_path)
    *events, manifest = lines(path)
    manifest["atp_export"]["statement"]["rows"] = len(events) - 1
    write_lines(path, [*events[:-1], manifest])
    result = offline(path, public_key)
    assert result.returncode == 1 and "bad_signature" in result.stdout


def test_another_key_cannot_check_the_export(admin_client, tmp_path, settings):
    record(2)
    path = export(admin_client, tmp_path)
    settings.ATP_AUDIT_HEAD_KEY = "some-other-random-secret-of-enough-length-42"
    out = io.StringIO()
    call_command("audit_public_key", stdout=out, stderr=io.StringIO())
    other = tmp_path / "other.pem"
    other.write_text(out.getvalue())
    result = offline(path, other)
    assert result.returncode == 2 and "another key" in result.stderr


def test_a_filtered_export_verifies_what_it_holds(
    admin_client, tmp_path, public_key, tenant_factory
):
    tenant = tenant_factory(slug="acme")
    for _ in range(3):
        record(1, tenant_id=tenant.pk)
        record(1)
    path = export(admin_client, tmp_path, tenant="acme")
    result = offline(path, public_key)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "a filtered export" in result.stdout
    records = lines(path)
    records[0]["data"]["i"] = 7
    write_lines(path, records)
    assert offline(path, public_key).returncode == 1


def test_a_cut_hidden_from_the_server_is_caught_with_the_auditors_copy_of_the_heads(
    admin_client, tmp_path, public_key, settings
):
    """Someone with the database and the host's files cuts the chain's end, wipes the
    signed heads in the database and the heads file: the server's own verification
    passes, but the sink's copy (WORM storage the auditor reads) still vouches."""
    sink = tmp_path / "worm"
    sink.mkdir()
    settings.ATP_AUDIT_HEAD_SINK = str(sink)
    events = record(6)
    audit_head_seal(reason="nightly", verified=True)
    keep = events[2].sequence
    with audit_escape():
        AuditEvent.objects.filter(sequence__gt=keep).delete()
        AuditChainHead.objects.filter(pk=1).update(sequence=keep, hash=events[2].hash)
        AuditSignedHead.objects.all().delete()
    settings.ATP_AUDIT_HEAD_FILE.unlink()
    auditors_copy = tmp_path / "auditor-heads"
    shutil.copytree(sink, auditors_copy)
    settings.ATP_AUDIT_HEAD_SINK = ""  # the server no longer reaches it either

    path = export(admin_client, tmp_path)
    assert offline(path, public_key).returncode == 0  # without the heads: nothing to see
    result = offline(path, public_key, auditors_copy)
    assert result.returncode == 1
    assert "truncated" in result.stdout and f"event {keep + 1}" in result.stdout


def test_the_servers_own_break_is_reported(admin_client, tmp_path, public_key, settings):
    events = record(5)
    audit_head_seal(reason="sealed")
    with audit_escape():
        AuditEvent.objects.filter(sequence__gt=events[1].sequence).delete()
        AuditChainHead.objects.filter(pk=1).update(sequence=events[1].sequence, hash=events[1].hash)
    path = export(admin_client, tmp_path)
    result = offline(path, public_key, settings.ATP_AUDIT_HEAD_FILE)
    assert result.returncode == 1 and "truncated" in result.stdout
