"""Stored prompt and response bodies: written behind, encrypted at rest, shown only when allowed."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Permission
from django.utils import timezone
from guardian.shortcuts import assign_perm

from apps.audit.bodies import _decrypt_body, exchange_row, record_exchange, stored_exchanges
from apps.audit.models import AuditEvent, RetentionPolicy, StoredExchange
from apps.audit.privacy import subject_erase, subject_export
from apps.audit.retention import retention_policy_save, retention_run
from apps.audit.verify import verify_chain
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_update
from tests.routing import conftest as routing
from tests.routing.conftest import call

gateway = routing.gateway

CHAT = {"model": "sim-fast", "messages": [{"role": "user", "content": "The launch code is 0000"}]}
SECRET_PROMPT = "The launch code is 0000"


def stored(tenant: Tenant | None, *, end_user: str = "", request_id: str = "r-1", **extra):
    """A stored exchange written the way the queue writes it (bodies encrypted)."""
    log = {
        "request_id": request_id,
        "tenant_id": tenant.pk if tenant else None,
        "end_user": end_user,
        "endpoint": "chat.completions",
        "model": "sim-fast",
        "http_status": 200,
        "created_at": extra.pop("created_at", timezone.now()),
    }
    row = exchange_row(
        log,
        {"messages": [{"role": "user", "content": f"prompt of {request_id}"}]},
        {"choices": [{"message": {"content": f"answer to {request_id}"}}]},
    )
    return StoredExchange.objects.create(**row)


# --- the data plane ---------------------------------------------------------------------------


@pytest.fixture
def bodies_gateway(gateway):
    stored_exchanges._take()
    tenant_update(tenant=gateway.tenant, store_bodies=True)
    yield gateway
    stored_exchanges._take()


@pytest.mark.django_db(transaction=True)
async def test_a_storing_tenants_bodies_are_written_behind_and_encrypted(bodies_gateway):
    resp = await call(
        "POST",
        "/v1/chat/completions",
        json={**CHAT, "user": "user-42"},
        key=bodies_gateway.key,
        headers={"x-request-id": "r-body"},
    )
    assert resp.status == 200
    # Written behind: nothing is in the table until the queue flushes.
    assert await sync_to_async(StoredExchange.objects.count)() == 0
    assert len(stored_exchanges) == 1
    await stored_exchanges.drain()

    exchange = await sync_to_async(StoredExchange.objects.get)()
    assert exchange.request_id == "r-body" and exchange.end_user == "user-42"
    assert exchange.tenant_id == bodies_gateway.tenant.pk
    # Nothing readable at rest.
    raw = exchange.request_encrypted + exchange.response_encrypted
    assert SECRET_PROMPT not in raw and "sim-fast" not in raw
    document = await sync_to_async(subject_export)(
        tenant=bodies_gateway.tenant, subject="user-42", bodies=True
    )
    [item] = document["exchanges"]
    assert item["request"]["messages"][0]["content"] == SECRET_PROMPT
    answer = resp.json()["choices"][0]["message"]["content"]
    assert item["response"]["choices"][0]["message"]["content"] == answer


@pytest.mark.django_db(transaction=True)
async def test_a_graceful_shutdown_writes_queued_bodies(bodies_gateway):
    from apps.routing.lifecycle import shutdown

    for n in range(3):
        resp = await call("POST", "/v1/chat/completions", json=CHAT, key=bodies_gateway.key)
        assert resp.status == 200, n
    assert len(stored_exchanges) == 3
    await shutdown()
    assert len(stored_exchanges) == 0
    assert await sync_to_async(StoredExchange.objects.count)() == 3


@pytest.mark.django_db(transaction=True)
async def test_a_tenant_that_does_not_store_bodies_leaves_none(gateway):
    stored_exchanges._take()
    assert (await call("POST", "/v1/chat/completions", json=CHAT, key=gateway.key)).status == 200
    assert len(stored_exchanges) == 0


async def test_record_exchange_never_raises_into_the_response_path(caplog, settings):
    stored_exchanges._take()
    # Bodies plain JSON cannot hold (non-string keys, a lone surrogate) are stored from
    # their storable copy rather than lost.
    record_exchange({"request_id": "r-odd"}, {("not", "a", "str"): 1}, {"b": "\ud800"})
    (row,) = stored_exchanges._take()
    assert _decrypt_body(row["request_encrypted"]) == {"('not', 'a', 'str')": 1}
    assert _decrypt_body(row["response_encrypted"]) == {"b": "\ufffd"}
    # Bodies that cannot be encrypted (no key configured) are logged, not raised.
    settings.ATP_ENCRYPTION_KEYS = []
    with caplog.at_level(logging.ERROR, logger="apps.audit.bodies"):
        record_exchange({"request_id": "r-lost"}, {"a": 1}, {"b": 2})
    assert "r-lost" in caplog.text
    assert len(stored_exchanges) == 0


# --- encryption ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_bodies_survive_key_rotation_and_report_a_missing_key(settings, staff_client, staff_user):
    settings.ATP_ENCRYPTION_KEYS = ["old-key-material"]
    staff_user.is_superuser = True
    staff_user.save()
    exchange = stored(Tenant.objects.create(slug="acme", name="Acme"))

    settings.ATP_ENCRYPTION_KEYS = ["new-key-material", "old-key-material"]
    resp = staff_client.get(f"/api/v1/exchanges/{exchange.pk}/")
    assert resp.status_code == 200
    assert resp.json()["request_body"]["messages"][0]["content"] == "prompt of r-1"

    settings.ATP_ENCRYPTION_KEYS = ["new-key-material"]
    resp = staff_client.get(f"/api/v1/exchanges/{exchange.pk}/")
    assert resp.status_code == 200
    body = resp.json()
    assert body["request_body"] is None and "ATP_ENCRYPTION_KEYS" in body["body_error"]
    outcomes = list(
        AuditEvent.objects.filter(event_type="exchange.viewed").values_list("outcome", flat=True)
    )
    assert outcomes == ["success", "failure"]


# --- who may see bodies ---------------------------------------------------------------------


@pytest.fixture
def two_tenants(db):
    acme = Tenant.objects.create(slug="acme", name="Acme")
    other = Tenant.objects.create(slug="other", name="Other")
    return acme, stored(acme, request_id="r-acme"), other, stored(other, request_id="r-other")


def test_managers_list_metadata_but_need_the_permission_for_bodies(two_tenants, manager_client):
    _, acme_exchange, _, _ = two_tenants
    staff_client = manager_client
    resp = staff_client.get("/api/v1/exchanges/")
    assert resp.status_code == 200
    rows = resp.json()["results"]
    assert {r["request_id"] for r in rows} == {"r-acme", "r-other"}
    assert all("request_body" not in r for r in rows)
    assert "prompt of" not in json.dumps(rows)

    resp = staff_client.get("/api/v1/exchanges/", {"request_id": "r-acme"})
    assert [r["id"] for r in resp.json()["results"]] == [acme_exchange.pk]

    resp = staff_client.get(f"/api/v1/exchanges/{acme_exchange.pk}/")
    assert resp.status_code == 403
    assert not AuditEvent.objects.filter(event_type="exchange.viewed").exists()


def test_a_body_view_is_audited(two_tenants, admin_client, admin_user):
    acme, acme_exchange, _, _ = two_tenants
    resp = admin_client.get(f"/api/v1/exchanges/{acme_exchange.pk}/")
    assert resp.status_code == 200
    body = resp.json()
    assert body["request_body"]["messages"][0]["content"] == "prompt of r-acme"
    assert body["response_body"]["choices"][0]["message"]["content"] == "answer to r-acme"
    event = AuditEvent.objects.get(event_type="exchange.viewed")
    assert (event.actor, event.source, event.tenant_id) == (
        admin_user.get_username(),
        "api",
        acme.pk,
    )
    assert event.resource_id == str(acme_exchange.pk)
    assert "prompt of" not in json.dumps(event.data)
    assert verify_chain().ok


def test_the_global_permission_shows_every_tenants_bodies(two_tenants, viewer_user, viewer_client):
    _, acme_exchange, _, other_exchange = two_tenants
    for exchange in (acme_exchange, other_exchange):
        assert viewer_client.get(f"/api/v1/exchanges/{exchange.pk}/").status_code == 403
    viewer_user.user_permissions.add(Permission.objects.get(codename="view_exchange_body"))
    for exchange in (acme_exchange, other_exchange):
        assert viewer_client.get(f"/api/v1/exchanges/{exchange.pk}/").status_code == 200


def test_a_per_tenant_grant_shows_that_tenants_bodies_only(two_tenants, user_factory, api_client):
    acme, acme_exchange, other, other_exchange = two_tenants
    reviewer = user_factory(username="reviewer")
    assign_perm("tenants.audit_tenant", reviewer, acme)
    assign_perm("tenants.view_tenant_bodies", reviewer, acme)
    assign_perm("tenants.audit_tenant", reviewer, other)
    api_client.force_login(reviewer)

    assert api_client.get(f"/api/v1/exchanges/{acme_exchange.pk}/").status_code == 200
    assert api_client.get(f"/api/v1/exchanges/{other_exchange.pk}/").status_code == 403


def test_an_auditor_lists_only_their_tenants_exchanges(two_tenants, user_factory, api_client):
    acme, acme_exchange, _, other_exchange = two_tenants
    auditor = user_factory(username="auditor")
    assign_perm("tenants.audit_tenant", auditor, acme)
    api_client.force_login(auditor)

    resp = api_client.get("/api/v1/exchanges/")
    assert [r["request_id"] for r in resp.json()["results"]] == ["r-acme"]
    # Another tenant's exchange does not exist for them; their own needs the body grant.
    assert api_client.get(f"/api/v1/exchanges/{other_exchange.pk}/").status_code == 404
    assert api_client.get(f"/api/v1/exchanges/{acme_exchange.pk}/").status_code == 403


def test_exchanges_refuse_anonymous_and_plain_users(two_tenants, api_client, plain_user):
    assert api_client.get("/api/v1/exchanges/").status_code == 401
    api_client.force_login(plain_user)
    assert api_client.get("/api/v1/exchanges/").status_code == 403


def test_a_bad_filter_is_a_400(two_tenants, viewer_client):
    resp = viewer_client.get("/api/v1/exchanges/", {"tenant_id": "not-a-uuid"})
    assert resp.status_code == 400 and "tenant_id" in resp.json()


# --- data-subject requests and retention -----------------------------------------------------


@pytest.mark.django_db
def test_subject_export_includes_bodies_and_erasure_deletes_them():
    acme = Tenant.objects.create(slug="acme", name="Acme")
    stored(acme, end_user="user-42", request_id="r1")
    stored(acme, end_user="someone-else", request_id="r2")

    document = subject_export(tenant=acme, subject="user-42", bodies=True)
    assert [e["request_id"] for e in document["exchanges"]] == ["r1"]
    assert document["exchanges"][0]["request"]["messages"][0]["content"] == "prompt of r1"
    assert AuditEvent.objects.get(event_type="privacy.subject_exported").data["exchanges"] == 1

    result = subject_erase(tenant=acme, subject="user-42")
    assert result["exchanges_deleted"] == 1
    assert list(StoredExchange.objects.values_list("request_id", flat=True)) == ["r2"]
    assert subject_export(tenant=acme, subject="user-42")["exchanges"] == []
    event = AuditEvent.objects.get(event_type="privacy.subject_erased")
    assert event.data["exchanges_deleted"] == 1 and "user-42" not in json.dumps(event.data)
    assert verify_chain().ok


@pytest.mark.django_db
def test_retention_purges_bodies_per_tenant_policy_and_default(settings):
    settings.ATP_BODY_RETENTION_DAYS = 30
    acme = Tenant.objects.create(slug="acme", name="Acme")
    other = Tenant.objects.create(slug="other", name="Other")
    retention_policy_save(
        policy=RetentionPolicy(tenant_id=acme.pk, classification="bodies", days=7)
    )
    now = timezone.now()
    stored(acme, request_id="acme-old", created_at=now - timedelta(days=10))
    stored(acme, request_id="acme-new", created_at=now - timedelta(days=3))
    stored(other, request_id="other-kept", created_at=now - timedelta(days=10))
    stored(other, request_id="other-old", created_at=now - timedelta(days=40))

    report = retention_run(now=now)

    assert report.exchanges_purged == 2
    assert set(StoredExchange.objects.values_list("request_id", flat=True)) == {
        "acme-new",
        "other-kept",
    }
    event = AuditEvent.objects.get(event_type="retention.exchanges_purged")
    assert event.data == {"purged": 2}
