"""What the management API accepts: single-line names, storable text, dates in UTC.

Referenced by the REST_FRAMEWORK settings (parsers, filter backends), so this module must
not import rest_framework.views or rest_framework.generics, which read those settings.
"""

from __future__ import annotations

import datetime
from typing import Any

import django_filters
from django import forms
from django.core.validators import RegexValidator
from django.db import models
from rest_framework import exceptions, filters, parsers, serializers
from rest_framework.settings import api_settings

from atp_site.lib.identifiers import CONTROL_CLASS

# A single-line value (a name, an id) holds no control character (C0, DEL, C1) and no line
# or paragraph separator: they break logs, CSV cells and every system the value reaches.
# A regex, so the OpenAPI schema carries it as the field's `pattern` and generated clients
# and fuzzers know the rule. `+`: DRF never validates a blank value, and drf-spectacular
# documents a blank-allowed field as `oneOf` this pattern or the empty string.
SINGLE_LINE = RegexValidator(
    rf"^[^{CONTROL_CLASS}]+\Z",
    message="Control characters and line breaks are not allowed.",
    code="invalid",
)


class LineField(serializers.CharField):
    """A single-line text value, such as a name: no control characters or line breaks."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not self.read_only:
            self.validators.append(SINGLE_LINE)


class ModelSerializer(serializers.ModelSerializer):
    """ModelSerializer whose model CharFields (names, ids) are LineFields; a TextField
    (a description) may still hold line breaks."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: LineField,
    }


def _unstorable(value: str) -> str | None:
    """What makes `value` impossible to store as text, if anything: PostgreSQL takes no NUL
    in text or JSON, and a lone surrogate (JSON may spell one) has no UTF-8 encoding."""
    if "\x00" in value:
        return "Null characters are not allowed."
    for char in value:
        if "\ud800" <= char <= "\udfff":
            return f"Surrogate characters are not allowed: U+{ord(char):04X}."
    return None


def _check_storable(value: Any, path: str) -> tuple[str, str] | None:
    """(where, problem) for the first string in `value`, keys included, that cannot be
    stored; `where` is a dotted path, never the offending text itself."""
    if isinstance(value, str):
        problem = _unstorable(value)
        return (path, problem) if problem else None
    if isinstance(value, dict):
        items = [(str(key), item) for key, item in value.items()]
    elif isinstance(value, list | tuple):
        items = [(str(i), item) for i, item in enumerate(value)]
    else:
        return None
    for key, item in items:
        problem = _unstorable(key)
        if problem:
            return (f"{path}.*" if path else "*", problem)
        found = _check_storable(item, f"{path}.{key}" if path else key)
        if found:
            return found
    return None


class StorableTextMixin:
    """A parser refusing a body with a string the database cannot store, at any depth, with
    a 400 naming the top-level field and where in it (`*` stands for a key)."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        parsed = super().parse(stream, media_type, parser_context)  # type: ignore[misc]
        data = parsed.data if isinstance(parsed, parsers.DataAndFiles) else parsed
        if hasattr(data, "lists"):  # a QueryDict: every value of every key
            data = {key: v[0] if len(v) == 1 else v for key, v in data.lists()}
        found = _check_storable(data, "")
        if found:
            where, problem = found
            field = where.split(".")[0]
            if field == "*":
                field = api_settings.NON_FIELD_ERRORS_KEY
            message = problem if where == field else f"{problem[:-1]} (at {where})."
            raise exceptions.ValidationError({field: [message]})
        return parsed


class JSONParser(StorableTextMixin, parsers.JSONParser):
    pass


class FormParser(StorableTextMixin, parsers.FormParser):
    pass


class MultiPartParser(StorableTextMixin, parsers.MultiPartParser):
    pass


class UTCDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 datetime in UTC: any offset Python takes is accepted (PostgreSQL refuses
    offsets beyond 15:59 in a query), and one that leaves the calendar is a clear error."""

    default_error_messages = {"overflow": "Out of the supported range of dates."}

    def to_python(self, value: Any) -> datetime.datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(datetime.UTC)
        except OverflowError:
            raise forms.ValidationError(self.error_messages["overflow"], code="overflow") from None


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """django-filter's ISO 8601 filter, in UTC (UTCDateTimeField)."""

    field_class = UTCDateTimeField


class SearchFilter(filters.SearchFilter):
    """DRF's search filter, whose refusal of a term (a NUL, a lone surrogate) names the
    `search` parameter instead of being a bare list of messages."""

    def get_search_terms(self, request: Any) -> list[str]:
        try:
            return super().get_search_terms(request)
        except exceptions.ValidationError as exc:
            raise exceptions.ValidationError({self.search_param: exc.detail}) from exc
