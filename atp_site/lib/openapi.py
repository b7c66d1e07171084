"""The management API's OpenAPI schema: error responses, the session scheme, filter parameters.

drf-spectacular documents only the success response of an operation. `AutoSchema` adds the
errors the API really returns, from what the view is (authenticated, addressing one object,
taking input, writing a model with unique fields), so generated clients accept them:

- 400 `BadRequest`: `ValidationError` (field -> messages) or `Error` (a parse error)
- 401 `Unauthorized`, 403 `Forbidden`, 404 `NotFound`: `Error` (`{"detail": ...}`)
- 409 `Conflict`: `ATPError` (`{"detail", "code": "conflict", "field"}`)

The error shapes are rendered by atp_site.lib.drf.exception_handler.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.conf import settings
from django.db import models
from django_filters import FilterSet
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from atp_site.lib.api_input import SINGLE_LINE

JSON = "application/json"
UNSAFE_METHODS = ("POST", "PUT", "PATCH")


class ErrorSerializer(serializers.Serializer):
    """Django REST framework's error shape: one sentence saying what went wrong."""

    detail = serializers.CharField()


class ATPErrorSerializer(ErrorSerializer):
    """An ATP error: the sentence, a stable code, and the request field at fault if any."""

    code = serializers.CharField(allow_null=True, help_text="A stable machine-readable code.")
    field = serializers.CharField(required=False, help_text="The request field at fault.")


_MESSAGES = {"type": "array", "items": {"type": "string"}}

# Field name (or `non_field_errors`) -> messages. A list or mapping field's messages are
# keyed by the item's index or key, one level down.
VALIDATION_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "Each invalid field (or `non_field_errors`) with its messages; the messages of an "
        "item of a list or mapping field are keyed by the item's index or key."
    ),
    "additionalProperties": {
        "anyOf": [
            _MESSAGES,
            {"type": "object", "additionalProperties": {"anyOf": [_MESSAGES, {"type": "object"}]}},
        ]
    },
    "example": {"name": ["This field is required."]},
}

# Status -> (response component, description); the body's schema is `_error_schema`'s.
ERROR_RESPONSES = {
    "400": ("BadRequest", "Invalid input: the fields at fault with their messages."),
    "401": ("Unauthorized", "No credentials, or an invalid, expired or revoked admin token."),
    "403": ("Forbidden", "The caller lacks the permission for this action."),
    "404": ("NotFound", "No such object among those the caller may see."),
    "409": ("Conflict", "Conflicts with an existing object (a name or slug in use)."),
}


def unique_fields(model: type[models.Model]) -> list[str]:
    """Fields of `model` a client sets that must be unique (alone or together), if any."""
    names: list[str] = [
        f.name for f in model._meta.concrete_fields if f.unique and f.editable and not f.primary_key
    ]
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint):
            names.extend(constraint.fields)
    for together in model._meta.unique_together:
        names.extend(together)
    return list(dict.fromkeys(names))


def _drop_pattern(schema: dict[str, Any]) -> None:
    """Remove a string schema's `pattern`, with the `oneOf` drf-spectacular wraps around a
    blank-allowed patterned field when nothing else needs it."""
    schema.pop("pattern", None)
    one_of = schema.get("oneOf")
    if not one_of or "pattern" not in one_of[0]:
        return
    inner = {key: value for key, value in one_of[0].items() if key != "pattern"}
    if {"format", "minLength"} & inner.keys():
        one_of[0] = inner
    else:
        del schema["oneOf"]
        schema.update(inner)


class SessionScheme(OpenApiAuthenticationExtension):
    """The console's session, as drf-spectacular describes it, saying what else it needs."""

    target_class = "rest_framework.authentication.SessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": settings.SESSION_COOKIE_NAME,
            "description": "A signed-in session (the console's); POST, PUT, PATCH and DELETE "
            "also need the CSRF token in the X-CSRFToken header.",
        }


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema with the error responses each operation can return."""

    _direction: str | None = None

    def _map_basic_serializer(self, serializer, direction):
        outer, self._direction = self._direction, direction
        try:
            return super()._map_basic_serializer(serializer, direction)
        finally:
            self._direction = outer

    def _insert_field_validators(self, field, schema):
        super()._insert_field_validators(field, schema)
        if self._direction == "response" and SINGLE_LINE in getattr(field, "validators", []):
            # A rule on what a request may write, not a promise about what is read back:
            # rows written before it, or by the configuration file, may break it.
            _drop_pattern(schema)

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation["responses"]
        for status in self.error_statuses(operation):
            if status not in responses:
                responses[status] = self._error_response(status)
        return operation

    def error_statuses(self, operation: dict[str, Any]) -> list[str]:
        """The error statuses this operation can answer with, by what the view is."""
        statuses = []
        security = operation.get("security") or []
        if security and {} not in security:
            statuses += ["401", "403"]
        has_query = any(p.get("in") == "query" for p in operation.get("parameters", []))
        if has_query or "requestBody" in operation or self.method in UNSAFE_METHODS:
            statuses.append("400")
        if "{" in self.path:
            statuses.append("404")
        if self.writes_unique_fields():
            statuses.append("409")
        return statuses

    def writes_unique_fields(self) -> bool:
        """A create or update of a model with unique fields: a clash is a 409."""
        action = getattr(self.view, "action", None)
        if action not in ("create", "update", "partial_update"):
            return False
        model = getattr(self.view, "permission_model", None)
        return model is not None and bool(unique_fields(model))

    def _error_response(self, status: str) -> dict[str, str]:
        name, description = ERROR_RESPONSES[status]
        component = ResolvedComponent(
            name=name,
            type=ResolvedComponent.RESPONSE,
            object=name,
            schema={
                "description": description,
                "content": {JSON: {"schema": self._error_schema(status)}},
            },
        )
        self.registry.register_on_missing(component)
        return component.ref

    def _error_schema(self, status: str) -> dict[str, Any]:
        error = self.resolve_serializer(ErrorSerializer, "response").ref
        if status == "409":
            return self.resolve_serializer(ATPErrorSerializer, "response").ref
        if status != "400":
            return error
        validation = ResolvedComponent(
            name="ValidationError",
            type=ResolvedComponent.SCHEMA,
            object="ValidationError",
            schema=VALIDATION_ERROR_SCHEMA,
        )
        self.registry.register_on_missing(validation)
        return {"anyOf": [validation.ref, error]}


def filterset_parameters(filterset_class: type[FilterSet]) -> list[OpenApiParameter]:
    """Query parameters of a filterset, for a view that applies it itself (not a list view,
    whose filters drf-spectacular documents on its own)."""
    parameters = []
    for name, item in filterset_class.base_filters.items():
        kind: Any = OpenApiTypes.STR
        enum = None
        if isinstance(item, django_filters.IsoDateTimeFilter):
            kind = OpenApiTypes.DATETIME
        elif isinstance(item, django_filters.BooleanFilter):
            kind = OpenApiTypes.BOOL
        elif isinstance(item, django_filters.ChoiceFilter):
            enum = [value for value, _ in item.extra["choices"]]
        parameters.append(
            OpenApiParameter(
                name, kind, enum=enum, description=str(item.extra.get("help_text") or "")
            )
        )
    return parameters
