"""Back up a populated ATP and restore it into a new one, each in processes of its own.

The source is migrated and populated through the real services; `manage.py atp_backup`
writes the archive; `manage.py atp_restore` loads it into a new database (a new SQLite
file in a new data directory, or a new PostgreSQL database); the target then shows the
same tenants, a key that authenticates, a credential that decrypts and an audit chain
that verifies with the signed audit.restored event at its end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.backups.backup_scenario import CREDENTIAL

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "ATP_ENCRYPTION_KEYS": "backup-test-encryption-key-0123456789",
    "ATP_AUDIT_SIGNING_KEYS": "k1:backup-test-signing-key-0123456789",
    "ATP_AUDIT_HEAD_KEY": "backup-test-head-key-0123456789abcdef0123",
}


def atp_env(data_dir: Path, *, database_url: str = "", **extra: str) -> dict[str, str]:
    """An environment of its own: no variable of the test process's ATP or services."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ATP_", "DATABASE_URL", "REDIS_URL", "PG"))
    }
    env.update(ATP_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="atp_site.settings", **extra)
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def run(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    if ok:
        assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done


def manage(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    return run(env, "manage.py", *args, ok=ok)


def scenario(env: dict[str, str], *args: str) -> dict:
    return json.loads(run(env, "-m", "tests.backups.backup_scenario", *args).stdout)


def populated_source(env: dict[str, str]) -> str:
    manage(env, "migrate", "--noinput")
    return scenario(env, "populate")["key"]


def assert_same_state(state: dict, *, restores: int) -> None:
    assert state["tenants"] == [["acme", "Acme Corp"], ["globex", "Globex"]]
    assert state["projects"] == [["acme", "web"]]
    assert state["key_tenant"] == "acme"  # authenticated through the data plane's step
    assert state["credential"] == CREDENTIAL
    assert state["chain_ok"] is True
    assert len(state["restores"]) == restores
    assert state["event_types"][-1] == "audit.restored"
    assert state["event_types"].count("backup.created") == 0  # written after the dump


def test_sqlite_backup_restores_into_a_new_data_directory_with_its_keys(tmp_path):
    source = atp_env(tmp_path / "source", **KEYS)
    key = populated_source(source)
    passfile = tmp_path / "passphrase"
    passfile.write_text("backup passphrase for the sqlite test\n")
    made = manage(
        source, "atp_backup", "--include-keys", "--encryption-key-file", str(passfile),
        "--dir", str(tmp_path / "backups"),
    )  # fmt: skip
    assert "encrypted, with the server's keys" in made.stdout
    [archive] = (tmp_path / "backups").glob("atp-backup-*.tar.enc")

    # A new host: its own generated keys, which cannot read the backup's data.
    target = atp_env(tmp_path / "target")
    refused = manage(
        target, "atp_restore", str(archive), "--decrypt-key-file", str(passfile), "--yes",
        ok=False,
    )  # fmt: skip
    assert refused.returncode == 1
    message = refused.stderr.splitlines()[-1]
    assert message.startswith("CommandError: Not restored: this server lacks encryption key id ")
    assert "audit signing key k1 (this server's k1 is another key)" in message
    assert "; audit head key " in message and message.endswith("with --extract-keys DIR.")

    keys_dir = tmp_path / "keys"
    manage(
        target, "atp_restore", str(archive), "--decrypt-key-file", str(passfile),
        "--extract-keys", str(keys_dir),
    )  # fmt: skip
    target = atp_env(
        tmp_path / "target",
        ATP_ENCRYPTION_KEYS=(keys_dir / "encryption_keys").read_text().strip(),
        ATP_AUDIT_SIGNING_KEYS=(keys_dir / "audit_signing_keys").read_text().strip(),
        ATP_AUDIT_HEAD_KEY_FILE=str(keys_dir / "audit_head_key"),
    )
    restored = manage(
        target, "atp_restore", str(archive), "--decrypt-key-file", str(passfile), "--yes"
    )
    assert "Audit chain verified." in restored.stdout
    assert_same_state(scenario(target, "inspect", key), restores=1)

    # Restoring again over it needs --force, and is recorded again.
    again = manage(
        target, "atp_restore", str(archive), "--decrypt-key-file", str(passfile), "--yes",
        "--force", "--note", "drill",
    )  # fmt: skip
    assert "superseding signed head" in again.stdout
    state = scenario(target, "inspect", key)
    assert_same_state(state, restores=1)  # the first restore was itself rewound
    heads = (tmp_path / "target" / "audit_heads.jsonl").read_text().splitlines()
    assert json.loads(heads[-1])["statement"]["reason"] == "restored"


def postgres_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        pytest.skip("PostgreSQL backups need DATABASE_URL pointing at PostgreSQL")
    return url


@pytest.fixture
def new_postgres_databases():
    """Two new databases on the configured server, dropped afterwards."""
    import psycopg

    parts = urlsplit(postgres_url())
    admin = urlunsplit(parts._replace(path="/postgres"))
    names = [f"atp_backup_{role}_{uuid.uuid4().hex[:8]}" for role in ("source", "target")]
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield [urlunsplit(parts._replace(path=f"/{name}")) for name in names]
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_postgres_backup_restores_into_a_new_database(tmp_path, new_postgres_databases):
    source_url, target_url = new_postgres_databases
    source = atp_env(tmp_path / "source", database_url=source_url, **KEYS)
    key = populated_source(source)
    manage(source, "atp_backup", "--dir", str(tmp_path / "backups"))
    [archive] = (tmp_path / "backups").glob("atp-backup-*.tar")

    target = atp_env(tmp_path / "target", database_url=target_url, **KEYS)
    restored = manage(target, "atp_restore", str(archive), "--yes")
    assert "recorded as event" in restored.stdout and "Audit chain verified." in restored.stdout
    assert_same_state(scenario(target, "inspect", key), restores=1)
    assert (tmp_path / "target" / "audit_heads.jsonl").exists()

    refused = manage(target, "atp_restore", str(archive), "--yes", ok=False)
    assert "the database is not empty" in refused.stderr
    again = manage(target, "atp_restore", str(archive), "--yes", "--force")
    assert "superseding signed head" in again.stdout and "Audit chain verified." in again.stdout
    assert_same_state(scenario(target, "inspect", key), restores=1)
