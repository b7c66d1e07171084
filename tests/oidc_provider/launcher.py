"""Starts the test OpenID provider in its own process and edits its directory of users."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class TestProvider:
    """A running provider: its issuer, client credentials and directory of users."""

    issuer: str
    client_id: str
    client_secret: str
    data_dir: Path
    process: subprocess.Popen
    users: dict[str, dict[str, Any]] = field(default_factory=dict)

    def set_user(self, username: str, password: str, **claims: Any) -> None:
        """Add or change an account; `claims` (groups, atp_tenants, email...) go in tokens."""
        self.users[username] = {"password": password, **claims}
        path = self.data_dir / "directory.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.users))
        tmp.replace(path)

    def register_client(self, redirect_uris: list[str], post_logout_redirect_uris: list[str]):
        """Set the client's registered URIs (the relying party's port is known only once it
        runs, and it runs only once the provider answers its discovery request)."""
        with sqlite3.connect(self.data_dir / "op.sqlite3") as conn:
            conn.execute(
                "UPDATE oauth2_provider_application SET redirect_uris = ?, "
                "post_logout_redirect_uris = ? WHERE client_id = ?",
                (" ".join(redirect_uris), " ".join(post_logout_redirect_uris), self.client_id),
            )

    def events(self) -> list[dict[str, Any]]:
        path = self.data_dir / "events.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def log(self) -> str:
        return (self.data_dir / "op.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_provider(
    data_dir: Path,
    port: int,
    *,
    client_id: str,
    client_secret: str,
    redirect_uris: Sequence[str] = (),
    post_logout_redirect_uris: Sequence[str] = (),
) -> TestProvider:
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ATP_", "DJANGO_")) and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env["OP_DATA_DIR"] = str(data_dir)
    args = [sys.executable, "-m", "tests.oidc_provider", "--port", str(port)]
    args += ["--client-id", client_id, "--client-secret", client_secret]
    for uri in redirect_uris:
        args += ["--redirect-uri", uri]
    for uri in post_logout_redirect_uris:
        args += ["--post-logout-redirect-uri", uri]
    log = open(data_dir / "op.log", "w")  # noqa: SIM115 - the provider process owns it
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    issuer = f"http://127.0.0.1:{port}/o"
    provider = TestProvider(issuer, client_id, client_secret, data_dir, process)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the test OpenID provider exited:\n{provider.log()}")
        try:
            url = f"{issuer}/.well-known/openid-configuration"
            if httpx.get(url, timeout=1).status_code == 200:
                return provider
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            provider.stop()
            raise RuntimeError(f"the test OpenID provider did not start:\n{provider.log()}")
        time.sleep(0.1)
