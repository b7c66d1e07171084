"""Console pages of providers and models: permissions, forms, audited writes, connectivity."""

from __future__ import annotations

import socket

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.providers import services
from apps.providers.models import HealthCheck, ModelDeployment, Provider
from apps.routing.resilience.breaker import get_breakers
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.django_db

SECRET = "sk-console-secret-4c1d7e"

PROVIDER_ADMIN = (
    "providers.view_provider",
    "providers.add_provider",
    "providers.change_provider",
    "providers.delete_provider",
    "providers.view_modeldeployment",
    "providers.add_modeldeployment",
    "providers.change_modeldeployment",
    "providers.delete_modeldeployment",
    "providers.view_healthcheck",
    "routing.view_route",
)
READ_ONLY = (
    "providers.view_provider",
    "providers.view_modeldeployment",
    "providers.view_healthcheck",
)


@pytest.fixture
def platform_admin(user_factory, grant):
    """What the platform-admin role holds of providers (not the dedicated permission)."""
    return grant(user_factory(username="platform"), *PROVIDER_ADMIN)


@pytest.fixture
def reader(user_factory, grant):
    return grant(user_factory(username="reader"), *READ_ONLY)


@pytest.fixture
def provider(db):
    return services.provider_create(
        name="openai-eu", kind="openai", base_url="https://api.example.com/v1", api_key=SECRET
    )


@pytest.fixture
def deployment(provider):
    return services.deployment_create(
        provider=provider,
        public_name="gpt-4o-mini",
        upstream_model="gpt-4o-mini",
        input_price="0.15",
        output_price="0.6",
        cached_input_price="0.075",
        capabilities=["chat", "tools"],
    )


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def events(event_type: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=event_type).order_by("sequence"))


def page_urls(provider, deployment) -> dict[str, str]:
    return {
        "provider-list": reverse("providers:provider-list"),
        "provider-add": reverse("providers:provider-add"),
        "provider-detail": reverse("providers:provider-detail", args=[provider.pk]),
        "provider-edit": reverse("providers:provider-edit", args=[provider.pk]),
        "provider-toggle": reverse("providers:provider-toggle", args=[provider.pk]),
        "provider-delete": reverse("providers:provider-delete", args=[provider.pk]),
        "deployment-list": reverse("providers:deployment-list"),
        "deployment-add": reverse("providers:deployment-add"),
        "deployment-detail": reverse("providers:deployment-detail", args=[deployment.pk]),
        "deployment-edit": reverse("providers:deployment-edit", args=[deployment.pk]),
        "deployment-prices": reverse("providers:deployment-prices", args=[deployment.pk]),
        "deployment-toggle": reverse("providers:deployment-toggle", args=[deployment.pk]),
        "deployment-delete": reverse("providers:deployment-delete", args=[deployment.pk]),
        "deployment-reset-circuit": reverse(
            "providers:deployment-reset-circuit", args=[deployment.pk]
        ),
    }


READ_PAGES = {"provider-list", "provider-detail", "deployment-list", "deployment-detail"}


# --- who may open what ----------------------------------------------------------------------


def test_every_page_renders_for_a_platform_admin_and_never_shows_the_key(
    platform_admin, provider, deployment
):
    client = signed_in(platform_admin)
    for name, url in page_urls(provider, deployment).items():
        response = client.get(url)
        assert response.status_code == 200, name
        assert SECRET.encode() not in response.content, name
        # The confirmations also come as dialogs for htmx.
        if name.endswith(("toggle", "delete", "circuit")):
            fragment = client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="console-modal-body")
            assert fragment.status_code == 200 and b"<html" not in fragment.content


