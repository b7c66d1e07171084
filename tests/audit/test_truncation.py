"""Cutting the chain's end is caught: signed heads outside the database vouch for it."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.audit.guards import audit_escape
from apps.audit.models import AuditChainHead, AuditEvent, AuditSignedHead
from apps.audit.sealing import audit_head_seal
from apps.audit.services import audit_record
from apps.audit.tasks import verify_chain_task
from apps.audit.verify import verify_chain

pytestmark = pytest.mark.django_db


def record(n: int) -> list[AuditEvent]:
    return [
        audit_record(event_type="tenant.updated", action="update", data={"i": i}) for i in range(n)
    ]


def cut_the_end(keep: int, *, forget_signed_heads: bool = False) -> None:
    """What a database user who can open the escape does: delete the last events and
    rewind the chain-head row to match, optionally wiping the signed heads in the
    database too. Only SQL the application's role may run."""
    with audit_escape():
        AuditEvent.objects.filter(sequence__gt=keep).delete()
        last = AuditEvent.objects.get(sequence=keep)
        AuditChainHead.objects.filter(pk=1).update(sequence=keep, hash=last.hash)
        if forget_signed_heads:
            AuditSignedHead.objects.all().delete()


def heads_file(settings) -> list[dict]:
    return [json.loads(line) for line in settings.ATP_AUDIT_HEAD_FILE.read_text().splitlines()]


def test_deleting_the_last_events_and_rewinding_the_head_is_reported(settings):
    record(6)
    audit_head_seal(reason="sealed")
    cut_the_end(3)
    result = verify_chain()
    assert not result.ok
    assert (result.problem.kind, result.problem.sequence) == ("truncated", 4)
    assert "vouches for event 6" in result.problem.detail
    assert verify_chain(full=True).problem.kind == "truncated"


def test_truncation_is_caught_from_the_file_when_the_database_heads_are_gone(settings):
    record(6)
    audit_head_seal(reason="sealed")
    cut_the_end(3, forget_signed_heads=True)
    problem = verify_chain().problem
    assert problem.kind == "truncated"
    assert "in the heads file line 1" in problem.detail


def test_a_rewritten_end_is_caught_at_the_signed_position(settings):
    events = record(6)
    audit_head_seal(reason="sealed")
    cut_the_end(3, forget_signed_heads=True)
    record(3)  # events 4..6 again, with other content
    assert AuditEvent.objects.get(sequence=6).hash != events[-1].hash
    problem = verify_chain().problem
    assert (problem.kind, problem.sequence) == ("truncated", 6)
    assert "written again" in problem.detail


def test_without_a_signed_head_the_rewound_chain_still_verifies():
    # What a signed head adds: the same cut with nothing signed beyond it is invisible.
    record(6)
    cut_the_end(3)
    assert verify_chain().ok


def test_heads_from_the_sink_directory_count_too(settings, tmp_path):
    sink = tmp_path / "worm"
    sink.mkdir()
    settings.ATP_AUDIT_HEAD_SINK = str(sink)
    record(5)
    audit_head_seal(reason="sealed")
    [written] = list(sink.glob("*.json"))
    assert json.loads(written.read_text())["statement"]["sequence"] == 5
    settings.ATP_AUDIT_HEAD_FILE.unlink()  # the host's copy is gone; the sink's is not
    cut_the_end(2, forget_signed_heads=True)
    problem = verify_chain().problem
    assert problem.kind == "truncated" and "in the head sink, file 0000" in problem.detail


def test_the_nightly_job_seals_the_verified_head_and_reports_a_cut(settings):
    record(4)
    result = verify_chain_task.apply().get()
    assert result["status"] == "ok"
    [line] = heads_file(settings)
    statement = line["statement"]
    assert (statement["sequence"], statement["reason"], statement["verified"]) == (
        4,
        "nightly",
        True,
    )
    assert statement["hash"] == AuditEvent.objects.get(sequence=4).hash
    cut_the_end(2, forget_signed_heads=True)
    result = verify_chain_task.apply().get()
    assert result["status"] == "broken" and result["problem"]["kind"] == "truncated"
    alert = AuditEvent.objects.get(event_type="audit.chain_broken")
    assert alert.data["kind"] == "truncated"
    # It still seals what it found, marked unverified: the older head keeps the evidence.
    assert heads_file(settings)[-1]["statement"]["verified"] is False
    assert verify_chain().problem.kind == "truncated"


