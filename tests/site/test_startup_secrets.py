"""Secrets every instance must share: refused start-up without them, generated key files."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured

from atp_site.lib.env import generated_secret
from atp_site.lib.startup import REQUIRED_SECRETS, check_secrets, missing_secrets

ROOT = Path(__file__).resolve().parents[2]
SECRET_VARIABLES = [name for _, names in REQUIRED_SECRETS for name in names]
GIVEN = {
    "ATP_SECRET_KEY": "s" * 50,
    "ATP_ENCRYPTION_KEY": "e" * 50,
    "ATP_AUDIT_SIGNING_KEY": "a" * 50,
    "ATP_AUDIT_HEAD_KEY": "h" * 50,
}


@pytest.fixture
def no_secrets(monkeypatch, settings):
    for name in SECRET_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    settings.DATABASE_URL = "postgres://atp@db.example/atp"
    return monkeypatch


def test_the_embedded_setup_needs_no_secrets(no_secrets, settings):
    settings.DATABASE_URL = ""
    assert missing_secrets() == []
    check_secrets()


def test_a_configured_deployment_names_every_missing_secret(no_secrets):
    with pytest.raises(ImproperlyConfigured) as exc:
        check_secrets()
    message = str(exc.value)
    for name in SECRET_VARIABLES:
        assert name in message


def test_only_what_is_missing_is_named(no_secrets, tmp_path):
    no_secrets.setenv("ATP_SECRET_KEY", "s" * 50)
    key_file = tmp_path / "encryption"
    key_file.write_text("e" * 50)
    no_secrets.setenv("ATP_ENCRYPTION_KEY_FILE", str(key_file))
    no_secrets.setenv("ATP_AUDIT_SIGNING_KEYS", "k2:" + "a" * 50 + ",k1:" + "b" * 50)
    missing = missing_secrets()
    assert len(missing) == 1 and "ATP_AUDIT_HEAD_KEY" in missing[0]
    no_secrets.setenv("ATP_AUDIT_HEAD_KEY", "h" * 50)
    check_secrets()


def test_an_empty_key_file_counts_as_missing(no_secrets, tmp_path):
    for name, value in GIVEN.items():
        no_secrets.setenv(name, value)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    no_secrets.delenv("ATP_ENCRYPTION_KEY")
    no_secrets.setenv("ATP_ENCRYPTION_KEY_FILE", str(empty))
    with pytest.raises(ImproperlyConfigured, match="ATP_ENCRYPTION_KEY"):
        check_secrets()


def _generate(path: str) -> str:
    return generated_secret(Path(path))


def test_generated_key_files_are_private_and_one_process_wins_a_race(tmp_path):
    path = tmp_path / "var" / "encryption_key"
    # Eight processes generate the same file at once: all end up with one secret.
    with Pool(8) as pool:
        values = pool.map(_generate, [str(path)] * 8)
    assert len(set(values)) == 1 and len(values[0]) >= 48
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["encryption_key"]  # no leftovers
    assert generated_secret(path) == values[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in SECRET_VARIABLES and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "atp_site.settings",
            "ATP_DATA_DIR": str(tmp_path),
            "ATP_LOCAL_BEAT": "false",
            # A configured deployment; the refusal comes before any query.
            "DATABASE_URL": f"sqlite:///{tmp_path / 'atp.sqlite3'}",
            **extra,
        }
    )
    return env


def _uvicorn(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "atp_site.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "auto",  # even in auto mode a refused start-up stops the server
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


@pytest.mark.live
def test_the_server_exits_without_its_secrets_and_says_which(tmp_path):
    log = tmp_path / "server.log"
    env = _env(tmp_path, ATP_SECRET_KEY="s" * 50)
    proc = _uvicorn(env, _free_port(), log)
    try:
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert code != 0
    text = log.read_text()
    assert "ATP_ENCRYPTION_KEY" in text and "ATP_AUDIT_SIGNING_KEY" in text
    assert "ATP_AUDIT_HEAD_KEY" in text
    assert "ATP_SECRET_KEY or" not in text  # given, so not named as missing
    assert "s" * 50 not in text


@pytest.mark.live
def test_the_server_starts_when_every_secret_is_given(tmp_path):
    log = tmp_path / "server.log"
    port = _free_port()
    proc = _uvicorn(_env(tmp_path, **GIVEN), port, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.live
@pytest.mark.parametrize("command", [["worker", "--pool", "solo"], ["beat"]])
def test_celery_exits_without_its_secrets(tmp_path, command):
    args = [sys.executable, "-m", "celery", "-A", "atp_site", *command]
    if command[0] == "beat":
        args += ["--schedule", str(tmp_path / "beat-schedule")]
    result = subprocess.run(
        args,
        cwd=ROOT,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "ATP_SECRET_KEY" in output and "ATP_AUDIT_HEAD_KEY" in output


def test_database_and_redis_urls_may_come_from_files(tmp_path):
    """They hold passwords: DATABASE_URL_FILE and REDIS_URL_FILE name files holding them."""
    (tmp_path / "db").write_text("postgres://atp:pw@db.example:5432/atp\n")
    (tmp_path / "redis").write_text("redis://:pw@cache.example:6379/0\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {
        "DATABASE_URL_FILE": str(tmp_path / "db"),
        "REDIS_URL_FILE": str(tmp_path / "redis"),
        "ATP_DATA_DIR": str(tmp_path / "data"),
        "DJANGO_SETTINGS_MODULE": "atp_site.settings",
    }
    code = (
        "from django.conf import settings as s; "
        "print(s.DATABASES['default']['HOST'], s.REDIS_URL, s.CELERY_BROKER_URL)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == [
        "db.example",
        "redis://:pw@cache.example:6379/0",
        "redis://:pw@cache.example:6379/0",
    ]


def test_earlier_secret_keys_keep_sessions_while_a_rotation_settles(tmp_path):
    from django.core import signing

    env = {k: v for k, v in os.environ.items() if k not in ("ATP_SECRET_KEY",)}
    env |= {
        "ATP_SECRET_KEY": "new-" + "n" * 50,
        "ATP_SECRET_KEY_FALLBACKS": "old-" + "o" * 50 + ",older-" + "p" * 50,
        "ATP_DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "atp_site.settings",
    }
    old_token = signing.dumps("session", key="old-" + "o" * 50)
    code = f"import sys; from django.core import signing; print(signing.loads({old_token!r}))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "session"