def test_a_reader_sees_lists_and_details_and_nothing_else(reader, provider, deployment):
    client = signed_in(reader)
    for name, url in page_urls(provider, deployment).items():
        expected = 200 if name in READ_PAGES else 403
        assert client.get(url).status_code == expected, name
    detail = client.get(page_urls(provider, deployment)["provider-detail"]).content.decode()
    assert "Test connectivity" not in detail and "Edit" not in detail
    for action in ("provider-toggle", "provider-delete", "deployment-reset-circuit"):
        assert client.post(page_urls(provider, deployment)[action]).status_code == 403
    test_url = reverse("providers:provider-test", args=[provider.pk])
    assert client.post(test_url).status_code == 403
    assert not HealthCheck.objects.exists()


def test_without_any_permission_every_page_is_403(staff_user, provider, deployment):
    client = signed_in(staff_user)
    for name, url in page_urls(provider, deployment).items():
        assert client.get(url).status_code == 403, name


def test_signed_out_pages_redirect_and_writes_get_401(client: Client, provider, deployment):
    for name, url in page_urls(provider, deployment).items():
        response = client.get(url)
        assert response.status_code == 302, name
        assert response["Location"].startswith(settings.LOGIN_URL)
    for url in (
        reverse("providers:provider-test", args=[provider.pk]),
        reverse("providers:deployment-reset-circuit", args=[deployment.pk]),
        reverse("providers:provider-add"),
    ):
        assert client.post(url).status_code == 401
    assert Provider.objects.count() == 1


def test_unknown_objects_are_404(platform_admin):
    client = signed_in(platform_admin)
    missing = "00000000-0000-0000-0000-000000000000"
    for name in ("provider-detail", "provider-edit", "deployment-detail", "deployment-toggle"):
        assert client.get(reverse(f"providers:{name}", args=[missing])).status_code == 404


# --- lists ----------------------------------------------------------------------------------


def test_model_list_filters_by_provider_capability_and_enabled(
    platform_admin, provider, deployment, deployment_factory, provider_factory
):
    other = provider_factory(name="local")
    embed = deployment_factory(
        provider=other, public_name="embed-small", capabilities=["embeddings"], enabled=False
    )
    client = signed_in(platform_admin)
    url = reverse("providers:deployment-list")

    def names(**query) -> list[str]:
        response = client.get(url, query)
        assert response.status_code == 200
        return [row.public_name for row in response.context["page"].rows]

    assert names() == ["embed-small", "gpt-4o-mini"]
    assert names(provider=str(provider.pk)) == ["gpt-4o-mini"]
    assert names(capability="embeddings") == ["embed-small"]
    assert names(capability="tools") == ["gpt-4o-mini"]
    assert names(enabled="false") == [embed.public_name]
    assert names(q="embed") == ["embed-small"]
    assert names(sort="-input_price")[0] in ("embed-small", "gpt-4o-mini")
    page = client.get(url).content.decode()
    assert "$0.15" in page and "chat, tools" in page
    assert client.get(url, {"provider": "not-a-uuid"}).status_code == 200


def test_provider_list_shows_health_and_model_count(platform_admin, provider, deployment):
    HealthCheck.objects.create(provider=provider, status="up", latency_ms=42)
    client = signed_in(platform_admin)
    response = client.get(reverse("providers:provider-list"), {"health": "up"})
    assert [p.name for p in response.context["page"].rows] == ["openai-eu"]
    row = response.context["page"].rows[0]
    assert row.deployment_count == 1 and row.health_latency_ms == 42
    none = client.get(reverse("providers:provider-list"), {"health": "down"})
    assert list(none.context["page"].rows) == []


# --- forms ----------------------------------------------------------------------------------


def provider_post(**overrides) -> dict[str, str]:
    data = {
        "name": "anthropic-main",
        "kind": "anthropic",
        "base_url": "https://api.anthropic.example/v1",
        "api_key": "",
        "api_key_env": "",
        "region": "eu",
        "connect_timeout": "2.5",
        "first_byte_timeout": "",
        "total_timeout": "",
        "options": "",
        "enabled": "on",
    }
    data.update(overrides)
    return data