def test_a_forged_head_in_the_file_is_reported(settings):
    record(3)
    audit_head_seal(reason="sealed")
    [line] = heads_file(settings)
    line["statement"]["sequence"] = 99
    with settings.ATP_AUDIT_HEAD_FILE.open("a") as fh:
        fh.write(json.dumps(line) + "\n")
    problem = verify_chain().problem
    assert (problem.kind, problem.sequence) == ("bad_signature", 99)


def test_heads_in_another_key_and_torn_lines_prove_nothing(settings):
    record(3)
    audit_head_seal(reason="sealed")
    settings.ATP_AUDIT_HEAD_KEY = "another-random-secret-of-enough-length-0123456789"
    record(1)
    with settings.ATP_AUDIT_HEAD_FILE.open("a") as fh:
        fh.write('{"statement": {"type": "atp.audit.head", "seq')  # a crash mid-line
    assert verify_chain().ok
    audit_head_seal(reason="sealed")
    # The next head starts on a line of its own and stands.
    assert heads_file_lines(settings)[-1].startswith('{"key"')
    assert verify_chain().signed_head["sequence"] == 4


def heads_file_lines(settings) -> list[str]:
    return settings.ATP_AUDIT_HEAD_FILE.read_text().splitlines()


def test_verify_command_and_api_report_truncation(settings, admin_client):
    events = record(4)
    out = io.StringIO()
    call_command("audit_seal", stdout=out)
    assert out.getvalue().startswith(f"Sealed head #{events[-1].sequence}")
    cut_the_end(events[1].sequence, forget_signed_heads=True)
    with pytest.raises(CommandError, match=f"BROKEN at event {events[2].sequence}: truncated"):
        call_command("audit_verify")
    body = admin_client.get("/api/v1/audit/verify/").json()
    assert body["status"] == "broken" and body["problem"]["kind"] == "truncated"
    assert body["signed_head"]["sequence"] == events[-1].sequence


# --- restoring a backup -------------------------------------------------------------------------


def restore_backup_taken_at(sequence: int) -> None:
    """The database as a backup taken when the chain ended at `sequence` restores it:
    later events and the heads signed in the database after it are gone; the heads file
    outside the database keeps everything."""
    cut_the_end(sequence)
    with audit_escape():
        AuditSignedHead.objects.filter(sequence__gt=sequence).delete()


def test_a_recorded_restore_is_the_one_accepted_rewind(settings):
    record(3)
    audit_head_seal(reason="sealed")  # the backup is taken about now
    record(3)
    audit_head_seal(reason="sealed")
    restore_backup_taken_at(4)
    assert verify_chain().problem.kind == "truncated"

    out = io.StringIO()
    call_command("audit_restored", "--note", "restored the 02:00 backup", stdout=out)
    assert "supersedes signed head #6" in out.getvalue()
    event = AuditEvent.objects.get(event_type="audit.restored")
    assert event.sequence == 5
    assert (event.data["restored_sequence"], event.data["superseded_sequence"]) == (4, 6)
    assert event.data["note"] == "restored the 02:00 backup" and event.actor == "cli:audit_restored"
    result = verify_chain(full=True)
    assert result.ok, result.problem
    assert result.restores[0]["sequence"] == 4
    assert result.signed_head["reason"] == "restored"
    assert heads_file(settings)[-1]["statement"]["sequence"] == 5

    # Life goes on past the old head's position, and a later cut is caught again.
    record(4)
    audit_head_seal(reason="sealed")
    assert verify_chain().ok
    cut_the_end(7, forget_signed_heads=True)
    assert verify_chain().problem.kind == "truncated"


def test_a_restore_does_not_excuse_other_damage(settings, tamper):
    record(5)
    audit_head_seal(reason="sealed")
    restore_backup_taken_at(3)
    with tamper() as cursor:
        cursor.execute("UPDATE audit_auditevent SET action = 'forged' WHERE sequence = 2")
    with pytest.raises(CommandError, match="Refused: .*modified"):
        call_command("audit_restored", "--note", "x", stdout=io.StringIO())
    assert not AuditEvent.objects.filter(event_type="audit.restored").exists()


def test_a_forged_restore_event_is_not_accepted(settings):
    record(5)
    audit_head_seal(reason="sealed")
    cut_the_end(3, forget_signed_heads=True)
    # Someone with the event signing key but not the head key records a restore.
    audit_record(
        event_type="audit.restored",
        action="restore",
        data={"restored_sequence": 3, "signed": {"statement": {}, "key": "x", "signature": ""}},
    )
    assert verify_chain().problem.kind == "truncated"
