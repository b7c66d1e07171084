"""The console's WebSocket: topics per viewer, the request stream filtered by tenant,
refusals that keep the socket open, and the socket closed when the viewer signs out (4401)
or loses the permission (4403) within a few ticks. Runs the real ASGI application (origin
check, session authentication, the console route)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import Permission
from django.test import Client
from guardian.shortcuts import assign_perm

from atp_site.asgi import application
from atp_site.console.live import consumer, figures
from atp_site.console.live.publisher import REQUESTS_GROUP
from atp_site.console.live.store import MemoryStore, set_store
from atp_site.console.live.topics import TOPICS
from tests.conftest import TenantFactory, UserFactory, grant_permissions

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _close_worker_connections():
    """The consumer reads the database on a worker thread: close its connection after each
    test so the test database can be dropped."""
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()


TICK = 0.1
BOUND = 3.0  # seconds within which a socket must close after sign-out or a lost role


@pytest.fixture(autouse=True)
def _fast_ticks(monkeypatch):
    monkeypatch.setattr(consumer, "TICK_SECONDS", TICK)
    set_store(MemoryStore())
    figures.clear_cache()
    yield
    set_store(None)
    figures.clear_cache()


def _session_of(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


async def _open(user=None, *, origin: str = "http://localhost") -> WebsocketCommunicator:
    headers = [(b"origin", origin.encode())]
    if user is not None:
        key = await sync_to_async(_session_of)(user)
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={key}".encode()))
    communicator = WebsocketCommunicator(application, "/ws/console/", headers=headers)
    communicator.session_key = headers[-1][1].decode().split("=", 1)[1] if user else None
    return communicator


async def _subscribe(ws, *topics: str) -> dict[str, dict]:
    await ws.send_json_to({"type": "subscribe", "topics": list(topics)})
    answers = {}
    while len(answers) < len(topics):
        frame = await ws.receive_json_from(timeout=5)
        if frame["type"] in ("subscribed", "error"):
            answers[frame["topic"]] = frame
    return answers


async def _frames_until(ws, predicate, within: float = 5.0) -> dict:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        left = deadline - asyncio.get_running_loop().time()
        frame = await ws.receive_json_from(timeout=max(left, 0.01))
        if predicate(frame):
            return frame


async def _closed_with(ws, code: int) -> None:
    deadline = asyncio.get_running_loop().time() + BOUND
    while True:
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, f"socket still open after {BOUND} s"
        message = await ws.receive_output(timeout=left)
        if message["type"] == "websocket.close":
            assert message.get("code") == code
            return


def _global_viewer():
    return grant_permissions(
        UserFactory(), "routing.view_requestlog", "providers.view_provider", "tenants.view_tenant"
    )


def _member_of(tenant, *perms: str):
    user = UserFactory()
    for perm in perms or ("tenants.view_tenant",):
        assign_perm(perm, user, tenant)
    return user


async def test_signed_out_socket_is_closed_with_4401():
    ws = await _open()
    connected, _ = await ws.connect()
    assert connected
    await _closed_with(ws, consumer.CLOSE_SIGNED_OUT)


async def test_a_foreign_origin_is_refused():
    user = await sync_to_async(_global_viewer)()
    ws = await _open(user, origin="http://evil.example")
    connected, _ = await ws.connect()
    assert not connected


async def test_a_global_viewer_subscribes_to_every_topic_and_gets_figures():
    user = await sync_to_async(_global_viewer)()
    ws = await _open(user)
    assert (await ws.connect())[0]
    answers = await _subscribe(ws, *TOPICS)
    assert {t: a["type"] for t, a in answers.items()} == {t: "subscribed" for t in TOPICS}
    update = await _frames_until(
        ws, lambda f: f["type"] == "update" and f["topic"] == "system.metrics"
    )
    assert {"requests_per_second", "latency_p95_ms", "series", "processes"} <= set(update["data"])
    await ws.disconnect()


async def test_a_refused_topic_names_it_and_the_socket_stays_open():
    acme = await sync_to_async(TenantFactory)(slug="acme")
    member = await sync_to_async(_member_of)(acme)
    ws = await _open(member)
    assert (await ws.connect())[0]
    answers = await _subscribe(
        ws, "system.metrics", "providers.health", "no.such", "costs.realtime"
    )
    assert answers["system.metrics"]["code"] == "forbidden"
    assert answers["providers.health"]["code"] == "forbidden"
    assert answers["no.such"]["code"] == "unknown_topic"
    assert answers["costs.realtime"]["type"] == "subscribed"
    # Still open: a later subscription is answered.
    assert (await _subscribe(ws, "requests.stream"))["requests.stream"]["type"] == "subscribed"
    await ws.send_json_to({"type": "nonsense"})
    assert (await ws.receive_json_from(timeout=5))["code"] == "bad_frame"
    await ws.disconnect()


async def test_a_tenant_member_never_receives_another_tenant_requests():
    acme = await sync_to_async(TenantFactory)(slug="acme", name="Acme")
    globex = await sync_to_async(TenantFactory)(slug="globex", name="Globex")
    member = await sync_to_async(_member_of)(acme)
    viewer = await sync_to_async(_global_viewer)()
    ws_member, ws_viewer = await _open(member), await _open(viewer)
    for ws in (ws_member, ws_viewer):
        assert (await ws.connect())[0]
        assert (await _subscribe(ws, "requests.stream"))["requests.stream"]["type"] == "subscribed"
    rows = [
        {"request_id": "req-acme", "tenant_id": str(acme.pk), "status": "success"},
        {"request_id": "req-globex", "tenant_id": str(globex.pk), "status": "error"},
        {"request_id": "req-none", "tenant_id": None, "status": "success"},
    ]
    await get_channel_layer().group_send(REQUESTS_GROUP, {"type": "requests.batch", "rows": rows})
    seen_member = await _frames_until(ws_member, lambda f: f.get("topic") == "requests.stream")
    seen_viewer = await _frames_until(ws_viewer, lambda f: f.get("topic") == "requests.stream")
    assert [r["request_id"] for r in seen_member["data"]["requests"]] == ["req-acme"]
    assert seen_member["data"]["requests"][0]["tenant"] == "Acme"
    assert [r["request_id"] for r in seen_viewer["data"]["requests"]] == [
        "req-acme",
        "req-globex",
        "req-none",
    ]
    # Only globex's requests: the member gets nothing at all.
    await get_channel_layer().group_send(
        REQUESTS_GROUP, {"type": "requests.batch", "rows": rows[1:2]}
    )
    await _frames_until(ws_viewer, lambda f: f.get("topic") == "requests.stream")
    assert await ws_member.receive_nothing(timeout=1.0)
    await ws_member.disconnect()
    await ws_viewer.disconnect()


async def test_signing_out_closes_the_socket_with_4401():
    user = await sync_to_async(_global_viewer)()
    ws = await _open(user)
    assert (await ws.connect())[0]
    await _subscribe(ws, "system.metrics")

    def sign_out():
        from importlib import import_module

        import_module(settings.SESSION_ENGINE).SessionStore(ws.session_key).delete()

    await sync_to_async(sign_out)()
    await _closed_with(ws, consumer.CLOSE_SIGNED_OUT)


async def test_a_session_past_its_lifetime_closes_the_socket_with_4401():
    import time

    user = await sync_to_async(_global_viewer)()
    ws = await _open(user)
    assert (await ws.connect())[0]
    await _subscribe(ws, "requests.stream")

    def age():
        from importlib import import_module

        session = import_module(settings.SESSION_ENGINE).SessionStore(ws.session_key)
        session["atp_signed_in_at"] = time.time() - 30 * 86400
        session.save()

    await sync_to_async(age)()
    await _closed_with(ws, consumer.CLOSE_SIGNED_OUT)


async def test_a_disabled_account_closes_the_socket_with_4401():
    user = await sync_to_async(_global_viewer)()
    ws = await _open(user)
    assert (await ws.connect())[0]
    await _subscribe(ws, "requests.stream")
    user.is_active = False
    await sync_to_async(user.save)()
    await _closed_with(ws, consumer.CLOSE_SIGNED_OUT)


async def test_losing_the_permission_closes_the_socket_with_4403():
    user = await sync_to_async(_global_viewer)()
    ws = await _open(user)
    assert (await ws.connect())[0]
    await _subscribe(ws, "providers.health")

    def revoke():
        user.user_permissions.remove(
            Permission.objects.get(content_type__app_label="providers", codename="view_provider")
        )

    await sync_to_async(revoke)()
    await _closed_with(ws, consumer.CLOSE_FORBIDDEN)


async def test_losing_the_tenant_role_closes_the_stream_with_4403():
    acme = await sync_to_async(TenantFactory)(slug="acme")
    member = await sync_to_async(_member_of)(acme)
    ws = await _open(member)
    assert (await ws.connect())[0]
    await _subscribe(ws, "requests.stream")

    def remove_membership():
        from guardian.shortcuts import remove_perm

        remove_perm("tenants.view_tenant", member, acme)

    await sync_to_async(remove_membership)()
    # Checked on the next push as well as on the next tick.
    await get_channel_layer().group_send(
        REQUESTS_GROUP,
        {"type": "requests.batch", "rows": [{"request_id": "r", "tenant_id": str(acme.pk)}]},
    )
    await _closed_with(ws, consumer.CLOSE_FORBIDDEN)


@pytest.mark.redis
async def test_a_push_from_another_process_reaches_the_socket_through_redis():
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL)")
    from channels_redis.core import RedisChannelLayer

    user = await sync_to_async(_global_viewer)()
    ws = await _open(user)
    assert (await ws.connect())[0]
    await _subscribe(ws, "requests.stream")
    # Another gateway process: its own channel layer on the same Redis and prefix.
    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    other = RedisChannelLayer(**config)
    marker = f"req-{uuid.uuid4().hex[:8]}"
    await other.group_send(
        REQUESTS_GROUP, {"type": "requests.batch", "rows": [{"request_id": marker}]}
    )
    frame = await _frames_until(ws, lambda f: f.get("topic") == "requests.stream")
    assert frame["data"]["requests"][0]["request_id"] == marker
    await ws.disconnect()
