"""Writes to routes: validated, audited, bumping the configuration version on commit.

The console, the Django admin, the REST API and the config file all change routes through
these functions, so every change is checked the same way and recorded with before and
after. The data plane reads routes from its snapshot (apps.routing.snapshot), rebuilt when
the configuration version moves.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.audit.snapshots import audit_change, snapshot_of, stored_snapshot
from apps.routing.models import Route
from atp_site.lib import config_version

# Every field a caller may set; the rest (id, timestamps) are the model's.
ROUTE_FIELDS = frozenset(
    {
        "name",
        "description",
        "enabled",
        "candidates",
        "candidate_filter",
        "strategy",
        "tier",
        "fallbacks",
        "retry",
        "timeouts",
        "exploration",
        "exploration_rate",
        "challenger",
        "challenger_share",
        "cache_ttl_seconds",
        "semantic_cache",
        "semantic_threshold",
    }
)

# Route names as callers write them in `model`: `auto`, `atp/fast`, `team-a/coding`.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]*\Z")

FILTER_LISTS = ("capabilities", "regions", "providers")
FILTER_NUMBERS = ("min_quality", "max_input_price", "max_output_price")
FILTER_KEYS = frozenset(FILTER_LISTS + FILTER_NUMBERS)

# Retry settings with their accepted ranges (inclusive; jitter must stay below 1, since a
# jitter of 100% could wait nothing at all).
RETRY_RANGES: dict[str, tuple[float, float]] = {
    "max_attempts": (1, 10),
    "initial_backoff_ms": (0, 60_000),
    "multiplier": (1, 10),
    "max_backoff_ms": (0, 300_000),
    "jitter": (0, 0.99),
}
TIMEOUT_KEYS = ("connect", "first_byte", "total")
MAX_TIMEOUT_SECONDS = 3600


def _is_number(value: Any) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(float(value))
    )


def _names(value: Any, field: str) -> list[str]:
    """A list of non-empty strings, stripped, repeats dropped, order kept (None: empty)."""
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(
        isinstance(item, str) and item.strip() for item in value
    ):
        raise ValidationError({field: "Must be a list of model names (non-empty strings)."})
    return list(dict.fromkeys(item.strip() for item in value))


def _unknown(value: Mapping, allowed: frozenset[str] | tuple[str, ...], field: str) -> None:
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ValidationError(
            {field: f"Unknown key {unknown[0]!r}; expected some of {', '.join(sorted(allowed))}."}
        )


def _candidate_filter(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError({"candidate_filter": "Must be an object."})
    _unknown(value, FILTER_KEYS, "candidate_filter")
    cleaned: dict[str, Any] = {}
    for key, item in value.items():
        if key in FILTER_LISTS:
            if not isinstance(item, list | tuple) or not all(
                isinstance(v, str) and v.strip() for v in item
            ):
                raise ValidationError({"candidate_filter": f"{key}: must be a list of strings."})
            cleaned[key] = list(dict.fromkeys(v.strip() for v in item))
        elif key == "min_quality":
            if not _is_number(item) or not 0 <= item <= 1:
                raise ValidationError({"candidate_filter": "min_quality: must be between 0 and 1."})
            cleaned[key] = item
        else:
            if not _is_number(item) or item < 0:
                raise ValidationError({"candidate_filter": f"{key}: must be a number >= 0."})
            cleaned[key] = item
    return cleaned


def _retry(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError({"retry": "Must be an object."})
    _unknown(value, tuple(RETRY_RANGES), "retry")
    for key, item in value.items():
        low, high = RETRY_RANGES[key]
        if not _is_number(item) or not low <= item <= high:
            raise ValidationError({"retry": f"{key}: must be a number from {low} to {high}."})
        if key == "max_attempts" and item != int(item):
            raise ValidationError({"retry": "max_attempts: must be a whole number."})
    initial, cap = value.get("initial_backoff_ms"), value.get("max_backoff_ms")
    if initial is not None and cap is not None and cap < initial:
        raise ValidationError({"retry": "max_backoff_ms: must not be below initial_backoff_ms."})
    return {k: (int(v) if k == "max_attempts" else v) for k, v in value.items()}


def _timeouts(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError({"timeouts": "Must be an object."})
    _unknown(value, TIMEOUT_KEYS, "timeouts")
    for key, item in value.items():
        if not _is_number(item) or not 0 < item <= MAX_TIMEOUT_SECONDS:
            raise ValidationError(
                {"timeouts": f"{key}: must be a number of seconds > 0 and <= 3600."}
            )
    return dict(value)


def _fraction(route: Route, field: str) -> None:
    value = getattr(route, field)
    if not _is_number(value) or not 0 <= value <= 1:
        raise ValidationError({field: "Must be a number between 0 and 1."})


def route_clean(route: Route) -> None:
    """Normalise and check `route` in place; raises ValidationError naming the field.

    The JSON fields are checked key by key (the model cannot: it stores any JSON), then
    `full_clean` checks the rest (choices, name uniqueness, lengths).
    """
    name = route.name.strip() if isinstance(route.name, str) else ""
    if not NAME_RE.match(name):
        raise ValidationError(
            {"name": "Use letters, digits and . _ : / - (starting with a letter or digit)."}
        )
    route.name = name
    route.candidates = _names(route.candidates, "candidates")
    route.fallbacks = _names(route.fallbacks, "fallbacks")
    route.candidate_filter = _candidate_filter(route.candidate_filter)
    route.retry = _retry(route.retry)
    route.timeouts = _timeouts(route.timeouts)
    for field in ("exploration_rate", "challenger_share", "semantic_threshold"):
        _fraction(route, field)
    route.challenger = (route.challenger or "").strip()
    if route.challenger_share > 0 and not route.challenger:
        raise ValidationError({"challenger": "Name the challenger model to mirror traffic to."})
    route.full_clean()


def _check_fields(fields: Mapping[str, Any], function: str) -> None:
    unknown = set(fields) - ROUTE_FIELDS
    if unknown:
        raise TypeError(f"{function}() got unexpected fields: {sorted(unknown)}")


def _bump_on_commit() -> None:
    transaction.on_commit(config_version.bump)


@transaction.atomic
def route_create(*, name: str, **fields: Any) -> Route:
    """Create a route; `fields` are any other of ROUTE_FIELDS."""
    _check_fields(fields, "route_create")
    route = Route(name=name, **fields)
    route_clean(route)
    route.save()
    audit_change(event_type="route.created", resource_id=route.pk, after=snapshot_of(route))
    _bump_on_commit()
    return route


@transaction.atomic
def route_update(*, route: Route, **fields: Any) -> Route:
    """Change any of ROUTE_FIELDS; an update that changes nothing records nothing."""
    _check_fields(fields, "route_update")
    before = stored_snapshot(route)
    for field, value in fields.items():
        setattr(route, field, value)
    route_clean(route)
    route.save()
    event = audit_change(
        event_type="route.updated", resource_id=route.pk, before=before, after=snapshot_of(route)
    )
    if event is not None:
        _bump_on_commit()
    return route


@transaction.atomic
def route_delete(*, route: Route) -> None:
    route_id, before = route.pk, snapshot_of(route)
    route.delete()
    audit_change(event_type="route.deleted", resource_id=route_id, before=before)
    _bump_on_commit()
