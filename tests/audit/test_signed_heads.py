"""Signed heads: the key, where heads are written, and verification from checkpoints."""

from __future__ import annotations

import io
import json

import pytest
from channels.testing import ApplicationCommunicator
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command

from apps.audit import heads
from apps.audit.models import AuditEvent, AuditSignedHead
from apps.audit.sealing import audit_head_seal, head_key
from apps.audit.services import audit_record
from apps.audit.verify import verify_chain

pytestmark = pytest.mark.django_db

SECRET = "a-long-random-secret-from-the-vault-0123456789"


def record(n: int) -> list[AuditEvent]:
    return [audit_record(event_type="test.event", action="write", data={"i": i}) for i in range(n)]


def pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


# --- the key ----------------------------------------------------------------------------------


def test_a_pem_ed25519_key_is_used_as_given(settings):
    key = Ed25519PrivateKey.generate()
    settings.ATP_AUDIT_HEAD_KEY = pem(key).strip()  # as env_secret reads a _FILE: stripped
    assert heads.fingerprint(head_key()) == heads.fingerprint(key)


def test_a_plain_secret_derives_the_same_key_every_time(settings):
    settings.ATP_AUDIT_HEAD_KEY = SECRET
    first = heads.public_key_pem(head_key())
    assert heads.public_key_pem(heads.private_key_from(SECRET)) == first
    assert heads.public_key_pem(heads.private_key_from(SECRET + "x")) != first


@pytest.mark.parametrize(
    "value, message",
    [
        ("short-secret", "at least 32 characters"),
        (pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)), "not an Ed25519"),
        ("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----", "not a readable"),
    ],
)
def test_unusable_keys_are_refused_with_a_reason(value, message):
    with pytest.raises(heads.HeadKeyError, match=message):
        heads.private_key_from(value)


def test_public_key_command_prints_what_verifies_the_heads(settings):
    settings.ATP_AUDIT_HEAD_KEY = SECRET
    out, err = io.StringIO(), io.StringIO()
    call_command("audit_public_key", stdout=out, stderr=err)
    public = heads.public_key_from_pem(out.getvalue())
    assert out.getvalue().startswith("-----BEGIN PUBLIC KEY-----")
    assert heads.fingerprint(public) in err.getvalue()
    record(2)
    row = audit_head_seal(reason="sealed")
    line = json.loads(settings.ATP_AUDIT_HEAD_FILE.read_text())
    assert heads.verified_statement(line, public)["sequence"] == row.sequence


# --- where heads go ---------------------------------------------------------------------------


def test_a_seal_goes_to_the_database_the_file_and_the_sink(settings, tmp_path):
    sink = tmp_path / "sink"
    sink.mkdir()
    settings.ATP_AUDIT_HEAD_SINK = str(sink)
    assert audit_head_seal(reason="sealed") is None  # nothing to vouch for yet
    events = record(3)
    row = audit_head_seal(reason="sealed")
    assert (row.sequence, row.hash, row.verified) == (3, events[-1].hash, None)
    [line] = settings.ATP_AUDIT_HEAD_FILE.read_text().splitlines()
    [copy] = sink.iterdir()
    assert json.loads(line) == json.loads(copy.read_text())
    assert json.loads(line)["signature"] == row.signature
    assert copy.name.startswith("00000000000000000003-")
    assert oct(settings.ATP_AUDIT_HEAD_FILE.stat().st_mode & 0o777) == "0o600"
    record(1)
    audit_head_seal(reason="sealed")
    assert len(settings.ATP_AUDIT_HEAD_FILE.read_text().splitlines()) == 2
    assert len(list(sink.iterdir())) == 2


def test_the_periodic_seal_signs_the_end_only_when_the_chain_moved(settings):
    from apps.audit.tasks import seal_head_task

    assert seal_head_task() == {"sealed": False, "sequence": 0}
    events = record(2)
    assert seal_head_task() == {"sealed": True, "sequence": 2}
    assert seal_head_task() == {"sealed": False, "sequence": 2}  # idle: no new line
    events += record(1)
    assert seal_head_task()["sealed"] is True
    lines = [json.loads(x) for x in settings.ATP_AUDIT_HEAD_FILE.read_text().splitlines()]
    assert [(x["statement"]["sequence"], x["statement"]["reason"]) for x in lines] == [
        (2, "periodic"),
        (3, "periodic"),
    ]
    assert lines[-1]["statement"]["hash"] == events[-1].hash