def test_create_provider_stores_the_key_encrypted_and_audits(platform_admin):
    client = signed_in(platform_admin)
    response = client.post(
        reverse("providers:provider-add"), provider_post(api_key=SECRET, options='{"a": 1}')
    )
    assert response.status_code == 303
    created = Provider.objects.get(name="anthropic-main")
    assert response["Location"] == reverse("providers:provider-detail", args=[created.pk])
    assert created.has_stored_api_key and SECRET not in created.api_key_encrypted
    assert created.connect_timeout == 2.5 and created.options == {"a": 1}
    (event,) = events("provider.created")
    assert event.resource_id == str(created.pk) and SECRET not in str(event.after)
    assert "platform" in event.actor
    page = client.get(response["Location"]).content.decode()
    assert "stored encrypted" in page and SECRET not in page


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"base_url": "not a url"}, "base_url", "Enter a valid URL"),
        ({"base_url": ""}, "base_url", "base URL is required"),
        ({"api_key_env": "DATABASE_URL"}, "api_key_env", "may not hold a provider key"),
        ({"api_key_env": "HOME"}, "api_key_env", "may not hold a provider key"),
        ({"connect_timeout": "-1"}, "connect_timeout", "greater than or equal to 0.01"),
        ({"options": "[1, 2]"}, "options", "JSON object"),
        ({"options": "{bad"}, "options", "Not valid JSON"),
        ({"name": "has spaces"}, "name", "letters"),
        ({"api_key": SECRET, "api_key_env": "OPENAI_API_KEY"}, "api_key_env", "not both"),
    ],
)
def test_provider_form_errors_show_next_to_the_field(admin_user, overrides, field, message):
    # The superuser holds the dedicated permission, so the variable field is editable.
    client = signed_in(admin_user)
    url = reverse("providers:provider-add")
    response = client.post(url, provider_post(**overrides))
    assert response.status_code == 200
    form = response.context["form"]
    assert field in form.errors, form.errors
    assert message.lower() in " ".join(form.errors[field]).lower()
    assert f'id="id_{field}_error"' in response.content.decode()
    assert SECRET not in response.content.decode()
    htmx = client.post(url, provider_post(**overrides), HTTP_HX_REQUEST="true")
    assert htmx.status_code == 422 and b"<html" not in htmx.content
    assert not Provider.objects.filter(name="anthropic-main").exists()


def test_name_taken_is_an_error_on_the_name(admin_user, provider):
    response = signed_in(admin_user).post(
        reverse("providers:provider-add"), provider_post(name=provider.name)
    )
    assert response.status_code == 200 and "name" in response.context["form"].errors


def test_credential_source_needs_the_dedicated_permission(platform_admin, provider, grant):
    client = signed_in(platform_admin)
    # Creating with a variable: the field is read-only without the permission.
    form_page = client.get(reverse("providers:provider-add")).content.decode()
    assert 'name="api_key_env"' in form_page and "disabled" in form_page
    client.post(reverse("providers:provider-add"), provider_post(api_key_env="OPENAI_API_KEY"))
    assert Provider.objects.get(name="anthropic-main").api_key_env == ""

    # Editing: base URL and credential fields are read-only; posting them changes nothing.
    edit = reverse("providers:provider-edit", args=[provider.pk])
    response = client.post(
        edit,
        provider_post(
            name=provider.name,
            kind="openai",
            base_url="https://attacker.example/v1",
            api_key_env="OPENAI_API_KEY",
            region="us",
        ),
    )
    assert response.status_code == 303
    provider.refresh_from_db()
    assert provider.base_url == "https://api.example.com/v1" and provider.region == "us"
    assert provider.api_key_env == "" and provider.has_stored_api_key

    # With the permission the same change goes through, audited.
    grant(platform_admin, "providers.change_provider_credentials")
    client = signed_in(platform_admin)
    response = client.post(
        edit,
        provider_post(
            name=provider.name,
            kind="openai",
            base_url="https://api2.example.com/v1",
            api_key_env="OPENAI_API_KEY",
            region="us",
        ),
    )
    assert response.status_code == 303
    provider.refresh_from_db()
    assert provider.base_url == "https://api2.example.com/v1"
    assert provider.api_key_env == "OPENAI_API_KEY" and not provider.has_stored_api_key
    changed = events("provider.updated")[-1].data["changed"]
    assert "base_url" in changed and "api_key_env" in changed


