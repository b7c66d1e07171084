"""Configuration changes reach every process: two live servers on one database (a SQLite
file embedded; PostgreSQL and Redis when configured) and the CLI.

Each change must take effect on the other server within ATP_SNAPSHOT_CHECK_SECONDS + 1 s
(0.2 s here); the tests poll with a 10 s deadline and then check how long it took.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.e2e.conftest import (
    LiveDatabase,
    LiveServer,
    free_port,
    make_database,
    redis_answers,
    run_manage,
    start_server,
    throwaway_secrets,
)

pytestmark = pytest.mark.live

CHECK_SECONDS = 0.2
BOUND = CHECK_SECONDS + 1
KEYS = {name: f"atp_prop-{name}-{uuid.uuid4().hex}" for name in ("a", "b", "c", "d")}


def _config(key_names: list[str]) -> dict:
    chat = ["chat", "streaming"]
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
                    }
                ],
            }
        ],
        "tenants": [
            {
                "slug": "prop",
                "name": "Propagation",
                "api_keys": [
                    {"name": name, "key": f"env:PROP_KEY_{name.upper()}"} for name in key_names
                ],
            }
        ],
    }


@dataclass
class Pair:
    """Two gateway processes sharing one database (and Redis, when configured)."""

    first: LiveServer
    second: LiveServer
    env: dict[str, str]
    data_dir: Path
    admin_token: str

    def apply(self, key_names: list[str], *args: str) -> None:
        path = self.data_dir / f"config-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(yaml.safe_dump(_config(key_names)))
        run_manage(self.env, "atp_apply", str(path), *args)


@contextlib.contextmanager
def _pair(data_dir: Path, **extra_env: str) -> Iterator[Pair]:
    db: LiveDatabase = make_database(data_dir)
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(db.env())
    env.update(throwaway_secrets(data_dir))
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "atp_site.settings",
            "ATP_DATA_DIR": str(data_dir),
            "ATP_LOCAL_BEAT": "false",
            "ATP_WRITE_BEHIND_INTERVAL": "0.1",
            "ATP_SNAPSHOT_CHECK_SECONDS": str(CHECK_SECONDS),
            "ATP_REDIS_PREFIX": f"atp-pair-{uuid.uuid4().hex[:8]}",
            "DJANGO_SUPERUSER_PASSWORD": uuid.uuid4().hex,
            **{f"PROP_KEY_{name.upper()}": key for name, key in KEYS.items()},
            **extra_env,
        }
    )
    servers: list[LiveServer] = []
    try:
        run_manage(env, "migrate", "--noinput")
        run_manage(
            env, "createsuperuser", "--noinput", "--username", "prop", "--email", "p@example.com"
        )
        token = run_manage(env, "atp_admin_token", "--user", "prop").stdout.strip()
        path = data_dir / "initial.yaml"
        path.write_text(yaml.safe_dump(_config(["a", "b", "d"])))
        run_manage(env, "atp_apply", str(path))
        servers.append(start_server(env, data_dir))
        servers.append(start_server(env, data_dir))
        yield Pair(servers[0], servers[1], env, data_dir, token)
    finally:
        for server in servers:
            server.stop()
        db.drop()


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Iterator[Pair]:
    with _pair(tmp_path_factory.mktemp("atp-pair")) as both:
        yield both


def _status(server: LiveServer, key: str) -> int:
    return httpx.get(
        f"{server.base_url}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=5
    ).status_code


def _seconds_until(condition: Callable[[], bool]) -> float:
    """Seconds until `condition` holds, polling with a 10 s deadline."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < 10, "not within the 10 s deadline"
        time.sleep(0.02)
    return time.monotonic() - start


def _key_id(pair: Pair, name: str) -> str:
    resp = httpx.get(
        f"{pair.first.base_url}/api/v1/api-keys/",
        params={"search": name, "revoked": "false"},
        headers={"Authorization": f"Bearer {pair.admin_token}"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    (row,) = [r for r in resp.json()["results"] if r["name"] == name]
    return row["id"]


def test_a_key_added_by_the_cli_works_on_running_servers(pair):
    assert _status(pair.second, KEYS["c"]) == 401
    pair.apply(["a", "b", "c", "d"])
    took = _seconds_until(lambda: _status(pair.second, KEYS["c"]) == 200)
    assert took < BOUND
    assert _status(pair.first, KEYS["c"]) == 200


def test_a_key_revoked_through_one_server_is_refused_by_the_other(pair):
    assert _status(pair.second, KEYS["a"]) == 200
    resp = httpx.post(
        f"{pair.first.base_url}/api/v1/api-keys/{_key_id(pair, 'a')}/revoke/",
        headers={"Authorization": f"Bearer {pair.admin_token}"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    took = _seconds_until(lambda: _status(pair.second, KEYS["a"]) == 401)
    assert took < BOUND


def test_a_key_revoked_by_the_cli_is_refused_and_its_open_socket_closed(pair):
    url = pair.second.base_url.replace("http://", "ws://") + "/v1/realtime"
    with connect(url, additional_headers={"Authorization": f"Bearer {KEYS['b']}"}) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "ready"
        assert _status(pair.second, KEYS["b"]) == 200
        pair.apply(["c", "d"], "--prune")  # prunes (revokes) a and b
        start = time.monotonic()
        messages = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                messages.append(json.loads(ws.recv(timeout=10)))
        took = time.monotonic() - start
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    assert messages and messages[-1]["error"]["code"] == "revoked_api_key"
    assert took < BOUND
    assert _status(pair.first, KEYS["b"]) == 401
    assert _status(pair.second, KEYS["d"]) == 200  # kept by the file


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_with_redis_down_the_version_is_read_from_the_database(tmp_path):
    port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _seconds_until(lambda: redis_answers(port))
        with _pair(tmp_path, REDIS_URL=f"redis://127.0.0.1:{port}/0") as both:
            assert _status(both.second, KEYS["a"]) == 200
            redis.terminate()
            redis.wait(10)
            both.apply(["b", "c", "d"], "--prune")  # revokes a; the bump reaches only the DB
            took = _seconds_until(lambda: _status(both.second, KEYS["a"]) == 401)
            assert took < BOUND
            assert _status(both.first, KEYS["a"]) == 401
            assert _status(both.second, KEYS["b"]) == 200
    finally:
        if redis.poll() is None:
            redis.kill()
            redis.wait(10)
