"""The management API's OpenAPI schema documents what the API really returns: its errors,
their shapes, the export content types and how to authenticate."""

from __future__ import annotations

import pytest
from drf_spectacular.validation import validate_schema

pytestmark = pytest.mark.django_db

ERRORS = {"400", "401", "403", "404", "409"}


@pytest.fixture
def schema(manager_client) -> dict:
    response = manager_client.get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method.upper(), operation


def test_the_schema_is_valid_openapi(schema):
    validate_schema(schema)


def test_every_operation_documents_401_and_403(schema):
    missing = [
        (method, path)
        for path, method, op in operations(schema)
        if not {"401", "403"} <= set(op["responses"])
    ]
    assert not missing


def test_an_operation_on_one_object_documents_404(schema):
    for path, method, op in operations(schema):
        assert ("404" in op["responses"]) == ("{" in path), (method, path)


def test_an_operation_taking_input_documents_400(schema):
    for path, method, op in operations(schema):
        takes_input = "requestBody" in op or any(
            p["in"] == "query" for p in op.get("parameters", [])
        )
        if takes_input or method in ("POST", "PUT", "PATCH"):
            assert "400" in op["responses"], (method, path)


def test_writes_of_unique_names_document_409_and_nothing_else_does(schema):
    with_409 = {
        (method, path) for path, method, op in operations(schema) if "409" in op["responses"]
    }
    expected = {
        (method, f"/api/v1/{collection}/{suffix}")
        for collection in (
            "tenants",
            "projects",
            "api-keys",
            "providers",
            "deployments",
            "routes",
            "retention-policies",
            "rate-limits",
            "budgets",
            "notifiers",
            "policies",
        )
        for method, suffix in (("POST", ""), ("PUT", "{id}/"), ("PATCH", "{id}/"))
    }
    assert with_409 == expected


def test_errors_have_reusable_shapes(schema):
    responses = schema["components"]["responses"]
    shapes = schema["components"]["schemas"]
    ref = "#/components/schemas/{}".format
    assert responses["BadRequest"]["content"]["application/json"]["schema"] == {
        "anyOf": [{"$ref": ref("ValidationError")}, {"$ref": ref("Error")}]
    }
    for name in ("Unauthorized", "Forbidden", "NotFound"):
        assert responses[name]["content"]["application/json"]["schema"] == {"$ref": ref("Error")}
    assert responses["Conflict"]["content"]["application/json"]["schema"] == {
        "$ref": ref("ATPError")
    }
    assert shapes["Error"]["required"] == ["detail"]
    assert set(shapes["ATPError"]["properties"]) == {"detail", "code", "field"}
    assert shapes["ValidationError"]["additionalProperties"]["anyOf"][0] == {
        "type": "array",
        "items": {"type": "string"},
    }
    for path, method, op in operations(schema):
        for status in ERRORS & set(op["responses"]):
            assert op["responses"][status]["$ref"].startswith("#/components/responses/"), (
                method,
                path,
            )


def test_downloads_document_their_content_types(schema):
    export = schema["paths"]["/api/v1/audit/export/"]["get"]
    assert set(export["responses"]["200"]["content"]) == {
        "text/csv",
        "application/json",
        "application/x-ndjson",
    }
    assert export["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/AuditExportRecord"},
    }
    # The export takes the search's filters.
    names = {p["name"] for p in export["parameters"]}
    assert {"format", "since", "until", "tenant", "event_type", "outcome"} <= names
    report = schema["paths"]["/api/v1/audit/report/"]["get"]
    content = report["responses"]["200"]["content"]
    assert set(content) == {"application/json", "text/csv", "application/pdf"}
    assert content["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ComplianceReport"
    }
    assert content["application/pdf"]["schema"] == {"type": "string", "format": "binary"}


def test_both_ways_to_authenticate_are_declared(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["adminToken"]["type"] == "http" and schemes["adminToken"]["scheme"] == "bearer"
    assert (
        schemes["cookieAuth"]["in"] == "cookie"
        and "X-CSRFToken" in (schemes["cookieAuth"]["description"])
    )
    for path, method, op in operations(schema):
        assert {"adminToken": []} in op["security"] and {} not in op["security"], (method, path)


def test_a_deployment_names_its_provider_by_id_and_reads_it_back_whole(schema):
    shapes = schema["components"]["schemas"]
    assert shapes["DeploymentRequest"]["properties"]["provider"] == {
        "type": "string",
        "format": "uuid",
    }
    assert shapes["Deployment"]["properties"]["provider"] == {
        "$ref": "#/components/schemas/ProviderBrief"
    }
    assert {"input_price", "output_price"} <= set(shapes["DeploymentRequest"]["required"])


def test_names_are_single_line_in_what_a_request_writes_not_in_what_is_read(schema):
    shapes = schema["components"]["schemas"]
    rule = shapes["TenantRequest"]["properties"]["name"]["pattern"]
    assert rule == "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]+$"
    assert shapes["RouteRequest"]["properties"]["candidates"]["items"]["pattern"] == rule
    # Rows written before the rule, or by the configuration file, are read back as they are.
    assert "pattern" not in shapes["Tenant"]["properties"]["name"]
    assert "pattern" not in str(shapes["AuditEvent"]) and "pattern" not in str(shapes["Exchange"])
    # A description is free text.
    assert "pattern" not in shapes["RouteRequest"]["properties"]["description"]
