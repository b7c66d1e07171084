"""POST /api/v1/config/apply and GET /api/v1/config/export: atp_apply and atp_export over the
management API, for superusers, audited."""

from __future__ import annotations

import json

import pytest
import yaml
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.routing.models import Route
from apps.tenants.services import admin_token_create
from tests.conftest import UserFactory

pytestmark = pytest.mark.django_db

DOCUMENT = """\
version: 1
routes:
  - name: team/api
    strategy: cheapest
    description: From the API
"""


@pytest.fixture
def root():
    return UserFactory(username="root", is_superuser=True)


@pytest.fixture
def root_client(root) -> APIClient:
    client = APIClient()
    _, token = admin_token_create(user=root, name="cli")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def apply(client: APIClient, body: str, query: str = "", content_type="application/yaml"):
    return client.post(f"/api/v1/config/apply{query}", body, content_type=content_type)


def test_a_dry_run_reports_and_changes_nothing(root_client):
    response = apply(root_client, DOCUMENT, "?dry_run=true")
    assert response.status_code == 200, response.content
    report = response.json()
    assert report["dry_run"] is True and report["changed"] is True
    assert report["changes"] == [
        {"kind": "route", "name": "team/api", "action": "created", "fields": [], "key": None}
    ]
    assert report["summary"].startswith("Dry run, nothing applied: 1 created")
    assert not Route.objects.filter(name="team/api").exists()


def test_applying_is_audited_as_the_callers_change_from_the_file(root_client):
    response = apply(root_client, DOCUMENT)
    assert response.status_code == 200, response.content
    assert response.json()["counts"]["created"] == 1
    route = Route.objects.get(name="team/api")
    event = AuditEvent.objects.filter(resource_id=str(route.pk)).latest("sequence")
    assert (event.actor, event.source) == ("root", AuditEvent.Source.CONFIG)
    # The same document again: nothing to do. With a trailing slash, as JSON.
    again = root_client.post(
        "/api/v1/config/apply/",
        json.dumps(yaml.safe_load(DOCUMENT)),
        content_type="application/json",
    )
    assert again.status_code == 200
    assert again.json()["summary"].startswith("No changes: ")


def test_a_key_the_document_does_not_give_is_shown_once(root_client):
    body = "version: 1\ntenants:\n  - slug: initech\n    api_keys:\n      - name: robot\n"
    dry = apply(root_client, body, "?dry_run=1").json()
    assert {c["name"]: c["key"] for c in dry["changes"]}["initech/robot"] is None
    made = apply(root_client, body).json()
    assert {c["name"]: c["key"] for c in made["changes"]}["initech/robot"].startswith("atp_")


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (
            "version: 1\nroutes:\n  - name: team/x\n    strategy: dice\n",
            "application/yaml",
            {"non_field_errors": ["Invalid configuration: routes[0].strategy: must be one of "]},
        ),
        ("version: 2\n", "text/yaml", {"non_field_errors": ["Invalid configuration: version: "]}),
        ("[1, 2]", "application/json", {"non_field_errors": ["Invalid configuration: must be "]}),
        ("version: [1\n", "application/yaml", {"detail": "The document is not valid YAML: "}),
        ('version: 1\nroutes:\n  - name: "a\\0b"\n', "application/x-yaml", {"routes": [""]}),
    ],
)
def test_an_invalid_document_is_a_400_and_changes_nothing(
    root_client, body, content_type, expected
):
    response = apply(root_client, body, content_type=content_type)
    assert response.status_code == 400, response.content
    data = response.json()
    assert set(data) == set(expected)
    for key, value in expected.items():
        got = data[key] if isinstance(value, str) else data[key][0]
        assert got.startswith(value if isinstance(value, str) else value[0]), got
    assert not Route.objects.exists()


def test_export_as_yaml_or_json_is_audited(root_client):
    apply(root_client, DOCUMENT)
    response = root_client.get("/api/v1/config/export")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/yaml")
    text = response.content.decode()
    assert text.startswith("# ATP configuration")
    assert yaml.safe_load(text)["routes"][0]["name"] == "team/api"
    as_json = root_client.get("/api/v1/config/export/", {"format": "json"})
    assert as_json.status_code == 200
    assert as_json.json()["routes"][0]["name"] == "team/api"
    assert root_client.get("/api/v1/config/export", {"format": "xml"}).status_code == 400
    events = AuditEvent.objects.filter(event_type="config.exported").order_by("sequence")
    assert [(e.actor, e.data["format"]) for e in events] == [("root", "yaml"), ("root", "json")]


def test_only_superusers_apply_or_export(manager_client, api_client):
    assert apply(manager_client, DOCUMENT).status_code == 403
    assert manager_client.get("/api/v1/config/export").status_code == 403
    assert apply(api_client, DOCUMENT).status_code == 401
    assert not Route.objects.exists()
