"""A user granted one tenant sees that tenant's objects in every list, and cannot learn
whether another tenant exists (by its detail, a filter or a reference in a request)."""

from __future__ import annotations

import json

import pytest

from tests.permission_matrix.world import build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_world()


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_every_list_holds_only_the_granted_tenants_objects(world):
    client = world.client("tenant_admin")
    acme = str(world.acme.pk)
    assert [t["slug"] for t in results(client.get("/api/v1/tenants/"))] == ["acme"]
    assert {k["tenant"] for k in results(client.get("/api/v1/api-keys/"))} == {acme}
    assert {e["tenant_id"] for e in results(client.get("/api/v1/audit/"))} == {acme}
    assert {e["tenant_id"] for e in results(client.get("/api/v1/exchanges/"))} == {acme}
    policies = results(client.get("/api/v1/retention-policies/"))
    assert {p["tenant_id"] for p in policies} == {acme}


def test_the_same_lists_hold_everything_for_a_global_viewer(world):
    client = world.client("read_only")
    assert len(results(client.get("/api/v1/tenants/"))) == 2
    assert len(results(client.get("/api/v1/retention-policies/"))) == 4


def test_filtering_by_another_tenant_reads_as_filtering_by_a_missing_one(world):
    client = world.client("tenant_admin")
    elsewhere = client.get("/api/v1/api-keys/", {"tenant": str(world.globex.pk)})
    missing = client.get("/api/v1/api-keys/", {"tenant": "00000000-0000-4000-8000-000000000000"})
    assert elsewhere.status_code == missing.status_code == 400
    assert results(client.get("/api/v1/api-keys/", {"tenant": str(world.acme.pk)}))

    elsewhere = client.get("/api/v1/audit/", {"tenant": "globex"})
    missing = client.get("/api/v1/audit/", {"tenant": "nope"})
    assert elsewhere.status_code == missing.status_code == 400
    assert elsewhere.json()["tenant"] == ["No tenant with slug 'globex'."]
    assert results(client.get("/api/v1/audit/", {"tenant": "acme"}))


def test_the_export_narrows_like_the_search(world):
    client = world.client("tenant_admin")
    response = client.get("/api/v1/audit/export/", {"format": "jsonl"})
    lines = b"".join(response.streaming_content).decode().splitlines()
    # The last line is the export's signed manifest, not an event.
    events, manifest = lines[:-1], json.loads(lines[-1])
    assert events and all(f'"tenant_id": "{world.acme.pk}"' in line for line in events)
    assert manifest["atp_export"]["statement"]["complete"] is False
