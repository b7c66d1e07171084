"""A live ATP server for atpctl, and a way to run atpctl against it as a user would.

The server is started once per test module (tests/e2e/conftest.py's helpers: its own
database, throwaway secrets, a random loopback port) with a small configuration applied by
`manage.py atp_apply`, a superuser and a user holding no permission, each with an admin token.
atpctl runs as a subprocess (`python -m atpctl`) with its contexts file in a temporary
directory, so nothing of the developer's own configuration is read.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import (
    ROOT,
    LiveDatabase,
    LiveServer,
    free_port,
    make_database,
    run_manage,
    start_server,
    throwaway_secrets,
)

ACME_KEY = "atp_cli-test-key-Hq7Vw3Lp9Zx2Mb6Tn4Rk"
SUPERUSER = "cli-root"
NOBODY = "cli-nobody"


def cli_config(dead_port: int) -> dict[str, Any]:
    return {
        "version": 1,
        "providers": [
            {
                "name": "sim",
                "kind": "simulator",
                "models": [
                    {
                        "name": "sim-fast",
                        "capabilities": ["chat", "streaming"],
                        "prices": {"input": 1, "output": 2},
                        "quality": 0.8,
                    },
                    {
                        "name": "sim-cheap",
                        "capabilities": ["chat", "streaming"],
                        "prices": {"input": 0.1, "output": 0.2},
                        "quality": 0.6,
                    },
                ],
            },
            {
                # Nothing listens there: its connectivity test fails.
                "name": "dead",
                "kind": "openai_compatible",
                "base_url": f"http://127.0.0.1:{dead_port}/v1",
                "enabled": False,
                "models": [{"name": "dead-model", "prices": {"input": 1, "output": 1}}],
            },
        ],
        "tenants": [
            {
                "slug": "acme",
                "name": "Acme",
                "api_keys": [{"name": "ci", "key": "env:CLI_ACME_KEY"}],
            }
        ],
        "routes": [
            {
                "name": "team/cli",
                "strategy": "ordered",
                "candidates": ["sim-cheap", "sim-fast"],
                "description": "The CLI tests' route",
            }
        ],
        "budgets": [{"tenant": "acme", "name": "monthly", "limit_usd": 50}],
    }


@dataclass
class CLIServer:
    server: LiveServer
    db: LiveDatabase
    env: dict[str, str]
    data_dir: Path
    token: str  # a superuser's admin token
    nobody_token: str  # the token of a user holding no permission

    @property
    def base_url(self) -> str:
        return self.server.base_url


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory) -> Iterator[CLIServer]:
    data_dir = tmp_path_factory.mktemp("atpctl-live")
    db = make_database(data_dir)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "ATP_SERVER", "ATP_TOKEN")
    }
    env.update(db.env())
    env.update(throwaway_secrets(data_dir))
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "atp_site.settings",
            "ATP_DATA_DIR": str(data_dir),
            "ATP_WRITE_BEHIND_INTERVAL": "0.1",
            "ATP_LOCAL_BEAT": "false",
            "ATP_REDIS_PREFIX": f"atp-cli-{uuid.uuid4().hex[:8]}",
            "CLI_ACME_KEY": ACME_KEY,
        }
    )
    config_path = data_dir / "atp.yaml"
    config_path.write_text(yaml.safe_dump(cli_config(free_port())))
    server = None
    try:
        run_manage(env, "migrate", "--noinput")
        run_manage(env, "atp_apply", str(config_path))
        run_manage(
            env, "createsuperuser", "--noinput", "--username", SUPERUSER, "--email", "r@example.com"
        )
        run_manage(
            env,
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model; "
            f"get_user_model().objects.create_user({NOBODY!r})",
        )
        token = run_manage(env, "atp_admin_token", "--user", SUPERUSER).stdout.strip()
        nobody_token = run_manage(env, "atp_admin_token", "--user", NOBODY).stdout.strip()
        server = start_server(env, data_dir)
        yield CLIServer(server, db, env, data_dir, token, nobody_token)
    finally:
        if server is not None:
            server.stop()
        db.drop()


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def atpctl(tmp_path) -> Any:
    """Run atpctl with its contexts file in this test's directory: `atpctl("providers",
    "list", input=..., env={...})` -> Result(code, out, err)."""
    config = tmp_path / "atpctl" / "config.yaml"

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        environ = {
            k: v
            for k, v in os.environ.items()
            if k not in ("ATP_SERVER", "ATP_TOKEN", "ATPCTL_CONTEXT")
        }
        environ.update({"ATPCTL_CONFIG": str(config), "HOME": str(tmp_path)})
        environ.update(env or {})
        done = subprocess.run(
            [sys.executable, "-m", "atpctl", *args],
            cwd=ROOT,
            env=environ,
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    run.config = config
    return run


@pytest.fixture
def logged_in(atpctl, cli_server) -> Any:
    """atpctl with a current context holding the superuser's token."""
    result = atpctl(
        "config",
        "set-context",
        "live",
        "--server",
        cli_server.base_url,
        "--token-stdin",
        input=cli_server.token + "\n",
    )
    assert result.code == 0, result.err
    return atpctl