def test_edit_keeps_the_stored_key_unless_replaced(admin_user, provider):
    client = signed_in(admin_user)
    edit = reverse("providers:provider-edit", args=[provider.pk])
    page = client.get(edit).content.decode()
    assert SECRET not in page and "Leave blank to keep the stored key" in page
    stored = provider.api_key_encrypted
    client.post(edit, provider_post(name=provider.name, kind="openai", base_url=provider.base_url))
    provider.refresh_from_db()
    assert provider.api_key_encrypted == stored
    client.post(
        edit,
        provider_post(
            name=provider.name, kind="openai", base_url=provider.base_url, api_key="sk-new-1234"
        ),
    )
    provider.refresh_from_db()
    assert provider.api_key_encrypted != stored and provider.has_stored_api_key


def deployment_post(provider_obj, **overrides) -> dict[str, str]:
    data = {
        "provider": str(provider_obj.pk),
        "public_name": "claude-small",
        "upstream_model": "claude-3-5-haiku",
        "aliases": "haiku, small",
        "input_price": "0.8",
        "output_price": "4",
        "cached_input_price": "0.08",
        "cache_write_price": "",
        "reasoning_price": "",
        "context_window": "200000",
        "max_output_tokens": "",
        "capabilities": ["chat", "vision"],
        "quality_score": "0.7",
        "region": "",
        "weight": "100",
        "enabled": "on",
        "listed": "on",
    }
    data.update(overrides)
    return data


def test_create_and_edit_a_model_through_the_services(platform_admin, provider):
    client = signed_in(platform_admin)
    form = client.get(reverse("providers:deployment-add"), {"provider": str(provider.pk)})
    assert form.context["form"]["provider"].initial == provider.pk
    response = client.post(reverse("providers:deployment-add"), deployment_post(provider))
    assert response.status_code == 303
    created = ModelDeployment.objects.get(public_name="claude-small")
    assert created.aliases == ["haiku", "small"] and created.capabilities == ["chat", "vision"]
    assert str(created.cached_input_price) == "0.080000"
    assert events("deployment.created")[0].resource_id == str(created.pk)

    edit = reverse("providers:deployment-edit", args=[created.pk])
    page = client.get(edit).content.decode()
    assert 'value="vision"' in page and "checked" in page
    response = client.post(
        edit, deployment_post(provider, output_price="5", capabilities=["chat"], listed="")
    )
    assert response.status_code == 303
    created.refresh_from_db()
    assert str(created.output_price) == "5.000000" and created.capabilities == ["chat"]
    assert not created.listed
    assert set(events("deployment.updated")[-1].data["changed"]) >= {
        "output_price",
        "capabilities",
        "listed",
    }
    detail = client.get(reverse("providers:deployment-detail", args=[created.pk])).content
    assert b"$5.00" in detail and b"$0.08" in detail and b"haiku" in detail


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"input_price": "-1"}, "input_price"),
        ({"cached_input_price": "-0.01"}, "cached_input_price"),
        ({"output_price": "abc"}, "output_price"),
        ({"quality_score": "1.5"}, "quality_score"),
        ({"context_window": "0"}, "context_window"),
        ({"capabilities": ["telepathy"]}, "capabilities"),
        ({"public_name": "gpt-4o-mini"}, "public_name"),  # taken on this provider
    ],
)
def test_model_form_errors_show_next_to_the_field(
    platform_admin, provider, deployment, overrides, field
):
    client = signed_in(platform_admin)
    response = client.post(
        reverse("providers:deployment-add"), deployment_post(provider, **overrides)
    )
    assert response.status_code == 200
    assert field in response.context["form"].errors, response.context["form"].errors
    assert f'id="id_{field}_error"' in response.content.decode()
    assert ModelDeployment.objects.count() == 1


