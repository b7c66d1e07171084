"""Every endpoint, page and method against every role: the statuses in permission_matrix/rows.py.

The rows are data; this file only runs them. Each role's world is built once and every row
runs inside a savepoint that is rolled back, so rows cannot disturb each other.

Coverage: every URL pattern of the site outside EXCLUDED needs a row for each of its methods,
so a page or endpoint added without its rows fails `test_every_endpoint_and_method_has_a_row`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.db import transaction
from django.shortcuts import resolve_url
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.permission_matrix.rows import ROWS, Row
from tests.permission_matrix.world import ROLES, build_world

pytestmark = pytest.mark.django_db

# Methods every endpoint answers like GET (HEAD) or describes itself with (OPTIONS).
IMPLIED = {"head", "options"}

# What the matrix does not cover, by route prefix: the Django admin (raw data, staff only),
# DRF's browsable-API login, static files, the probes and metrics (their own tests), and the
# sign-in and sign-out pages with the OpenID Connect start and callback (open by design).
EXCLUDED = (
    "admin/",
    "api-auth/",
    "static/",
    "healthz",
    "readyz",
    "metrics",
    "login/",
    "logout/",
    "oidc/",
)
# The same by URL name, wherever they are mounted.
EXCLUDED_NAMES = {
    "auth:login",
    "auth:login-code",
    "auth:logout",
    "auth:oidc-start",
    "auth:oidc-callback",
    "oidc_authentication_init",
    "oidc_authentication_callback",
    "oidc_logout",
}


def _function_methods(callback) -> set[str]:
    """The methods a function view allows: `require_http_methods`'s list, found in the closure
    of its wrapper (through `functools.wraps` chains), or GET."""
    function = callback
    while function is not None:
        code = getattr(function, "__code__", None)
        if code is not None and "request_method_list" in code.co_freevars:
            cell = function.__closure__[code.co_freevars.index("request_method_list")]
            return {method.lower() for method in cell.cell_contents}
        function = getattr(function, "__wrapped__", None)
    return {"get"}


def _methods(pattern: URLPattern) -> set[str]:
    callback = pattern.callback
    actions = getattr(callback, "actions", None)
    if actions is not None:  # a viewset route: method -> action
        return set(actions) - IMPLIED
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view_class is None:  # a function view: require_http_methods says, or it answers GET
        return _function_methods(callback) - IMPLIED
    return {m for m in view_class.http_method_names if hasattr(view_class, m)} - IMPLIED


def endpoints() -> set[tuple[str, str]]:
    """(namespaced URL name, method) of every view outside EXCLUDED."""
    found: set[tuple[str, str]] = set()

    def walk(patterns, route: str, namespace: str) -> None:
        for pattern in patterns:
            here = route + str(pattern.pattern).lstrip("^").replace("$", "")
            if here.startswith(EXCLUDED):
                continue
            if isinstance(pattern, URLResolver):
                inner = namespace
                if pattern.namespace:
                    inner = f"{namespace}{pattern.namespace}:"
                walk(pattern.url_patterns, here, inner)
                continue
            if namespace + (pattern.name or "") in EXCLUDED_NAMES:
                continue
            assert pattern.name, f"{here} has no URL name to give it rows by"
            for method in _methods(pattern):
                found.add((namespace + pattern.name, method))

    walk(get_resolver().url_patterns, "", "")
    return found


def test_every_endpoint_and_method_has_a_row():
    covered = {(r.url, r.method) for r in ROWS}
    missing = sorted(endpoints() - covered)
    assert not missing, f"endpoints without a row in tests/permission_matrix/: {missing}"
    stale = sorted(covered - endpoints())
    assert not stale, f"rows for endpoints that do not exist: {stale}"


def test_row_ids_are_unique():
    ids = [r.id for r in ROWS]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def test_the_columns_are_the_roles():
    assert ROLES == (
        "anonymous",
        "staff",
        "read_only",
        "tenant_member",
        "tenant_admin",
        "auditor",
        "cost_admin",
        "security_admin",
        "platform_admin",
        "manager",
        "super_admin",
        "superuser",
    )


def _call(row: Row, world, role: str, clients: dict[bool, Any] | None = None):
    kwargs = dict(row.value("kwargs", world, role) or {})
    if row.target is not None:
        kwargs[row.lookup] = row.value("target", world, role)
    path = reverse(row.url, kwargs=kwargs)
    console = not path.startswith("/api/")
    client = clients[console] if clients else world.client(role, console=console)
    data = row.value("data", world, role)
    query = row.value("query", world, role)
    headers = {"HTTP_HX_REQUEST": "true"} if row.htmx else {}
    if row.method == "get":
        return client.get(path, query or {}, **headers)
    if query:
        path = f"{path}?{urlencode(query, doseq=True)}"
    if not console:
        return getattr(client, row.method)(path, data or {}, format="json", **headers)
    if row.method == "post":  # a form, as a browser sends it
        return client.post(path, data or {}, format="multipart", **headers)
    return getattr(client, row.method)(
        path,
        urlencode(data or {}, doseq=True),
        content_type="application/x-www-form-urlencoded",
        **headers,
    )


def _body(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")[:200]
    return response.content.decode(errors="replace")[:200]


def _wrong_redirect(response, role: str) -> str | None:
    """A signed-out 302 must go to the sign-in page, saying where to come back to."""
    if response.status_code != 302 or role != "anonymous":
        return None
    location = response.get("Location", "")
    sign_in = resolve_url(settings.LOGIN_URL)
    if location.startswith(sign_in) and "next=" in location:
        return None
    return f"redirects to {location!r}, not to {sign_in}?next=..."


@pytest.mark.parametrize("role", ROLES)
def test_statuses(role):
    world = build_world()
    # Signed in once, before the rows: each row runs in a transaction rolled back after it.
    clients = {console: world.client(role, console=console) for console in (False, True)}
    wrong = []
    for matrix_row in ROWS:
        with transaction.atomic():
            response = _call(matrix_row, world, role, clients)
            expected = matrix_row.expect[role]
            body = _body(response)
            transaction.set_rollback(True)
        if response.status_code != expected:
            wrong.append(
                f"{matrix_row.label}: expected {expected}, got {response.status_code} {body}"
            )
        elif problem := _wrong_redirect(response, role):
            wrong.append(f"{matrix_row.label}: {problem}")
    assert not wrong, f"{role}:\n" + "\n".join(wrong)


def test_a_401_says_how_to_authenticate():
    world = build_world()
    response = world.client("anonymous").get(reverse("tenants-api:tenant-list"))
    assert response.status_code == 401
    assert re.match(r"Bearer", response["WWW-Authenticate"])


# --- the runner itself, on a stand-in site --------------------------------------------------


@pytest.mark.urls("tests.permission_matrix._sample_urls")
def test_coverage_takes_every_url_but_the_excluded_ones():
    assert endpoints() == {
        ("sample:page", "get"),
        ("sample:page", "post"),
        ("sample:elsewhere", "get"),
    }


@pytest.mark.urls("tests.permission_matrix._sample_urls")
def test_console_rows_are_called_as_a_browser_would():
    from tests.permission_matrix.rows import row

    world = build_world()
    statuses = " ".join(["302"] + ["200"] * (len(ROLES) - 1))
    page = row("page", "sample:page", "get", statuses, target=7)
    response = _call(page, world, "anonymous")
    assert response.status_code == 302 and _wrong_redirect(response, "anonymous") is None
    signed_in = _call(page, world, "manager")  # a session, not the manager's admin token
    assert signed_in.json() == {"user": "m-manager", "htmx": False, "session": True}

    htmx = row("page htmx", "sample:page", "get", statuses, target=7, htmx=True)
    assert _call(htmx, world, "anonymous").status_code == 401
    assert _call(htmx, world, "super_admin").json()["htmx"] is True

    form = row("form", "sample:page", "post", statuses, target=7, data={"name": "x"})
    assert _call(form, world, "auditor").json() == {"fields": {"name": "x"}}

    elsewhere = _call(row("away", "sample:elsewhere", "get", statuses), world, "anonymous")
    assert "not to" in _wrong_redirect(elsewhere, "anonymous")
