"""A live ATP server in its own process, on a random loopback port, with fake upstreams.

The server gets its own database (a SQLite file, or a fresh PostgreSQL database when
DATABASE_URL points at PostgreSQL) and, with REDIS_URL, its own Redis key prefix, so it
never shares state with the test process's test database.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import yaml

from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.gemini_server import FakeGemini
from tests.fakes.ollama_server import FakeOllama
from tests.fakes.openai_server import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]
LIVE_KEY = "atp_live-test-key-Xb7mQ2vR9kLw4Np8Tz3s"
# A second tenant whose policies mask contact details and deny secrets (test_governance_live).
GOVERNED_KEY = "atp_live-governed-key-Qm4Tz8Lw2Xb7Np9Rs3v"
UPSTREAM_OPENAI_KEY = "sk-fake-test-key"
UPSTREAM_ANTHROPIC_KEY = "sk-ant-fake-test-key"
UPSTREAM_GEMINI_KEY = "AIza-fake-live-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveDatabase:
    """Where the live server keeps its rows, readable from the test process."""

    url: str | None  # None: SQLite file at `path`
    path: Path | None = None
    admin_url: str | None = None
    name: str | None = None

    def env(self) -> dict[str, str]:
        return {"DATABASE_URL": self.url} if self.url else {}

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.url is None:
            with sqlite3.connect(self.path) as conn:
                return conn.execute(sql.replace("%s", "?"), params).fetchall()
        import psycopg

        with psycopg.connect(self.url) as conn:
            return conn.execute(sql, params).fetchall()

    def drop(self) -> None:
        if self.url is None:
            return
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def make_database(data_dir: Path) -> LiveDatabase:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return LiveDatabase(url=None, path=data_dir / "atp.sqlite3")
    import psycopg

    name = f"atp_live_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(url)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return LiveDatabase(
        url=urlunsplit(parts._replace(path=f"/{name}")), admin_url=admin_url, name=name
    )


@dataclass
class LiveServer:
    base_url: str
    process: subprocess.Popen
    log_path: Path

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait(5)
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class Live:
    """The live gateway, its database and its upstreams."""

    server: LiveServer
    db: LiveDatabase
    env: dict[str, str]
    data_dir: Path
    openai_upstream: FakeOpenAI
    anthropic_upstream: FakeAnthropic
    gemini_upstream: FakeGemini
    ollama_upstream: FakeOllama
    key: str = LIVE_KEY
    governed_key: str = GOVERNED_KEY
    extra_servers: list[LiveServer] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def log_rows(self, request_ids: list[str], timeout: float = 10) -> dict[str, tuple]:
        """Request log rows by request id, waiting for the write-behind flush."""
        deadline = time.monotonic() + timeout
        marks = ",".join(["%s"] * len(request_ids))
        sql = (
            "SELECT request_id, status, http_status, input_tokens, output_tokens, "
            "cached_input_tokens, reasoning_tokens, cost_usd, model, stream, error_type "
            f"FROM routing_requestlog WHERE request_id IN ({marks})"
        )
        while True:
            rows = {r[0]: r for r in self.db.query(sql, tuple(request_ids))}
            if len(rows) == len(set(request_ids)) or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)

    def start_server(self, *, access_log: bool = False, **extra_env: str) -> LiveServer:
        return start_server({**self.env, **extra_env}, self.data_dir, access_log=access_log)


def redis_answers(port: int) -> bool:
    """Whether a Redis server on 127.0.0.1:`port` answers a PING."""
    import redis

    try:
        return bool(redis.Redis(port=port, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def run_manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def throwaway_secrets(data_dir: Path) -> dict[str, str]:
    """Fresh secrets for live servers: with DATABASE_URL set, ATP refuses to start without
    them (atp_site.lib.startup). The head-signing key is an Ed25519 private key (PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    head_key = data_dir / "audit_head_key.pem"
    head_key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    head_key.chmod(0o600)
    return {
        "ATP_SECRET_KEY": secrets.token_urlsafe(48),
        "ATP_ENCRYPTION_KEY": secrets.token_urlsafe(48),
        "ATP_AUDIT_SIGNING_KEY": secrets.token_urlsafe(48),
        "ATP_AUDIT_HEAD_KEY_FILE": str(head_key),
    }


def start_server(env: dict[str, str], data_dir: Path, *, access_log: bool = False) -> LiveServer:
    port = free_port()
    log_path = data_dir / f"server-{port}.log"
    log = open(log_path, "w")  # noqa: SIM115 - the server process owns it until it exits
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "atp_site.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--lifespan",
            "on",
            *(() if access_log else ("--no-access-log",)),
            "--timeout-graceful-shutdown",
            "20",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"ATP exited at start-up:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"ATP did not start in time:\n{log_path.read_text()}")
        time.sleep(0.1)
    return LiveServer(base_url=base_url, process=process, log_path=log_path)


def live_config(
    openai_url: str, anthropic_url: str, gemini_url: str, ollama_url: str
) -> dict[str, Any]:
    chat = ["chat", "tools", "vision", "json", "streaming"]
    return {
        "version": 1,
        "providers": [
            {
                "name": "simulator",
                "kind": "simulator",
                "models": [
                    {
                        "name": "sim-fast",
                        "upstream": "sim-fast",
                        "capabilities": chat,
                        "prices": {"input": 1, "output": 2},
                    },
                    {
                        "name": "sim-cheap",
                        "upstream": "sim-cheap",
                        "capabilities": chat,
                        "prices": {"input": 0.1, "output": 0.2},
                        "quality": 0.6,
                    },
                    {
                        "name": "sim-embed",
                        "upstream": "sim-embed",
                        "capabilities": ["embeddings"],
                        "prices": {"input": 0.1, "output": 0},
                    },
                ],
            },
            {
                "name": "sim-broken",
                "kind": "simulator",
                "options": {"fail_after_chunks": 3},
                "models": [
                    {
                        "name": "sim-breaks",
                        "upstream": "sim-breaks",
                        "capabilities": chat,
                        "prices": {"input": 1, "output": 2},
                    }
                ],
            },
            {
                "name": "upstream-openai",
                "kind": "openai_compatible",
                "base_url": openai_url,
                "api_key": "env:LIVE_UPSTREAM_OPENAI_API_KEY",
                "timeouts": {"connect": 2, "first_byte": 5, "total": 30},
                "models": [
                    {
                        "name": "gpt-test",
                        "upstream": "gpt-4o-mini",
                        "capabilities": chat,
                        "prices": {"input": 0.15, "output": 0.6, "cached_input": 0.075},
                    },
                    {
                        "name": "embed-test",
                        "upstream": "text-embedding-3-small",
                        "capabilities": ["embeddings"],
                        "prices": {"input": 0.02, "output": 0},
                    },
                ],
            },
            {
                "name": "upstream-anthropic",
                "kind": "anthropic",
                "base_url": anthropic_url,
                "api_key": "env:LIVE_UPSTREAM_ANTHROPIC_API_KEY",
                "timeouts": {"connect": 2, "first_byte": 5, "total": 30},
                "models": [
                    {
                        "name": "claude-test",
                        "upstream": "claude-3-5-haiku-latest",
                        "capabilities": chat,
                        "prices": {
                            "input": 0.8,
                            "output": 4,
                            "cached_input": 0.08,
                            "cache_write": 1,
                        },
                    },
                ],
            },
            {
                "name": "upstream-gemini",
                "kind": "gemini",
                "base_url": gemini_url,
                "api_key": "env:LIVE_UPSTREAM_GEMINI_API_KEY",
                "timeouts": {"connect": 2, "first_byte": 5, "total": 30},
                "models": [
                    {
                        "name": "gemini-test",
                        "upstream": "gemini-2.0-flash",
                        "capabilities": chat,
                        "prices": {"input": 0.1, "output": 0.4},
                    },
                ],
            },
            {
                "name": "upstream-ollama",
                "kind": "ollama",
                "base_url": ollama_url,
                "timeouts": {"connect": 2, "first_byte": 5, "total": 30},
                "models": [
                    {
                        "name": "ollama-test",
                        "upstream": "llama3.2",
                        "capabilities": chat,
                        "prices": {"input": 0, "output": 0},
                    },
                ],
            },
        ],
        "routes": [
            {
                "name": "team/sim",
                "strategy": "learned",
                "tier": "balanced",
                "candidates": ["sim-cheap", "sim-fast"],
                "cache_ttl_seconds": 300,
            },
        ],
        "tenants": [
            {
                "slug": "live",
                "name": "Live tests",
                "api_keys": [{"name": "live", "key": "env:LIVE_ATP_KEY"}],
            },
            {
                "slug": "governed",
                "name": "Governed tenant",
                "api_keys": [{"name": "governed", "key": "env:LIVE_GOVERNED_KEY"}],
            },
        ],
        "policies": [
            {
                "name": "mask-contacts",
                "tenant": "governed",
                "priority": 10,
                "rules": [
                    {
                        "id": "mask",
                        "when": [
                            {
                                "attr": "request.entities",
                                "op": "contains_any",
                                "value": ["EMAIL", "PHONE"],
                            }
                        ],
                        "effect": {
                            "type": "redact",
                            "entities": ["EMAIL", "PHONE"],
                            "mode": "mask",
                        },
                    }
                ],
            },
            {
                "name": "no-secrets",
                "tenant": "governed",
                "rules": [
                    {
                        "id": "deny",
                        "when": [{"attr": "request.entities", "op": "contains", "value": "SECRET"}],
                        "effect": {"type": "deny", "message": "Secrets must not leave."},
                    }
                ],
            },
        ],
    }


@pytest.fixture(scope="session")
def live(tmp_path_factory) -> Iterator[Live]:
    openai_upstream = FakeOpenAI(api_key=UPSTREAM_OPENAI_KEY)
    openai_upstream.start_in_thread()
    anthropic_upstream = FakeAnthropic(api_key=UPSTREAM_ANTHROPIC_KEY)
    anthropic_upstream.start_in_thread()
    gemini_upstream = FakeGemini(api_key=UPSTREAM_GEMINI_KEY)
    gemini_upstream.start_in_thread()
    ollama_upstream = FakeOllama()
    ollama_upstream.start_in_thread()
    data_dir = tmp_path_factory.mktemp("atp-live")
    db = make_database(data_dir)
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(db.env())
    env.update(throwaway_secrets(data_dir))
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "atp_site.settings",
            "ATP_DATA_DIR": str(data_dir),
            "ATP_WRITE_BEHIND_INTERVAL": "0.1",
            # Health probes on a timer would add calls the tests count on the fakes.
            "ATP_LOCAL_BEAT": "false",
            # Upstream errors reach the SDK as they are, however many a test provokes;
            # retries and breakers are tested in process with an injected clock
            # (tests/routing/test_resilience_*.py) and live in test_resilience_live.py.
            "ATP_RETRY_MAX_ATTEMPTS": "1",
            "ATP_BREAKER_ENABLED": "false",
            "ATP_REDIS_PREFIX": f"atp-live-{uuid.uuid4().hex[:8]}",
            "LIVE_UPSTREAM_OPENAI_API_KEY": UPSTREAM_OPENAI_KEY,
            "LIVE_UPSTREAM_ANTHROPIC_API_KEY": UPSTREAM_ANTHROPIC_KEY,
            "LIVE_UPSTREAM_GEMINI_API_KEY": UPSTREAM_GEMINI_KEY,
            "LIVE_ATP_KEY": LIVE_KEY,
            "LIVE_GOVERNED_KEY": GOVERNED_KEY,
        }
    )
    config_path = data_dir / "atp.yaml"
    config_path.write_text(
        yaml.safe_dump(
            live_config(
                openai_upstream.base_url,
                anthropic_upstream.base_url,
                gemini_upstream.base_url,
                ollama_upstream.base_url,
            )
        )
    )
    server = None
    try:
        run_manage(env, "migrate", "--noinput")
        run_manage(env, "atp_apply", str(config_path))
        server = start_server(env, data_dir)
        live = Live(
            server,
            db,
            env,
            data_dir,
            openai_upstream,
            anthropic_upstream,
            gemini_upstream,
            ollama_upstream,
        )
        yield live
        for extra in live.extra_servers:
            extra.stop()
    finally:
        if server is not None:
            server.stop()
        for upstream in (openai_upstream, anthropic_upstream, gemini_upstream, ollama_upstream):
            upstream.stop()
        db.drop()
