"""Console pages of routes and the request log: permissions, tenant scoping, filters,
the route editor through the audited services, the "try it" box and stored bodies."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm

from apps.audit.bodies import exchange_row
from apps.audit.models import AuditEvent, StoredExchange
from apps.routing.models import BanditArm, RequestLog, Route
from apps.routing.route_services import route_create
from apps.tenants.permissions import VIEW_TENANT, VIEW_TENANT_BODIES
from apps.tenants.services import tenant_create
from tests.conftest import DeploymentFactory, ProviderFactory, UserFactory, grant_permissions

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


def _log(tenant, request_id, *, minutes_ago=0, **fields):
    fields.setdefault("status", RequestLog.Status.SUCCESS)
    fields.setdefault("http_status", 200)
    return RequestLog.objects.create(
        request_id=request_id,
        endpoint="chat.completions",
        tenant=tenant,
        created_at=timezone.now() - timedelta(minutes=minutes_ago),
        **fields,
    )


@pytest.fixture
def world(db):
    acme = tenant_create(slug="acme", name="Acme")
    globex = tenant_create(slug="globex", name="Globex")
    provider = ProviderFactory(name="sim")
    DeploymentFactory(provider=provider, public_name="model-a", quality_score=0.9)
    DeploymentFactory(provider=provider, public_name="model-b", quality_score=0.5)
    route = route_create(name="team/coding", candidates=["model-a", "model-b"])
    decision = {
        "route": "team/coding",
        "strategy": "score",
        "tier": "balanced",
        "model": "model-a",
        "confidence": 0.83,
        "reasoning": ["model-a scores highest"],
        "ranking": [
            {
                "model": "model-a",
                "provider": "sim",
                "score": 0.91,
                "rank": 1,
                "chosen": True,
                "confidence": 0.83,
                "estimated_cost_usd": 0.0001,
                "estimated_latency_ms": 120.0,
            },
            {
                "model": "model-b",
                "provider": "sim",
                "score": 0.4,
                "rank": 2,
                "chosen": False,
                "confidence": 0.17,
                "estimated_cost_usd": 0.00005,
                "estimated_latency_ms": 90.0,
            },
        ],
    }
    logs = {
        "a1": _log(
            acme,
            "req-acme-1",
            model="model-a",
            route="team/coding",
            cost_usd=Decimal("0.002"),
            decision=decision,
            latency_ms=150,
            ttft_ms=40,
            end_user="alice",
            minutes_ago=5,
        ),
        "a2": _log(
            acme,
            "req-acme-2",
            model="model-b",
            status=RequestLog.Status.ERROR,
            http_status=502,
            cost_usd=Decimal("0"),
            error_type="upstream_error",
            minutes_ago=120,
        ),
        "b1": _log(globex, "req-globex-1", model="model-a", cost_usd=Decimal("0.5"), minutes_ago=1),
    }
    admin = UserFactory(username="root", is_superuser=True, is_staff=True)
    viewer = grant_permissions(
        UserFactory(username="viewer"), "routing.view_route", "routing.view_requestlog"
    )
    editor = grant_permissions(
        UserFactory(username="editor"),
        "routing.view_route",
        "routing.add_route",
        "routing.change_route",
        "routing.delete_route",
    )
    member = UserFactory(username="member")
    assign_perm(VIEW_TENANT, member, acme)
    staff = UserFactory(username="staff", is_staff=True)
    return {
        "acme": acme,
        "globex": globex,
        "route": route,
        "logs": logs,
        "admin": admin,
        "viewer": viewer,
        "editor": editor,
        "member": member,
        "staff": staff,
    }


def _as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _rows(response) -> set[str]:
    """The request ids of the table's rows (the page's own, not the echoed search term)."""
    return {row.request_id for row in response.context["page"].rows}


# --- signed out, no permission ------------------------------------------------------------


def test_signed_out_pages_redirect_and_htmx_or_post_get_401(client: Client, world):
    route = world["route"]
    log = world["logs"]["a1"]
    for url in (
        reverse("routing:route-list"),
        reverse("routing:route-detail", args=[route.pk]),
        reverse("routing:route-add"),
        reverse("routing:route-edit", args=[route.pk]),
        reverse("routing:requestlog-list"),
        reverse("routing:requestlog-detail", args=[log.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(settings.LOGIN_URL)
        assert client.get(url, **HX).status_code == 401
    assert client.post(reverse("routing:route-try"), {"route": "auto"}).status_code == 401
    assert client.post(reverse("routing:route-delete", args=[route.pk])).status_code == 401
    assert Route.objects.filter(pk=route.pk).exists()


def test_without_the_permission_every_page_is_403(world):
    client = _as(world["staff"])
    route, log = world["route"], world["logs"]["a1"]
    for url in (
        reverse("routing:route-list"),
        reverse("routing:route-detail", args=[route.pk]),
        reverse("routing:route-builtin", args=["auto"]),
        reverse("routing:route-add"),
        reverse("routing:route-edit", args=[route.pk]),
        reverse("routing:route-delete", args=[route.pk]),
        reverse("routing:requestlog-list"),
        reverse("routing:requestlog-detail", args=[log.pk]),
    ):
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("routing:route-try"), {"route": "auto"}).status_code == 403


def test_a_viewer_reads_but_may_not_change_routes(world):
    client = _as(world["viewer"])
    route = world["route"]
    page = client.get(reverse("routing:route-detail", args=[route.pk]))
    assert page.status_code == 200
    assert reverse("routing:route-edit", args=[route.pk]) not in page.content.decode()
    assert client.get(reverse("routing:route-edit", args=[route.pk])).status_code == 403
    assert client.post(reverse("routing:route-delete", args=[route.pk])).status_code == 403
    assert client.get(reverse("routing:route-add")).status_code == 403
    assert Route.objects.filter(pk=route.pk).exists()


# --- tenant scoping -------------------------------------------------------------------------


def test_a_tenant_member_sees_their_tenants_requests_only(world):
    client = _as(world["member"])
    response = client.get(reverse("routing:requestlog-list"))
    assert response.status_code == 200
    assert _rows(response) == {"req-acme-1", "req-acme-2"}
    detail = client.get(reverse("routing:requestlog-detail", args=[world["logs"]["a1"].pk]))
    assert detail.status_code == 200
    globex = client.get(reverse("routing:requestlog-detail", args=[world["logs"]["b1"].pk]))
    assert globex.status_code == 404
    # Naming another tenant in the filter finds nothing of theirs.
    other = client.get(reverse("routing:requestlog-list"), {"tenant": world["globex"].pk})
    assert _rows(other) == set()
    # Searching for the other tenant's request id finds nothing either.
    assert _rows(client.get(reverse("routing:requestlog-list"), {"q": "req-globex-1"})) == set()
    # Routes are not a tenant's: a member may not open them.
    assert client.get(reverse("routing:route-list")).status_code == 403


def test_global_viewer_sees_every_tenant(world):
    response = _as(world["viewer"]).get(reverse("routing:requestlog-list"))
    assert _rows(response) == {"req-acme-1", "req-acme-2", "req-globex-1"}


# --- filters and search ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "error"}, {"req-acme-2"}),
        ({"model": "model-a"}, {"req-acme-1", "req-globex-1"}),
        ({"route": "team/coding"}, {"req-acme-1"}),
        ({"min_cost": "0.001"}, {"req-acme-1", "req-globex-1"}),
        ({"max_cost": "0.01"}, {"req-acme-1", "req-acme-2"}),
        ({"min_cost": "0.001", "max_cost": "0.01"}, {"req-acme-1"}),
        ({"q": "model-b"}, {"req-acme-2"}),
        ({"q": "req-globex-1"}, {"req-globex-1"}),
        ({"q": "alice"}, {"req-acme-1"}),
        ({"q": "model"}, set()),  # exact matches only
    ],
)
def test_filters_and_search_return_the_right_rows(world, query, expected):
    response = _as(world["viewer"]).get(reverse("routing:requestlog-list"), query)
    assert response.status_code == 200
    assert _rows(response) == expected


def test_tenant_key_and_time_filters(world, api_key_factory):
    client = _as(world["viewer"])
    url = reverse("routing:requestlog-list")
    assert _rows(client.get(url, {"tenant": world["acme"].pk})) == {"req-acme-1", "req-acme-2"}
    key, _ = api_key_factory(tenant=world["acme"], name="k1")
    RequestLog.objects.filter(request_id="req-acme-2").update(api_key=key)
    # Keys are offered to those who may see them.
    assert _rows(_as(world["admin"]).get(url, {"api_key": key.pk})) == {"req-acme-2"}
    since = (timezone.now() - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    assert _rows(client.get(url, {"since": since})) == {"req-acme-1", "req-globex-1"}
    assert _rows(client.get(url, {"until": since})) == {"req-acme-2"}


def test_bad_filter_values_are_shown_not_500(world):
    client = _as(world["viewer"])
    url = reverse("routing:requestlog-list")
    for query in (
        {"since": "yesterday"},
        {"min_cost": "lots"},
        {"tenant": "nope"},
        {"status": "weird"},
        {"cursor": "%%%"},
        {"q": "x" * 5000},
    ):
        response = client.get(url, query)
        assert response.status_code == 200, query
    assert b"field-error" in client.get(url, {"since": "yesterday"}).content


def test_the_table_fragment_and_keyset_pages(world):
    client = _as(world["viewer"])
    for n in range(60):
        _log(world["acme"], f"bulk-{n:02d}", model="model-c", minutes_ago=200 + n)
    url = reverse("routing:requestlog-list")
    first = client.get(
        url, {"model": "model-c"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="console-table"
    )
    assert first.status_code == 200
    text = first.content.decode()
    assert "<html" not in text and "bulk-00" in text and "bulk-59" not in text
    page = first.context["page"]
    assert page.next_cursor
    second = client.get(url, {"model": "model-c", "cursor": page.next_cursor})
    assert "bulk-59" in second.content.decode() and "bulk-00" not in second.content.decode()
    back = client.get(url, {"model": "model-c", "before": second.context["page"].prev_cursor})
    assert "bulk-00" in back.content.decode()


# --- request detail -------------------------------------------------------------------------


def test_request_detail_shows_the_decision(world):
    response = _as(world["viewer"]).get(
        reverse("routing:requestlog-detail", args=[world["logs"]["a1"].pk])
    )
    text = response.content.decode()
    assert response.status_code == 200
    for needle in ("model-a scores highest", "0.83", "model-b", "150 ms", "40 ms", "alice"):
        assert needle in text


def test_request_detail_lists_the_attempts_before_a_fallback(world):
    log = _log(
        world["acme"],
        "req-fell-back",
        model="model-b",
        decision={
            "model": "model-a",
            "attempts": [
                {
                    "deployment": "model-a",
                    "provider": "sim",
                    "try": 1,
                    "status": 502,
                    "code": "upstream_error",
                    "error": "Bad gateway",
                    "latency_ms": 31,
                },
                {"deployment": "model-a", "provider": "sim", "skipped": "circuit_open"},
            ],
        },
    )
    text = _as(world["viewer"]).get(reverse("routing:requestlog-detail", args=[log.pk]))
    text = text.content.decode()
    assert "try 1: HTTP 502 upstream_error Bad gateway" in " ".join(text.split())
    assert "skipped (circuit_open)" in text and "31 ms" in text


def _exchange(tenant, request_id):
    return StoredExchange.objects.create(
        **exchange_row(
            {
                "request_id": request_id,
                "tenant_id": tenant.pk,
                "endpoint": "chat.completions",
                "model": "model-a",
                "http_status": 200,
            },
            {"messages": [{"role": "user", "content": "secret prompt text"}]},
            {"choices": [{"message": {"content": "the answer"}}]},
        )
    )


def test_stored_bodies_only_with_the_body_permission_and_each_reveal_is_audited(world):
    _exchange(world["acme"], "req-acme-1")
    log = world["logs"]["a1"]
    detail = reverse("routing:requestlog-detail", args=[log.pk])
    body = reverse("routing:requestlog-body", args=[log.pk])
    member = _as(world["member"])
    page = member.get(detail).content.decode()
    assert "secret prompt text" not in page and body not in page
    assert member.post(body).status_code == 403
    assert not AuditEvent.objects.filter(event_type="exchange.viewed").exists()

    reader = UserFactory(username="reader")
    assign_perm(VIEW_TENANT, reader, world["acme"])
    assign_perm(VIEW_TENANT_BODIES, reader, world["acme"])
    client = _as(reader)
    assert body in client.get(detail).content.decode()
    shown = client.post(body, **HX)
    assert shown.status_code == 200
    assert "secret prompt text" in shown.content.decode()
    event = AuditEvent.objects.get(event_type="exchange.viewed")
    assert event.actor == "reader" and event.source == AuditEvent.Source.CONSOLE
    # Another tenant's request: 404, nothing revealed.
    _exchange(world["globex"], "req-globex-1")
    other = reverse("routing:requestlog-body", args=[world["logs"]["b1"].pk])
    assert client.post(other).status_code == 404
    assert AuditEvent.objects.filter(event_type="exchange.viewed").count() == 1


# --- routes ---------------------------------------------------------------------------------


def test_route_list_shows_own_and_built_in_routes(world):
    text = _as(world["viewer"]).get(reverse("routing:route-list")).content.decode()
    assert "team/coding" in text and "atp/fast" in text and "model-a, model-b" in text


def test_route_detail_shows_what_it_learned(world):
    BanditArm.objects.create(
        route="team/coding", cluster=3, model="model-a", pulls=12, reward_sum=9.0, failures=1
    )
    text = (
        _as(world["viewer"])
        .get(reverse("routing:route-detail", args=[world["route"].pk]))
        .content.decode()
    )
    assert "Cluster 3" in text and "model-a" in text and ">12<" in text


def test_builtin_route_page(world):
    response = _as(world["viewer"]).get(reverse("routing:route-builtin", args=["atp/fast"]))
    assert response.status_code == 200 and "Try it" in response.content.decode()
    assert (
        _as(world["viewer"]).get(reverse("routing:route-builtin", args=["nope"])).status_code == 404
    )


def _try(client, **data):
    data.setdefault("route", "team/coding")
    return client.post(reverse("routing:route-try"), data, **HX)


def test_try_it_returns_the_ranking(world):
    response = _try(_as(world["viewer"]), prompt="Write a haiku", hints='{"quality": "high"}')
    assert response.status_code == 200
    result = response.context["result"]
    models = [entry["model"] for entry in result["recommendations"]]
    assert set(models) == {"model-a", "model-b"}
    entry = result["recommendations"][0]
    for field in ("score", "confidence", "reasoning", "explored"):
        assert field in entry
    assert "chosen" in response.content.decode()


def test_try_it_as_a_key_that_may_use_one_model(world, api_key_factory):
    key, _ = api_key_factory(tenant=world["acme"], allowed_models=["team/coding", "model-b"])
    response = _try(_as(world["admin"]), prompt="hi", key=str(key.pk))
    assert response.status_code == 200
    assert [e["model"] for e in response.context["result"]["recommendations"]] == ["model-b"]


@pytest.mark.parametrize(
    ("hints", "message"),
    [
        ('{"colour": "blue"}', "not a hint ATP knows"),
        ('{"quality": "supreme"}', "must be one of fast, balanced or high"),
        ("{not json", "Not valid JSON"),
        ("[1, 2]", "Must be a JSON object"),
    ],
)
def test_try_it_bad_hints_show_next_to_the_field(world, hints, message):
    response = _try(_as(world["viewer"]), prompt="hello", hints=hints)
    assert response.status_code == 422
    form = response.context["try_form"]
    assert message in " ".join(form.errors["hints"])
    assert 'id="id_hints_error"' in response.content.decode()


def test_try_it_other_bad_input_is_a_clear_error(world):
    client = _as(world["viewer"])
    assert _try(client, prompt="").status_code == 422
    missing = _try(client, route="no/such", prompt="hello")
    assert missing.status_code == 422 and "not enabled" in missing.content.decode()
    bad_key = _try(client, prompt="hi", key="not-a-key")
    assert bad_key.status_code == 422 and "key" in bad_key.context["try_form"].errors
    plain = client.post(reverse("routing:route-try"), {"route": "team/coding", "prompt": ""})
    assert plain.status_code == 400


def test_route_create_edit_disable_delete_through_the_services(world):
    client = _as(world["editor"])
    created = client.post(
        reverse("routing:route-add"),
        {
            "name": "team/new",
            "candidates": "model-a\nmodel-b",
            "strategy": "cheapest",
            "tier": "",
            "retry": '{"max_attempts": 3}',
            "timeouts": "",
            "candidate_filter": "",
            "fallbacks": "",
            "exploration_rate": "0.1",
            "challenger_share": "0",
            "cache_ttl_seconds": "0",
            "semantic_threshold": "0.92",
            "enabled": "on",
        },
        **HX,
    )
    assert created.status_code == 204, created.content
    route = Route.objects.get(name="team/new")
    assert created["HX-Redirect"] == reverse("routing:route-detail", args=[route.pk])
    assert route.candidates == ["model-a", "model-b"] and route.retry == {"max_attempts": 3}
    assert AuditEvent.objects.filter(event_type="route.created", resource_id=str(route.pk)).exists()

    edit = reverse("routing:route-edit", args=[route.pk])
    form = client.get(edit).context["form"]
    data = {name: form.initial.get(name, "") for name in form.fields}
    data = {k: ("on" if v is True else v) for k, v in data.items() if v is not False}
    data["fallbacks"] = "model-b"
    assert client.post(edit, data, **HX).status_code == 204
    route.refresh_from_db()
    assert route.fallbacks == ["model-b"]
    assert AuditEvent.objects.filter(event_type="route.updated").count() == 1

    toggle = reverse("routing:route-toggle", args=[route.pk])
    assert "Disable" in client.get(toggle, **HX).content.decode()
    assert client.post(toggle, **HX).status_code == 204
    route.refresh_from_db()
    assert route.enabled is False

    delete = reverse("routing:route-delete", args=[route.pk])
    assert client.post(delete, **HX)["HX-Redirect"] == reverse("routing:route-list")
    assert not Route.objects.filter(pk=route.pk).exists()
    assert AuditEvent.objects.filter(event_type="route.deleted").exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "bad name!", "letters"),
        ("name", "team/coding", "already"),
        ("retry", '{"max_attempts": 99}', "max_attempts"),
        ("retry", "{oops", "Not valid JSON"),
        ("candidate_filter", '{"colour": "red"}', "Unknown key"),
        ("timeouts", '{"total": -1}', "seconds"),
        ("challenger_share", "0.5", "challenger"),
        ("exploration_rate", "2", "between 0 and 1"),
    ],
)
def test_route_editor_errors_sit_next_to_the_field(world, field, value, message):
    data = {
        "name": "team/x",
        "exploration_rate": "0.1",
        "challenger_share": "0",
        "cache_ttl_seconds": "0",
        "semantic_threshold": "0.92",
        field: value,
    }
    response = _as(world["editor"]).post(reverse("routing:route-add"), data, **HX)
    assert response.status_code == 422
    errors = response.context["form"].errors
    target = "challenger" if field == "challenger_share" else field
    assert message.lower() in " ".join(errors.get(target, [])).lower(), errors
    assert not Route.objects.filter(name="team/x").exists()


def test_big_filtered_pages_are_estimated_on_postgresql(world, monkeypatch):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("planner estimates are PostgreSQL's; SQLite counts (capped)")
    monkeypatch.setattr("apps.routing.tables.EXACT_BELOW", 0)
    response = _as(world["viewer"]).get(reverse("routing:requestlog-list"), {"model": "model-a"})
    page = response.context["page"]
    assert page.total_is_estimate and page.total >= 1
    assert _rows(response) == {"req-acme-1", "req-globex-1"}


def test_a_tenant_members_total_is_their_own_never_the_tables_size(world, monkeypatch):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the table-size estimate is PostgreSQL's; SQLite always counts")
    # Any table counts as big: the unscoped total is the table's estimated size.
    monkeypatch.setattr("atp_site.console.tables.COUNT_LIMIT", -2)
    viewer = _as(world["viewer"]).get(reverse("routing:requestlog-list"))
    assert viewer.context["page"].total_is_estimate
    member = _as(world["member"]).get(reverse("routing:requestlog-list"))
    page = member.context["page"]
    assert not page.total_is_estimate and page.total == 2
