"""The archive: what it holds, its checksums, signature and encryption, and the restore's
checks that run before the database is touched."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.audit.backup import cipher
from apps.audit.backup.services import BackupError, backup_create
from apps.audit.models import AuditEvent
from apps.providers.services import provider_create
from atp_site.lib import crypto

# A backup copies what is committed, outside any transaction.
pytestmark = pytest.mark.django_db(transaction=True)

PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def populated(tenant_factory):
    tenant_factory(slug="acme")
    provider_create(
        name="upstream",
        kind="openai_compatible",
        base_url="http://127.0.0.1:9/v1",
        api_key="sk-upstream-secret",
    )


def members(path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar}


def restore(*args: str) -> str:
    out = io.StringIO()
    call_command("atp_restore", *args, "--yes", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_a_backup_holds_the_dump_heads_and_a_signed_manifest_of_key_ids(populated, settings):
    result = backup_create()
    assert result.path.parent == settings.ATP_BACKUP_DIR
    assert result.path.name.startswith("atp-backup-") and result.path.suffix == ".tar"
    held = members(result.path)
    manifest = json.loads(held["manifest.json"])
    database = manifest["database"]["member"]
    assert set(held) == {
        "manifest.json",
        "manifest.sig",
        database,
        "audit_heads.jsonl",
        "audit_head_public_key.pem",
    }
    assert "secrets.json" not in held
    # The chain was sealed before the dump; the heads file in the archive vouches for it.
    head = json.loads(held["audit_heads.jsonl"].splitlines()[-1])["statement"]
    assert head["sequence"] == manifest["audit"]["chain_sequence"] > 0
    assert manifest["database"]["migrations"]["audit"][0] == "0001_initial"
    # Key ids, never keys.
    used = manifest["keys"]["encryption"]["used"]
    assert used == {crypto.key_ids()[0]: {"provider_credentials": 1}}
    assert manifest["keys"]["audit_signing"]["used"].keys() == {"k1"}
    text = b"".join(v for k, v in held.items() if k != database).decode()
    for secret in (*settings.ATP_ENCRYPTION_KEYS, settings.ATP_AUDIT_HEAD_KEY, "sk-upstream"):
        assert secret not in text
    assert settings.ATP_AUDIT_SIGNING_KEYS[0].partition(":")[2] not in text
    # The checksum file, in sha256sum's format.
    assert result.path.with_name(result.path.name + ".sha256").read_text() == (
        f"{result.sha256}  {result.path.name}\n"
    )
    event = AuditEvent.objects.get(event_type="backup.created")
    assert event.data["file"] == result.path.name and event.data["sha256"] == result.sha256


def test_encryption_round_trip_and_keys_only_inside_encryption(populated, settings, tmp_path):
    result = backup_create(passphrase=PASSPHRASE, include_keys=True)
    assert result.path.name.endswith(".tar.enc") and cipher.is_encrypted(result.path)
    raw = result.path.read_bytes()
    assert settings.ATP_AUDIT_HEAD_KEY.encode() not in raw and b"manifest.json" not in raw
    plain = io.BytesIO()
    with open(result.path, "rb") as fh:
        cipher.decrypt(fh, plain, PASSPHRASE)
    plain.seek(0)
    with tarfile.open(fileobj=plain) as tar:
        secrets = json.load(tar.extractfile("secrets.json"))
    assert secrets["ATP_AUDIT_HEAD_KEY"] == settings.ATP_AUDIT_HEAD_KEY
    assert secrets["ATP_ENCRYPTION_KEYS"] == list(settings.ATP_ENCRYPTION_KEYS)

    passfile = tmp_path / "pass"
    passfile.write_text(PASSPHRASE + "\n")
    out = io.StringIO()
    call_command(
        "atp_restore", str(result.path), "--decrypt-key-file", str(passfile),
        "--extract-keys", str(tmp_path / "keys"), stdout=out,
    )  # fmt: skip
    assert (tmp_path / "keys" / "audit_head_key").read_text().strip() == (
        settings.ATP_AUDIT_HEAD_KEY
    )
    assert (tmp_path / "keys" / "encryption_keys").stat().st_mode & 0o777 == 0o600
    assert "ATP_AUDIT_SIGNING_KEYS" in out.getvalue()


@pytest.mark.parametrize("size", [0, 1, 1000, 3000, 5120])
def test_cipher_streams_any_size_in_chunks(monkeypatch, size):
    monkeypatch.setattr(cipher, "CHUNK", 1000)
    data = (bytes(range(256)) * 20)[:size]
    sealed = io.BytesIO()
    writer = cipher.Writer(sealed, PASSPHRASE)
    for start in range(0, size, 700):  # writes that straddle chunk boundaries
        writer.write(data[start : start + 700])
    writer.close()
    out = io.BytesIO()
    cipher.decrypt(io.BytesIO(sealed.getvalue()), out, PASSPHRASE)
    assert out.getvalue() == data


def test_cipher_catches_a_dropped_last_chunk(monkeypatch):
    monkeypatch.setattr(cipher, "CHUNK", 1000)
    sealed = io.BytesIO()
    cipher.encrypt(io.BytesIO(b"x" * 5120), sealed, PASSPHRASE)  # six chunks
    # Drop the last chunk (120 bytes, its tag and length): the one before is not the last.
    cut = sealed.getvalue()[: -(120 + 16 + 4)]
    with pytest.raises(cipher.Damaged, match="chunk 4"):
        cipher.decrypt(io.BytesIO(cut), io.BytesIO(), PASSPHRASE)


def test_include_keys_is_refused_without_encryption(populated, settings):
    with pytest.raises(CommandError, match="--include-keys needs an encrypted archive"):
        call_command("atp_backup", "--include-keys", stdout=io.StringIO(), stderr=io.StringIO())
    assert not list(settings.ATP_BACKUP_DIR.glob("atp-backup-*"))


def test_a_short_passphrase_is_refused(populated):
    with pytest.raises(BackupError, match="at least 16 characters"):
        backup_create(passphrase="short")


def test_wrong_passphrase(populated, tmp_path):
    result = backup_create(passphrase=PASSPHRASE)
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase at all")
    with pytest.raises(CommandError, match="^Not restored: wrong backup encryption key"):
        restore(str(result.path), "--decrypt-key-file", str(wrong))
    with pytest.raises(CommandError, match="the archive is encrypted: give its key"):
        restore(str(result.path))


def flip_byte_in(path, member: str) -> None:
    with tarfile.open(path) as tar:
        offset = tar.getmember(member).offset_data
    data = bytearray(path.read_bytes())
    data[offset + 10] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_archive_fails_its_checksums(populated):
    result = backup_create()
    database = json.loads(members(result.path)["manifest.json"])["database"]["member"]
    flip_byte_in(result.path, database)
    with pytest.raises(CommandError, match="checksum mismatch: .*does not match .*sha256"):
        restore(str(result.path))
    # Without the checksum file, the manifest's checksum of the member still catches it.
    result.path.with_name(result.path.name + ".sha256").unlink()
    with pytest.raises(CommandError, match=f"checksum mismatch: member {database}"):
        restore(str(result.path))


def test_an_encrypted_archive_changed_anywhere_is_refused(populated):
    result = backup_create(passphrase=PASSPHRASE)
    result.path.with_name(result.path.name + ".sha256").unlink()
    data = bytearray(result.path.read_bytes())
    data[len(data) // 2] ^= 0x01
    result.path.write_bytes(bytes(data))
    with pytest.raises(BackupError, match="encrypted archive is damaged"):
        from apps.audit.backup.services import backup_restore

        backup_restore(result.path, passphrase=PASSPHRASE)


def test_a_rewritten_manifest_fails_its_signature(populated, tmp_path):
    result = backup_create()
    held = members(result.path)
    manifest = json.loads(held["manifest.json"])
    manifest["keys"]["encryption"]["used"] = {}
    held["manifest.json"] = json.dumps(manifest).encode()
    forged = tmp_path / result.path.name
    with tarfile.open(forged, "w") as tar:
        for name, data in held.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(CommandError, match="signature does not verify"):
        restore(str(forged))


def test_a_backup_from_a_newer_atp_is_refused(populated, tmp_path):
    from apps.audit.backup import archive
    from apps.audit.sealing import head_key

    result = backup_create()
    held = members(result.path)
    manifest = json.loads(held["manifest.json"])
    manifest["database"]["migrations"]["audit"].append("9999_from_the_future")
    held["manifest.json"] = json.dumps(manifest).encode()
    held["manifest.sig"] = archive.sign_manifest(held["manifest.json"], head_key())
    newer = tmp_path / result.path.name
    with open(newer, "wb") as out:
        archive.pack(out, list(held.items()))
    with pytest.raises(CommandError, match="made by a newer ATP .*audit.9999_from_the_future"):
        restore(str(newer))


def test_a_server_without_the_keys_is_told_which_ids_it_lacks(populated, settings):
    result = backup_create()
    needed = crypto.key_ids()[0]
    settings.ATP_ENCRYPTION_KEYS = ["a-new-key-nobody-used-yet-0123456789"]
    with pytest.raises(
        CommandError, match=f"lacks encryption key id {needed} \\(provider credentials\\)"
    ):
        restore(str(result.path))
    settings.ATP_ENCRYPTION_KEYS = ["a-new-key-nobody-used-yet-0123456789", "x"]
    settings.ATP_AUDIT_SIGNING_KEYS = ["k1:another-secret-under-the-same-id"]
    with pytest.raises(CommandError, match="audit signing key k1 \\(this server's k1 is another"):
        restore(str(result.path))
    settings.ATP_AUDIT_HEAD_KEY = "a-different-head-key-0123456789abcdef0123"
    with pytest.raises(CommandError, match="; audit head key [0-9a-f]{16}\\.$"):
        restore(str(result.path))


def test_a_database_that_is_not_empty_is_not_overwritten(populated):
    result = backup_create()
    with pytest.raises(CommandError, match="the database is not empty; .* --force"):
        restore(str(result.path))
    assert not AuditEvent.objects.filter(event_type="audit.restored").exists()


def test_a_run_that_died_leaves_nothing_behind_after_the_next(populated, settings):
    # The dump is staged in the data directory, never where backups are copied from.
    dead = settings.DATA_DIR / "backup-staging" / ".atp-backup-died"
    dead.mkdir(parents=True)
    (dead / "database.sqlite3.gz").write_bytes(b"half a dump")
    settings.ATP_BACKUP_DIR.mkdir()
    partial = settings.ATP_BACKUP_DIR / ".atp-backup-atp-backup-20261204T014700Z.tar.partial"
    partial.write_bytes(b"half an archive")
    result = backup_create()
    assert sorted(p.name for p in settings.ATP_BACKUP_DIR.iterdir()) == [
        ".lock",
        result.path.name,
        result.path.name + ".sha256",
    ]
    assert not list((settings.DATA_DIR / "backup-staging").iterdir())
