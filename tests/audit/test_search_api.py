"""The audit search API: filters, ordering, retrieval, streamed exports and the admin."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.audit.context import AuditActor
from apps.audit.models import AuditEvent
from apps.audit.services import PendingEvent, audit_append, audit_record

pytestmark = pytest.mark.django_db

ALICE = AuditActor(user_id="7", actor="alice", source="console", request_id="req-alice")
BOB = AuditActor(user_id="8", actor="bob", source="api", request_id="req-bob")
GATEWAY = AuditActor(actor="key:ci", source="data_plane", request_id="req-gw")

LIST = "/api/v1/audit/"
EXPORT = "/api/v1/audit/export/"


@pytest.fixture
def tenants(tenant_factory):
    return tenant_factory(slug="acme", name="Acme Corp"), tenant_factory(slug="globex")


@pytest.fixture
def events(tenants):
    acme, globex = tenants
    now = timezone.now()
    old = audit_append(
        [
            PendingEvent(
                event_type="tenant.created",
                action="create",
                tenant_id=acme.pk,
                resource_type="tenant",
                resource_id=str(acme.pk),
                occurred_at=now - timedelta(days=10),
                actor=ALICE,
            )
        ]
    )[0]
    return {
        "old": old,
        "key": audit_record(
            event_type="api_key.created",
            action="create",
            tenant_id=acme.pk,
            resource_type="api_key",
            resource_id="k1",
            actor=ALICE,
        ),
        "revoke": audit_record(
            event_type="api_key.revoked",
            action="revoke",
            tenant_id=globex.pk,
            resource_type="api_key",
            resource_id="k2",
            actor=BOB,
        ),
        "denied": audit_record(
            event_type="gateway.request",
            action="chat.completions",
            outcome="denied",
            tenant_id=acme.pk,
            actor=GATEWAY,
        ),
    }


def _sequences(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["sequence"] for row in response.json()["results"]]


def test_search_needs_a_permission(api_client, plain_user, events):
    assert api_client.get(LIST).status_code in (401, 403)
    api_client.force_login(plain_user)
    assert api_client.get(LIST).status_code == 403
    assert api_client.get(EXPORT).status_code == 403


def test_list_is_paginated_newest_first_with_every_field(token_client, events):
    body = token_client.get(LIST, {"limit": 2}).json()
    assert body["count"] == AuditEvent.objects.count() >= 4
    assert len(body["results"]) == 2
    top = body["results"][0]
    assert top["sequence"] == AuditEvent.objects.order_by("sequence").last().sequence
    for name in ("hash", "prev_hash", "signature", "key_id", "event_id", "data", "before"):
        assert name in top
    denied = token_client.get(f"{LIST}{events['denied'].sequence}/").json()
    assert denied["hash"] == events["denied"].hash
    assert denied["signature"] == events["denied"].signature
    ascending = _sequences(token_client.get(LIST, {"ordering": "occurred_at"}))
    assert ascending[0] == events["old"].sequence


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"tenant": "acme"}, ["denied", "key", "old"]),
        ({"user": "bob"}, ["revoke"]),
        ({"user": "7"}, ["key", "old"]),
        ({"event_type": "api_key.created"}, ["key"]),
        ({"event_type__startswith": "api_key."}, ["revoke", "key"]),
        ({"event_type_prefix": "api_key."}, ["revoke", "key"]),
        ({"outcome": "denied"}, ["denied"]),
        ({"resource_type": "api_key", "resource_id": "k2"}, ["revoke"]),
        ({"request_id": "req-gw"}, ["denied"]),
        ({"tenant": "acme", "source": "console"}, ["key", "old"]),
        ({"tenant": "acme", "outcome": "success"}, ["key", "old"]),
    ],
)
def test_filters(token_client, events, params, expected):
    got = _sequences(token_client.get(LIST, params))
    assert got == [events[name].sequence for name in expected]


def test_tenant_filter_takes_uuid_and_time_window(token_client, events, tenants):
    acme, _ = tenants
    now = timezone.now()
    got = _sequences(
        token_client.get(
            LIST,
            {
                "tenant": str(acme.pk),
                "since": (now - timedelta(days=1)).isoformat(),
                "until": (now + timedelta(minutes=5)).isoformat(),
            },
        )
    )
    assert got == [events["denied"].sequence, events["key"].sequence]
    until_only = _sequences(
        token_client.get(LIST, {"until": (now - timedelta(days=1)).isoformat()})
    )
    assert until_only == [events["old"].sequence]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"tenant": "no-such-tenant"}, "tenant"),
        ({"since": "yesterday"}, "since"),
        ({"outcome": "maybe"}, "outcome"),
        ({"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
    ],
)
def test_bad_filters_are_400_naming_the_field(token_client, events, params, field):
    response = token_client.get(LIST, params)
    assert response.status_code == 400
    assert field in response.json()
    assert token_client.get(EXPORT, params).status_code == 400


def test_retrieve_by_sequence(token_client, events):
    event = events["key"]
    response = token_client.get(f"{LIST}{event.sequence}/")
    assert response.status_code == 200
    body = response.json()
    assert body["event_id"] == str(event.event_id)
    assert body["actor"] == "alice"
    assert body["prev_hash"] == event.prev_hash
    assert token_client.get(f"{LIST}999999/").status_code == 404


def _content(response) -> str:
    assert response.status_code == 200, getattr(response, "content", b"")
    return b"".join(response.streaming_content).decode()


def test_export_csv_streams_the_filtered_set_and_is_audited(token_client, events, manager_user):
    response = token_client.get(EXPORT, {"tenant": "acme", "format": "csv"})
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert 'attachment; filename="atp-audit-' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(_content(response))))
    assert [int(r["sequence"]) for r in rows] == [
        events["old"].sequence,
        events["key"].sequence,
        events["denied"].sequence,
    ]
    assert rows[1]["hash"] == events["key"].hash
    assert json.loads(rows[0]["data"]) == {}

    exported = AuditEvent.objects.get(event_type="audit.exported")
    assert exported.data["rows"] == 3
    assert exported.data["format"] == "csv"
    assert exported.data["filters"]["tenant_id"] == str(events["key"].tenant_id)
    assert exported.actor == manager_user.username
    assert exported.source == "api"
    # The export's own event comes after the exported set, not inside it.
    assert exported.sequence > events["denied"].sequence


def test_export_json_and_jsonl(token_client, events):
    # The last record of a JSON or JSON Lines export is its signed manifest.
    *as_json, manifest = json.loads(
        _content(token_client.get(EXPORT, {"format": "json", "user": "bob"}))
    )
    assert [e["sequence"] for e in as_json] == [events["revoke"].sequence]
    assert manifest["atp_export"]["statement"]["rows"] == 1
    existing = AuditEvent.objects.count()
    lines = _content(token_client.get(EXPORT, {"format": "jsonl"})).splitlines()
    *parsed, manifest = [json.loads(line) for line in lines]
    # The second export includes the first export's event, but not its own.
    assert [e["event_type"] for e in parsed][-1] == "audit.exported"
    assert len(parsed) == existing
    assert [e["sequence"] for e in parsed] == sorted(e["sequence"] for e in parsed)
    assert manifest["atp_export"]["statement"]["complete"] is True
    *empty, manifest = json.loads(
        _content(token_client.get(EXPORT, {"format": "json", "user": "nobody"}))
    )
    assert empty == [] and manifest["atp_export"]["statement"]["rows"] == 0


def test_export_rejects_unknown_format(token_client, events):
    response = token_client.get(EXPORT, {"format": "xml"})
    assert response.status_code == 400
    assert "format" in response.json()
    assert not AuditEvent.objects.filter(event_type="audit.exported").exists()


def test_verify_still_answers(token_client, events):
    body = token_client.get("/api/v1/audit/verify/").json()
    assert body["status"] == "ok"
    assert body["head_hash"] == events["denied"].hash


def test_admin_is_read_only(admin_client, events):
    event = events["key"]
    existing = AuditEvent.objects.count()
    changelist = admin_client.get(reverse("admin:audit_auditevent_changelist"), {"q": "alice"})
    assert changelist.status_code == 200
    assert "api_key.created" in changelist.content.decode()
    filtered = admin_client.get(
        reverse("admin:audit_auditevent_changelist"), {"outcome__exact": "denied"}
    )
    assert filtered.status_code == 200
    change_url = reverse("admin:audit_auditevent_change", args=[event.pk])
    page = admin_client.get(change_url)
    assert page.status_code == 200
    assert event.hash in page.content.decode()
    assert admin_client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    delete_url = reverse("admin:audit_auditevent_delete", args=[event.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    admin_client.post(change_url, {"actor": "mallory"})
    event.refresh_from_db()
    assert event.actor == "alice"
    assert AuditEvent.objects.count() == existing
