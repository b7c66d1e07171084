"""Every endpoint and method against every role: the statuses in permission_matrix/rows.py.

The rows are data; this file only runs them. Each role's world is built once and every row
runs inside a savepoint that is rolled back, so rows cannot disturb each other.
"""

from __future__ import annotations

import re

import pytest
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.permission_matrix.rows import COVERED_PREFIXES, ROWS, Row
from tests.permission_matrix.world import ROLES, build_world

pytestmark = pytest.mark.django_db

# Methods every endpoint answers like GET (HEAD) or describes itself with (OPTIONS).
IMPLIED = {"head", "options"}


def _methods(pattern: URLPattern) -> set[str]:
    callback = pattern.callback
    actions = getattr(callback, "actions", None)
    if actions is not None:  # a viewset route: method -> action
        return set(actions) - IMPLIED
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    return {m for m in view_class.http_method_names if hasattr(view_class, m)} - IMPLIED


def endpoints() -> set[tuple[str, str]]:
    """(namespaced URL name, method) of every view under COVERED_PREFIXES."""
    found: set[tuple[str, str]] = set()

    def walk(patterns, route: str, namespace: str) -> None:
        for pattern in patterns:
            here = route + str(pattern.pattern).lstrip("^").replace("$", "")
            if isinstance(pattern, URLResolver):
                inner = namespace
                if pattern.namespace:
                    inner = f"{namespace}{pattern.namespace}:"
                walk(pattern.url_patterns, here, inner)
            elif here.startswith(COVERED_PREFIXES):
                assert pattern.name, f"{here} has no URL name to give it rows by"
                for method in _methods(pattern):
                    found.add((namespace + pattern.name, method))

    walk(get_resolver().url_patterns, "", "")
    return found


def test_every_endpoint_and_method_has_a_row():
    covered = {(r.url, r.method) for r in ROWS}
    missing = sorted(endpoints() - covered)
    assert not missing, f"endpoints without a row in tests/permission_matrix/rows.py: {missing}"
    stale = sorted(covered - endpoints())
    assert not stale, f"rows for endpoints that do not exist: {stale}"


def test_row_ids_are_unique():
    ids = [r.id for r in ROWS]
    assert len(ids) == len(set(ids))


def _call(row: Row, world, role: str):
    kwargs = {}
    if row.target is not None:
        kwargs[row.lookup] = row.value("target", world, role)
    path = reverse(row.url, kwargs=kwargs)
    client = world.client(role)
    data = row.value("data", world, role)
    query = row.value("query", world, role)
    if row.method == "get":
        return client.get(path, query or {})
    return getattr(client, row.method)(path, data or {}, format="json")


def _body(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")[:200]
    return response.content.decode(errors="replace")[:200]


@pytest.mark.parametrize("role", ROLES)
def test_statuses(role):
    world = build_world()
    wrong = []
    for matrix_row in ROWS:
        with transaction.atomic():
            response = _call(matrix_row, world, role)
            expected = matrix_row.expect[role]
            body = _body(response)
            transaction.set_rollback(True)
        if response.status_code != expected:
            wrong.append(
                f"{matrix_row.id} ({matrix_row.method.upper()} {matrix_row.url}): "
                f"expected {expected}, got {response.status_code} {body}"
            )
    assert not wrong, f"{role}:\n" + "\n".join(wrong)


def test_a_401_says_how_to_authenticate():
    world = build_world()
    response = world.client("anonymous").get(reverse("tenants-api:tenant-list"))
    assert response.status_code == 401
    assert re.match(r"Bearer", response["WWW-Authenticate"])