def test_the_periodic_seal_is_on_the_beat_schedule(settings):
    from atp_site.celery import app

    entry = app.conf.beat_schedule["audit-seal-head"]
    assert entry["task"] == "audit.seal_head"
    assert entry["schedule"] == float(settings.ATP_AUDIT_SEAL_SECONDS)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("secrets_given")
async def test_graceful_shutdown_seals_the_drained_chain(settings):
    from asgiref.sync import SyncToAsync, sync_to_async
    from django.db import connections

    from apps.routing.lifecycle import lifespan

    last = (await sync_to_async(record)(3))[-1]
    comm = ApplicationCommunicator(lifespan, {"type": "lifespan"})
    try:
        await comm.send_input({"type": "lifespan.startup"})
        assert (await comm.receive_output(60))["type"] == "lifespan.startup.complete"
        await comm.send_input({"type": "lifespan.shutdown"})
        assert (await comm.receive_output(30))["type"] == "lifespan.shutdown.complete"
    finally:
        # The lifespan's ORM calls ran in asgiref's worker thread: close its connection so
        # the test database can be dropped at the end of the session.
        SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)
    statement = json.loads(settings.ATP_AUDIT_HEAD_FILE.read_text())["statement"]
    assert (statement["sequence"], statement["hash"], statement["reason"]) == (
        last.sequence,
        last.hash,
        "shutdown",
    )


# --- verification from checkpoints ------------------------------------------------------------


def test_verification_starts_from_the_last_verified_checkpoint():
    record(5)
    first = verify_chain()
    assert first.ok and first.full and first.checked == 5
    again = verify_chain()
    assert again.ok and not again.full and (again.start_sequence, again.checked) == (5, 0)
    record(2)
    later = verify_chain()
    assert later.ok and (later.start_sequence, later.checked, later.head_sequence) == (5, 2, 7)
    whole = verify_chain(full=True)
    assert whole.ok and whole.full and whole.checked == 7


def test_a_full_walk_that_fails_sends_every_later_check_the_whole_way(tamper):
    record(5)
    assert verify_chain().ok
    with tamper() as cursor:
        cursor.execute("UPDATE audit_auditevent SET action = 'x' WHERE sequence = 2")
    # Behind the checkpoint: an incremental check does not look (the nightly job does).
    assert verify_chain().ok
    assert verify_chain(full=True).problem.kind == "modified"
    after = verify_chain()
    assert after.full and after.problem.kind == "modified"


def test_an_altered_checkpoint_event_is_not_trusted(tamper):
    record(4)
    assert verify_chain().ok
    with tamper() as cursor:
        cursor.execute("UPDATE audit_auditevent SET action = 'x' WHERE sequence = 4")
    result = verify_chain()
    assert result.full and result.problem.kind == "modified"


def test_a_checkpoint_forged_in_the_database_is_reported(tamper):
    events = record(4)
    with tamper():
        statement = heads.head_statement(
            sequence=4,
            digest=events[-1].hash,
            signed_at=events[-1].occurred_at,
            reason="verified",
            verified=True,
        )
        AuditSignedHead.objects.create(
            sequence=4,
            hash=events[-1].hash,
            signed_at=events[-1].occurred_at,
            reason="verified",
            verified=True,
            statement=heads.canonical(statement).decode(),
            key=heads.fingerprint(head_key()),
            signature="A" * 88,
        )
    result = verify_chain()
    assert result.full and result.problem.kind == "bad_signature"


def test_verify_api_takes_full(admin_client):
    record(3)
    assert admin_client.get("/api/v1/audit/verify/").json()["full"] is True
    body = admin_client.get("/api/v1/audit/verify/").json()
    assert body["full"] is False and body["status"] == "ok"
    body = admin_client.get("/api/v1/audit/verify/", {"full": "true"}).json()
    assert body["full"] is True and body["checked"] == body["head_sequence"]
    response = admin_client.get("/api/v1/audit/verify/", {"full": "maybe"})
    assert response.status_code == 400 and "full" in response.json()


def test_report_verification_is_incremental_unless_full():
    from datetime import timedelta

    from django.utils import timezone

    from apps.audit.reports import report_build

    record(3)
    now = timezone.now()
    period = {"since": now - timedelta(days=1), "until": now + timedelta(days=1)}
    assert report_build(tenant=None, **period).verification["walk"] == "full"
    report = report_build(tenant=None, **period)
    assert report.verification["walk"].startswith("from the verified checkpoint")
    assert report_build(tenant=None, full=True, **period).verification["walk"] == "full"
