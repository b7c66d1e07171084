"""Fixtures for in-process data-plane tests: configuration rows and an ASGI client."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
import pytest
from asgiref.sync import SyncToAsync
from channels.testing import ApplicationCommunicator
from django.db import connections

from apps.audit.writebehind import audit_events
from apps.costs.ledger import ledger
from apps.providers.models import ModelDeployment, Provider
from apps.routing.snapshot import holder
from apps.routing.writebehind import request_logs
from apps.tenants.keys import generate_api_key, hash_key, visible_prefix
from apps.tenants.models import ApiKey, Tenant
from atp_site.lib import config_version


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    def sse(self) -> list[bytes]:
        """The `data:` payloads of an event stream, in order."""
        return [
            line[len(b"data: ") :] for line in self.body.split(b"\n") if line.startswith(b"data: ")
        ]


async def call(
    method: str,
    path: str,
    *,
    json: Any = None,
    body: bytes | None = None,
    key: str | None = None,
    headers: dict[str, str] | None = None,
    wait: float = 5,
) -> Response:
    """One request through the real ASGI application, in process."""
    from atp_site.asgi import application

    raw = body if body is not None else (orjson.dumps(json) if json is not None else b"")
    hdrs = [(b"host", b"testserver"), (b"content-type", b"application/json")]
    if key:
        hdrs.append((b"authorization", f"Bearer {key}".encode()))
    for name, value in (headers or {}).items():
        hdrs.append((name.lower().encode(), value.encode()))
    hdrs.append((b"content-length", str(len(raw)).encode()))
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "scheme": "http",
        "headers": hdrs,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    comm = ApplicationCommunicator(application, scope)
    await comm.send_input({"type": "http.request", "body": raw, "more_body": False})
    start = await comm.receive_output(wait)
    assert start["type"] == "http.response.start", start
    chunks = []
    while True:
        message = await comm.receive_output(wait)
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    await comm.send_input({"type": "http.disconnect"})
    await comm.wait(wait)
    headers_out = {k.decode().lower(): v.decode() for k, v in start.get("headers", [])}
    return Response(start["status"], headers_out, b"".join(chunks))


@dataclass
class Gateway:
    tenant: Tenant
    key: str
    api_key: ApiKey
    provider: Provider
    deployment: ModelDeployment

    def add_key(self, **fields: Any) -> str:
        raw = generate_api_key()
        ApiKey.objects.create(
            tenant=self.tenant,
            name=fields.pop("name", raw[-8:]),
            prefix=visible_prefix(raw),
            key_hash=hash_key(raw),
            **fields,
        )
        config_version.bump()
        return raw


@pytest.fixture
def gateway(transactional_db, settings) -> Gateway:
    """A tenant, a key and the simulator serving `sim-fast` (alias `fast`)."""
    settings.ATP_SNAPSHOT_CHECK_SECONDS = 0
    settings.ATP_WRITE_BEHIND_INTERVAL = 60
    holder.invalidate()
    tenant = Tenant.objects.create(slug="acme", name="Acme")
    raw = generate_api_key()
    api_key = ApiKey.objects.create(
        tenant=tenant, name="default", prefix=visible_prefix(raw), key_hash=hash_key(raw)
    )
    provider = Provider.objects.create(name="sim", kind="simulator", options={})
    deployment = ModelDeployment.objects.create(
        provider=provider,
        public_name="sim-fast",
        upstream_model="sim-fast-1",
        aliases=["fast"],
        input_price=Decimal("1.00"),
        output_price=Decimal("2.00"),
        capabilities=["chat", "tools", "json", "vision", "streaming"],
    )
    ModelDeployment.objects.create(
        provider=provider,
        public_name="sim-embed",
        upstream_model="sim-embed-1",
        input_price=Decimal("0.10"),
        output_price=Decimal("0"),
        capabilities=["embeddings"],
    )
    config_version.bump()
    yield Gateway(tenant, raw, api_key, provider, deployment)
    # Rows a test left queued must not be written at interpreter exit, when the test
    # database is gone.
    request_logs._take()
    audit_events._take()
    ledger._take()
    holder.invalidate()
    # The snapshot and log writer ran ORM calls in asgiref's worker thread; close that
    # thread's connection so the test database can be dropped at the end of the session.
    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)


async def flush_logs() -> None:
    await request_logs.flush()