def test_model_form_offers_only_visible_providers_and_refuses_others(platform_admin, provider):
    client = signed_in(platform_admin)
    response = client.post(
        reverse("providers:deployment-add"),
        deployment_post(provider, provider="00000000-0000-0000-0000-000000000000"),
    )
    assert response.status_code == 200 and "provider" in response.context["form"].errors
    bad = client.get(reverse("providers:deployment-add"), {"provider": "junk"})
    assert bad.status_code == 200


# --- actions --------------------------------------------------------------------------------


def test_enable_disable_and_delete_are_confirmed_and_audited(platform_admin, provider, deployment):
    client = signed_in(platform_admin)
    toggle = reverse("providers:provider-toggle", args=[provider.pk])
    confirm = client.get(toggle).content.decode()
    assert "Disable provider openai-eu?" in confirm and 'method="post"' in confirm
    assert client.post(toggle).status_code == 303
    provider.refresh_from_db()
    assert not provider.enabled
    assert events("provider.updated")[-1].data["changed"] == ["enabled"]
    htmx = client.post(toggle, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 204 and htmx["HX-Redirect"].endswith(f"/providers/{provider.pk}/")
    provider.refresh_from_db()
    assert provider.enabled

    model_toggle = reverse("providers:deployment-toggle", args=[deployment.pk])
    assert client.post(model_toggle).status_code == 303
    deployment.refresh_from_db()
    assert not deployment.enabled and events("deployment.updated")

    delete = reverse("providers:provider-delete", args=[provider.pk])
    confirm = client.get(delete).content.decode()
    assert "its 1 model (gpt-4o-mini)" in confirm and "health history" in confirm
    response = client.post(delete)
    assert response.status_code == 303 and response["Location"] == reverse(
        "providers:provider-list"
    )
    assert not Provider.objects.exists() and not ModelDeployment.objects.exists()
    (event,) = events("provider.deleted")
    assert event.data["deleted_deployments"] == [str(deployment.pk)]


def test_delete_a_model(platform_admin, deployment):
    client = signed_in(platform_admin)
    response = client.post(reverse("providers:deployment-delete", args=[deployment.pk]))
    assert response.status_code == 303
    assert not ModelDeployment.objects.exists() and events("deployment.deleted")


def test_reset_circuit_closes_the_shared_breaker_and_audits(platform_admin, deployment):
    breakers = get_breakers()
    key = str(deployment.pk)
    breakers.reset_sync(key)
    for _ in range(breakers.config.min_requests):
        breakers.record_sync(key, ok=False)
    assert breakers.state_of(key).state == "open"
    client = signed_in(platform_admin)
    detail = client.get(reverse("providers:deployment-detail", args=[deployment.pk]))
    assert b"Open" in detail.content and b"Reset circuit" in detail.content
    provider_page = client.get(reverse("providers:provider-detail", args=[deployment.provider_id]))
    assert b"badge bad" in provider_page.content
    response = client.post(reverse("providers:deployment-reset-circuit", args=[deployment.pk]))
    assert response.status_code == 303
    assert breakers.state_of(key).state == "closed"
    (event,) = events("deployment.circuit_reset")
    assert event.resource_id == key and event.data["before"]["state"] == "open"


def test_routes_using_a_model_are_listed(platform_admin, deployment):
    from apps.routing.models import Route

    Route.objects.create(name="cheap", candidates=["gpt-4o-mini"])
    Route.objects.create(name="strong", candidates=["other"], fallbacks=["gpt-4o-mini"])
    Route.objects.create(name="unrelated", candidates=["other"])
    page = signed_in(platform_admin).get(
        reverse("providers:deployment-detail", args=[deployment.pk])
    )
    routes = {r["route"].name: r["how"] for r in page.context["routes"]}
    assert routes == {"cheap": ["candidate"], "strong": ["fallback"]}


# --- connectivity ---------------------------------------------------------------------------


@pytest.fixture
def fake_openai():
    fake = FakeOpenAI(api_key=SECRET, models=["gpt-4o-mini"])
    fake.start_in_thread()
    yield fake
    fake.stop()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connectivity_ok_against_a_real_upstream_is_shown_and_recorded(platform_admin, fake_openai):
    provider = services.provider_create(
        name="fake", kind="openai", base_url=fake_openai.base_url, api_key=SECRET
    )
    services.deployment_create(
        provider=provider,
        public_name="gpt-4o-mini",
        upstream_model="gpt-4o-mini",
        input_price=1,
        output_price=2,
    )
    client = signed_in(platform_admin)
    url = reverse("providers:provider-test", args=[provider.pk])
    response = client.post(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="connectivity-result")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Connection OK" in html and " ms." in html and "<html" not in html
    (check,) = HealthCheck.objects.filter(provider=provider)
    assert check.status == "up" and check.latency_ms is not None
    assert f"in {check.latency_ms} ms" in html
    # The health history below is refreshed from the same response (out of band).
    assert 'id="health-history-region" hx-swap-oob="true"' in html
    (event,) = events("provider.tested")
    assert event.outcome == "success" and event.data["status"] == "up"
    detail = client.get(reverse("providers:provider-detail", args=[provider.pk])).content
    assert b"Health history" in detail and str(check.latency_ms).encode() in detail


def test_connectivity_failure_masks_the_key_the_upstream_quotes(platform_admin, fake_openai):
    wrong = "sk-wrong-key-quoted-back-9f2a"
    provider = services.provider_create(
        name="fake", kind="openai", base_url=fake_openai.base_url, api_key=wrong
    )
    client = signed_in(platform_admin)
    url = reverse("providers:provider-test", args=[provider.pk])
    html = client.post(url, HTTP_HX_REQUEST="true").content.decode()
    assert "Connection failed" in html and "rejected" in html and "HTTP 401" in html
    assert wrong not in html
    check = HealthCheck.objects.get(provider=provider)
    assert check.status == "down" and wrong not in check.error
    assert wrong not in str(events("provider.tested")[0].data)
    page = client.get(reverse("providers:provider-detail", args=[provider.pk])).content.decode()
    assert wrong not in page and "HTTP 401" in page


def test_an_upstream_message_quoting_the_key_or_a_query_is_masked():
    text = "Incorrect API key provided: sk-abc-123. See https://x.example/v1/m?key=sk-abc-123&a=b"
    masked = services.mask_credential(text, "sk-abc-123")
    assert "sk-abc-123" not in masked and "provided: ***" in masked
    assert services.mask_credential("https://g.example/v1?key=AIzaSECRET", "") == (
        "https://g.example/v1?key=***"
    )


def test_connectivity_against_a_closed_port_shows_the_failure(platform_admin):
    provider = services.provider_create(
        name="gone",
        kind="openai_compatible",
        base_url=f"http://127.0.0.1:{closed_port()}/v1",
        api_key=SECRET,
        connect_timeout=2,
    )
    client = signed_in(platform_admin)
    url = reverse("providers:provider-test", args=[provider.pk])
    html = client.post(url, HTTP_HX_REQUEST="true").content.decode()
    assert "Connection failed" in html and SECRET not in html
    check = HealthCheck.objects.get(provider=provider)
    assert check.status == "down" and check.error
    assert events("provider.tested")[0].outcome == "failure"
    # Without htmx: back to the page with the result as a message.
    plain = client.post(url, follow=True)
    assert plain.status_code == 200 and b"Connection failed" in plain.content
    assert HealthCheck.objects.filter(provider=provider).count() == 2


def test_connectivity_of_a_provider_with_nothing_to_call(platform_admin):
    provider = services.provider_create(
        name="claude", kind="anthropic", base_url="http://127.0.0.1:9/v1", api_key=SECRET
    )
    html = (
        signed_in(platform_admin)
        .post(reverse("providers:provider-test", args=[provider.pk]), HTTP_HX_REQUEST="true")
        .content.decode()
    )
    assert "Add a model" in html and not HealthCheck.objects.exists()


@pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (breakers shared by Redis)")
def test_circuit_state_is_what_every_process_sees(platform_admin, deployment):
    """A breaker opened by another process (its own RedisBreakers) shows open here, and the
    reset closes it for that process too."""
    from apps.routing.resilience.breaker import RedisBreakers

    other_process = RedisBreakers()
    key = str(deployment.pk)
    other_process.reset_sync(key)
    for _ in range(other_process.config.min_requests):
        other_process.record_sync(key, ok=False)
    client = signed_in(platform_admin)
    page = client.get(reverse("providers:deployment-detail", args=[deployment.pk]))
    assert page.context["circuit"]["state"] == "open"
    client.post(reverse("providers:deployment-reset-circuit", args=[deployment.pk]))
    assert other_process.state_of(key).state == "closed"


def test_prices_alone_with_the_prices_permission(user_factory, grant, deployment):
    cost_admin = grant(
        user_factory(username="cost"),
        "providers.view_provider",
        "providers.view_modeldeployment",
        "providers.change_deployment_prices",
    )
    client = signed_in(cost_admin)
    detail = client.get(reverse("providers:deployment-detail", args=[deployment.pk]))
    assert b"Edit prices" in detail.content and b"Disable" not in detail.content
    assert client.get(reverse("providers:deployment-edit", args=[deployment.pk])).status_code == 403
    url = reverse("providers:deployment-prices", args=[deployment.pk])
    bad = client.post(url, {"input_price": "-1", "output_price": "1"})
    assert bad.status_code == 200 and "input_price" in bad.context["form"].errors
    assert b'id="id_input_price_error"' in bad.content
    done = client.post(url, {"input_price": "0.2", "output_price": "0.8", "reasoning_price": "1.5"})
    assert done.status_code == 303
    deployment.refresh_from_db()
    assert str(deployment.input_price) == "0.200000"
    assert str(deployment.reasoning_price) == "1.500000"
    assert deployment.cached_input_price is None  # blank clears it
    assert set(events("deployment.updated")[-1].data["changed"]) >= {
        "input_price",
        "output_price",
        "reasoning_price",
    }
    # A reader without it may not.
    reader = grant(user_factory(username="r2"), *READ_ONLY)
    assert signed_in(reader).get(url).status_code == 403


def test_editing_to_a_taken_name_is_an_error_on_the_name(admin_user, provider, provider_factory):
    provider_factory(name="taken")
    edit = reverse("providers:provider-edit", args=[provider.pk])
    response = signed_in(admin_user).post(
        edit, provider_post(name="taken", kind="openai", base_url=provider.base_url)
    )
    assert response.status_code == 200 and "name" in response.context["form"].errors
    provider.refresh_from_db()
    assert provider.name == "openai-eu"


def test_a_refused_credential_change_is_shown_on_the_field(platform_admin, provider, monkeypatch):
    """Should the services refuse a credential change the form let through, the refusal is
    shown next to the field, not as an error page."""
    from django.core.exceptions import PermissionDenied

    def refuse(**kwargs):
        raise PermissionDenied("Changing a provider's base_url needs the permission X.")

    monkeypatch.setattr(services, "provider_create", refuse)
    response = signed_in(platform_admin).post(reverse("providers:provider-add"), provider_post())
    assert response.status_code == 200
    assert "needs the permission" in " ".join(response.context["form"].errors["base_url"])
