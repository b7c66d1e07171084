"""PostgreSQL stopped under traffic: requests keep being answered and nothing accepted is lost.

The test starts a PRIVATE PostgreSQL cluster (initdb/pg_ctl on a free port, as the
`postgres` OS user when run as root), a live ATP server on it, stops the cluster while
requests flow, restarts it and checks that every answered request has its request log row
and audit event once the spilled rows are replayed. Then it stops the cluster again, kills
the server with SIGKILL (no drain, no exit hooks) and checks that the next server to start
on the same ATP_DATA_DIR replays the spill file the killed one left. Redis is left out on
purpose: the spill file alone must carry the rows.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atp_site.lib.spill import SpillStore
from tests.e2e.conftest import free_port, run_manage, start_server

PG_BIN = Path("/usr/lib/postgresql/15/bin")
KEY = "atp_outage-test-key-Qm4Rz8Kw2Vn7Tx5Lp9Hd"

pytestmark = [
    pytest.mark.live,
    pytest.mark.postgres,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
        reason="the PostgreSQL run (DATABASE_URL) only",
    ),
    pytest.mark.skipif(not (PG_BIN / "pg_ctl").exists(), reason="needs PostgreSQL's pg_ctl"),
    pytest.mark.timeout(110),
]


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free loopback port, stopped by the test."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="atp-pg-", dir="/tmp"))
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/atp"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self._run(
            PG_BIN / "initdb",
            "-D",
            self.data,
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        )

    def _run(self, *args: object) -> None:
        command = [str(a) for a in args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off"
        )
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.root / "log", "-o", options,
                  "-w", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def create_database(self) -> None:
        import psycopg

        admin = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE atp")

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url) as conn:
            return conn.execute(sql, params).fetchall()

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    try:
        pg.start()
        pg.create_database()
        yield pg
    finally:
        pg.destroy()


class Traffic(threading.Thread):
    """Sends chat requests one after another until stopped; remembers every answer."""

    def __init__(self, base_url: str, prefix: str) -> None:
        super().__init__(daemon=True)
        self.base_url = base_url
        self.prefix = prefix
        self.answers: dict[str, int] = {}
        self.failures: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=10) as http:
            n = 0
            while not self._halt.is_set():
                n += 1
                rid = f"{self.prefix}-{n}"
                try:
                    resp = http.post(
                        "/v1/chat/completions",
                        headers={"authorization": f"Bearer {KEY}", "x-request-id": rid},
                        json={"model": "sim-fast", "messages": [{"role": "user", "content": "hi"}]},
                    )
                except httpx.HTTPError as exc:
                    self.failures.append(f"{rid}: {exc!r}")
                    continue
                self.answers[rid] = resp.status_code
                time.sleep(0.01)

    def stop(self) -> None:
        self._halt.set()
        self.join(15)


def _wait_for_rows(pg: PrivatePostgres, ids: list[str], timeout: float) -> tuple[set, set]:
    marks = ",".join(["%s"] * len(ids))
    deadline = time.monotonic() + timeout
    while True:
        logged = {
            r[0]
            for r in pg.query(
                f"SELECT request_id FROM routing_requestlog WHERE request_id IN ({marks})",
                tuple(ids),
            )
        }
        audited = {
            r[0]
            for r in pg.query(
                "SELECT request_id FROM audit_auditevent WHERE event_type = 'gateway.request' "
                f"AND request_id IN ({marks})",
                tuple(ids),
            )
        }
        if (logged == audited == set(ids)) or time.monotonic() > deadline:
            return logged, audited
        time.sleep(0.2)


def test_nothing_accepted_is_lost_when_postgresql_stops(cluster, tmp_path, settings):
    fernet_key = Fernet.generate_key().decode()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "atp_site.settings",
            "DATABASE_URL": cluster.url,
            "ATP_DATA_DIR": str(data_dir),
            "ATP_ENCRYPTION_KEYS": fernet_key,
            "ATP_WRITE_BEHIND_INTERVAL": "0.1",
            "ATP_LOCAL_BEAT": "false",
            # The configuration never changes here: no version check against the database.
            "ATP_SNAPSHOT_CHECK_SECONDS": "3600",
            "LIVE_OUTAGE_KEY": KEY,
        }
    )
    # A configured deployment (DATABASE_URL set) is given its keys, not left to generate
    # them: Django's, the audit chain's HMAC key and its head-signing key (Ed25519, PEM).
    env.setdefault("ATP_SECRET_KEY", secrets.token_urlsafe(48))
    env.setdefault("ATP_AUDIT_SIGNING_KEYS", "k1:" + secrets.token_urlsafe(48))
    head_key = tmp_path / "audit_head_key.pem"
    head_key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    head_key.chmod(0o600)
    env.setdefault("ATP_AUDIT_HEAD_KEY_FILE", str(head_key))
    config = {
        "version": 1,
        "providers": [
            {
                "name": "simulator",
                "kind": "simulator",
                "models": [
                    {
                        "name": "sim-fast",
                        "upstream": "sim-fast",
                        "capabilities": ["chat", "streaming"],
                        "prices": {"input": 1, "output": 2},
                    }
                ],
            }
        ],
        "tenants": [
            {
                "slug": "outage",
                "name": "Outage",
                "api_keys": [{"name": "outage", "key": "env:LIVE_OUTAGE_KEY"}],
            }
        ],
    }
    (tmp_path / "atp.yaml").write_text(yaml.safe_dump(config))
    run_manage(env, "migrate", "--noinput")
    run_manage(env, "atp_apply", str(tmp_path / "atp.yaml"))

    servers = []
    try:
        server = start_server(env, tmp_path)
        servers.append(server)
        # --- 1. stopped under traffic, restarted: every answered request is recorded -----
        traffic = Traffic(server.base_url, f"out-{uuid.uuid4().hex[:6]}")
        traffic.start()
        time.sleep(0.5)
        cluster.stop()
        down_at = len(traffic.answers)
        time.sleep(2.0)
        answered_while_down = len(traffic.answers) - down_at
        cluster.start()
        time.sleep(0.5)
        traffic.stop()
        assert not traffic.failures, traffic.failures[:5]
        assert answered_while_down >= 10
        assert set(traffic.answers.values()) == {200}, traffic.answers
        ids = list(traffic.answers)
        logged, audited = _wait_for_rows(cluster, ids, timeout=20)
        assert logged == set(ids), (len(ids) - len(logged), server.log()[-3000:])
        assert audited == set(ids)
        [(count,)] = cluster.query(
            "SELECT count(*) FROM routing_requestlog WHERE request_id LIKE %s",
            (f"{traffic.prefix}-%",),
        )
        assert count == len(ids)  # replayed once, no duplicates
        assert "rows go to the spill file" in server.log()

        # --- 2. killed while the database is down: the next start replays its spill ------
        cluster.stop()
        prefix = f"kill-{uuid.uuid4().hex[:6]}"
        killed_ids = [f"{prefix}-{i}" for i in range(15)]
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            for rid in killed_ids:
                resp = http.post(
                    "/v1/chat/completions",
                    headers={"authorization": f"Bearer {KEY}", "x-request-id": rid},
                    json={"model": "sim-fast", "messages": [{"role": "user", "content": "hi"}]},
                )
                assert resp.status_code == 200
        settings.ATP_ENCRYPTION_KEYS = [fernet_key]
        store = SpillStore(data_dir)
        deadline = time.monotonic() + 15
        while True:
            spilled = {(queue, row.get("request_id")) for queue, row in store.read_all()}
            wanted = {(q, rid) for q in ("request-log", "audit") for rid in killed_ids}
            if wanted <= spilled or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert wanted <= spilled
        raw = b"".join(p.read_bytes() for p in store.spill_dir.iterdir())
        assert prefix.encode() not in raw  # encrypted at rest
        server.process.kill()  # SIGKILL: no drain, no exit hooks
        server.process.wait(10)
        cluster.start()
        second = start_server(env, tmp_path)
        servers.append(second)
        logged, audited = _wait_for_rows(cluster, killed_ids, timeout=20)
        assert logged == set(killed_ids), second.log()[-3000:]
        assert audited == set(killed_ids)
        deadline = time.monotonic() + 10
        while store.has_spill() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not store.has_spill()
    finally:
        for running in servers:
            running.stop(timeout=10)
