"""Projects: teams or applications inside a tenant, each key in at most one of its tenant's."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.tenants.models import ApiKey, Project
from apps.tenants.services import api_key_create, project_create, tenant_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenants():
    return tenant_create(slug="acme", name="Acme"), tenant_create(slug="globex", name="Globex")


def test_projects_through_the_api_hold_keys_and_leave_them_working_when_deleted(
    manager_client, tenants
):
    acme, globex = tenants
    made = manager_client.post(
        "/api/v1/projects/", {"tenant": str(acme.pk), "slug": "web"}, format="json"
    )
    assert made.status_code == 201, made.content
    project = made.json()
    assert (project["slug"], project["name"], project["live_keys"]) == ("web", "web", 0)
    # The same slug in the same tenant names the field; in another tenant it is free.
    clash = manager_client.post(
        "/api/v1/projects/", {"tenant": str(acme.pk), "slug": "web"}, format="json"
    )
    assert clash.status_code == 409 and clash.json()["field"] == "slug"
    assert (
        manager_client.post(
            "/api/v1/projects/", {"tenant": str(globex.pk), "slug": "web"}, format="json"
        ).status_code
        == 201
    )

    key = manager_client.post(
        "/api/v1/api-keys/",
        {"tenant": str(acme.pk), "name": "shop", "project": project["id"]},
        format="json",
    )
    assert key.status_code == 201 and key.json()["project"] == project["id"]
    listed = manager_client.get("/api/v1/api-keys/", {"project": project["id"]}).json()
    assert [k["name"] for k in listed["results"]] == ["shop"]
    assert manager_client.get(f"/api/v1/projects/{project['id']}/").json()["live_keys"] == 1

    # A key moves out of its project, and back.
    url = f"/api/v1/api-keys/{key.json()['id']}/"
    assert manager_client.patch(url, {"project": None}, format="json").json()["project"] is None
    assert (
        manager_client.patch(url, {"project": project["id"]}, format="json").json()["project"]
        == project["id"]
    )

    gone = manager_client.delete(f"/api/v1/projects/{project['id']}/")
    assert gone.status_code == 204
    still = ApiKey.objects.get(pk=key.json()["id"])
    assert still.project_id is None and still.revoked_at is None
    events = AuditEvent.objects.filter(event_type__startswith="project.").order_by("sequence")
    assert [e.event_type for e in events] == [
        "project.created",
        "project.created",
        "project.deleted",
    ]
    assert events.last().data["keys_moved_to_tenant"] == [str(still.pk)]


def test_a_key_may_not_join_another_tenants_project(manager_client, tenants):
    acme, globex = tenants
    theirs = project_create(tenant=globex, slug="web")
    refused = manager_client.post(
        "/api/v1/api-keys/",
        {"tenant": str(acme.pk), "name": "k", "project": str(theirs.pk)},
        format="json",
    )
    assert refused.status_code == 400 and "project" in refused.json()
    key, _ = api_key_create(tenant=acme, name="k2")
    moved = manager_client.patch(
        f"/api/v1/api-keys/{key.pk}/", {"project": str(theirs.pk)}, format="json"
    )
    assert moved.status_code == 400 and "project" in moved.json()
    assert not ApiKey.objects.filter(project=theirs).exists()


def test_rotation_keeps_the_project(tenants):
    from apps.tenants.services import api_key_rotate

    acme, _ = tenants
    project = project_create(tenant=acme, slug="batch", name="Batch jobs")
    key, _ = api_key_create(tenant=acme, name="nightly", project=project)
    new_key, _ = api_key_rotate(api_key=key)
    assert new_key.project == project
    assert Project.objects.get(pk=project.pk).name == "Batch jobs"
