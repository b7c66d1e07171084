"""Every console WebSocket topic against every role: the outcomes in permission_matrix/topics.py.

Each role's user is made as the product makes it (the role services for global and tenant
roles, the `atp-managers` group, is_staff, is_superuser), signs in with a session, opens
/ws/console/ through the real ASGI application and subscribes to every topic at once.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import Group
from django.test import Client

from apps.tenants.permissions import MANAGER_PERMISSIONS
from atp_site.asgi import application
from atp_site.console.live import figures
from atp_site.console.live.consumer import CLOSE_SIGNED_OUT
from atp_site.console.live.store import MemoryStore, set_store
from atp_site.console.live.topics import TOPICS
from tests.conftest import TenantFactory, UserFactory
from tests.permission_matrix.topics import OK, REFUSED, ROLES, TOPIC_ROWS

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _close_worker_connections():
    """The consumer reads the database on a worker thread: close its connection after each
    test so the test database can be dropped."""
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()


GLOBAL = {
    "read_only": "read-only",
    "auditor": "auditor",
    "cost_admin": "cost-admin",
    "security_admin": "security-admin",
    "platform_admin": "platform-admin",
    "super_admin": "super-admin",
}
TENANT = {"tenant_member": "tenant-member", "tenant_admin": "tenant-admin"}


def test_every_topic_has_a_row():
    rows = [r.topic for r in TOPIC_ROWS]
    assert len(rows) == len(set(rows)), "a topic has two rows"
    missing = sorted(set(TOPICS) - set(rows))
    assert not missing, f"topics without a row in tests/permission_matrix/topics.py: {missing}"
    stale = sorted(set(rows) - set(TOPICS))
    assert not stale, f"rows for topics that do not exist: {stale}"


def grant_permissions(group, *names: str) -> None:
    from django.contrib.auth.models import Permission

    for name in names:
        app_label, codename = name.split(".")
        group.permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )


def _user_for(role: str):
    from apps.tenants.roles import tenant_role_set, user_roles_set

    user = UserFactory(
        username=f"topics-{role}",
        is_staff=role in ("staff", "superuser"),
        is_superuser=role == "superuser",
    )
    if role in GLOBAL:
        user_roles_set(user=user, roles=[GLOBAL[role]], actor=None, source="cli")
    elif role in TENANT:
        acme = TenantFactory(slug="acme", name="Acme")
        TenantFactory(slug="globex", name="Globex")
        tenant_role_set(user=user, tenant=acme, role=TENANT[role], actor=None, source="cli")
    elif role == "manager":
        # The upgrade's group (tenants/0006); a transactional test's flush may have taken it.
        group, created = Group.objects.get_or_create(name="atp-managers")
        if created:
            grant_permissions(group, *sorted(MANAGER_PERMISSIONS))
        user.groups.add(group)
    return user


def _session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


async def _outcomes(role: str) -> dict[str, str]:
    headers = [(b"origin", b"http://localhost")]
    if role != "anonymous":
        user = await sync_to_async(_user_for)(role)
        headers.append((b"cookie", await sync_to_async(_session_cookie)(user)))
    ws = WebsocketCommunicator(application, "/ws/console/", headers=headers)
    connected, _ = await ws.connect()
    assert connected
    try:
        if role == "anonymous":
            message = await ws.receive_output(timeout=5)
            assert message == {"type": "websocket.close", "code": CLOSE_SIGNED_OUT}
            return dict.fromkeys(TOPICS, REFUSED)
        await ws.send_json_to({"type": "subscribe", "topics": list(TOPICS)})
        found: dict[str, str] = {}
        while len(found) < len(TOPICS):
            frame = await ws.receive_json_from(timeout=5)
            if frame["type"] == "subscribed":
                found[frame["topic"]] = OK
            elif frame["type"] == "error":
                assert frame["code"] == "forbidden", frame
                found[frame["topic"]] = REFUSED
        return found
    finally:
        await ws.disconnect()


@pytest.fixture(autouse=True)
def _private_store():
    set_store(MemoryStore())
    figures.clear_cache()
    yield
    set_store(None)
    figures.clear_cache()


@pytest.mark.parametrize("role", ROLES)
async def test_topics_for_role(role):
    expected = {row.topic: row.expect[role] for row in TOPIC_ROWS}
    assert await _outcomes(role) == expected
