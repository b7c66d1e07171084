"""Console pages of tenants and API keys: who may see and do what, the secret shown once,
rotation and revocation taking effect, tenant isolation, and form errors next to fields."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.routing.models import RequestLog
from apps.tenants import roles
from apps.tenants.models import ApiKey, Tenant
from apps.tenants.services import api_key_create, tenant_create
from tests.routing.conftest import call, flush_logs, gateway  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

CHAT = {"model": "sim-fast", "messages": [{"role": "user", "content": "Hello there"}]}
SECRET = re.compile(r'<code id="secret-value" class="mono">([^<]+)</code>')


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def with_role(username: str, role: str):
    user = get_user_model().objects.create_user(username)
    roles.user_roles_set(user=user, roles=[role], actor=None, source="cli")
    return user


def tenant_admin_of(tenant: Tenant, username: str = "acme-admin"):
    user = get_user_model().objects.create_user(username)
    roles.tenant_role_set(
        user=user, tenant=tenant, role=roles.TENANT_ADMIN, actor=None, source="cli"
    )
    return user


def tenant_member_of(tenant: Tenant, username: str = "acme-member"):
    user = get_user_model().objects.create_user(username)
    roles.tenant_role_set(
        user=user, tenant=tenant, role=roles.TENANT_MEMBER, actor=None, source="cli"
    )
    return user


@pytest.fixture
def two_tenants():
    acme = tenant_create(slug="acme", name="Acme")
    globex = tenant_create(slug="globex", name="Globex")
    key_a, _ = api_key_create(tenant=acme, name="acme-key")
    key_b, _ = api_key_create(tenant=globex, name="globex-key")
    return acme, globex, key_a, key_b


def secret_of(response) -> str:
    found = SECRET.search(response.content.decode())
    assert found, response.content.decode()[:2000]
    return found.group(1)


# --- tenants --------------------------------------------------------------------------------


def test_tenant_list_shows_keys_and_the_last_24_hours(admin_user, two_tenants):
    acme, globex, key_a, _ = two_tenants
    RequestLog.objects.create(
        request_id="r1",
        endpoint="chat.completions",
        tenant=acme,
        api_key=key_a,
        status="success",
        http_status=200,
        cost_usd=Decimal("0.25"),
    )
    RequestLog.objects.create(
        request_id="old",
        endpoint="chat.completions",
        tenant=acme,
        status="success",
        http_status=200,
        cost_usd=Decimal("5"),
        created_at=timezone.now() - timedelta(days=2),
    )
    response = signed_in(admin_user).get("/tenants/")
    assert response.status_code == 200
    rows = {t.slug: t for t in response.context["page"].rows}
    assert set(rows) == {"acme", "globex"}
    assert rows["acme"].live_keys == 1
    assert rows["acme"].usage.requests == 1 and rows["acme"].usage.cost_usd == Decimal("0.25")
    assert rows["globex"].usage.requests == 0
    assert b"$0.25" in response.content


def test_tenant_admin_sees_only_their_tenant(two_tenants):
    acme, globex, _, _ = two_tenants
    client = signed_in(tenant_admin_of(acme))
    listed = client.get("/tenants/")
    assert [t.slug for t in listed.context["page"].rows] == ["acme"]
    assert client.get(f"/tenants/{acme.pk}/").status_code == 200
    assert client.get(f"/tenants/{globex.pk}/").status_code == 404
    assert client.get(f"/tenants/{globex.pk}/edit/").status_code == 404
    assert client.post(f"/tenants/{globex.pk}/edit/", {"name": "x"}).status_code == 404
    assert client.get("/tenants/add/").status_code == 403


def test_tenant_detail_lists_keys_members_and_usage(admin_user, two_tenants):
    acme, _, key_a, _ = two_tenants
    tenant_member_of(acme, "bob")
    response = signed_in(admin_user).get(f"/tenants/{acme.pk}/")
    assert response.status_code == 200
    assert list(response.context["keys"]) == [key_a]
    assert [(u.username, r) for u, r in response.context["members"]] == [
        ("bob", roles.TENANT_MEMBER)
    ]
    assert b"acme-key" in response.content and b"Requests, 24 h" in response.content


def test_tenant_member_sees_the_tenant_but_not_its_members_nor_edits(two_tenants):
    acme, _, _, _ = two_tenants
    client = signed_in(tenant_member_of(acme))
    response = client.get(f"/tenants/{acme.pk}/")
    assert response.status_code == 200 and "members" not in response.context
    assert client.get(f"/tenants/{acme.pk}/edit/").status_code == 403


def test_create_and_edit_a_tenant_through_the_audited_service(admin_user):
    client = signed_in(admin_user)
    response = client.post(
        "/tenants/add/",
        {"name": "Initech", "slug": "initech", "is_active": "on", "cost_mode": "balanced"},
    )
    tenant = Tenant.objects.get(slug="initech")
    assert response.status_code == 303 and response["Location"] == f"/tenants/{tenant.pk}/"
    assert AuditEvent.objects.filter(event_type="tenant.created", resource_id=str(tenant.pk))
    response = client.post(
        f"/tenants/{tenant.pk}/edit/",
        {
            "name": "Initech Ltd",
            "slug": "initech",
            "cost_mode": "quality_first",
            "preferred_regions": "eu, us-east",
        },
    )
    assert response.status_code == 303
    tenant.refresh_from_db()
    assert tenant.name == "Initech Ltd" and tenant.preferred_regions == ["eu", "us-east"]
    assert not tenant.is_active
    assert AuditEvent.objects.filter(event_type="tenant.updated", resource_id=str(tenant.pk))


def test_tenant_form_errors_are_next_to_their_fields(admin_user, two_tenants):
    client = signed_in(admin_user)
    response = client.post("/tenants/add/", {"name": "Bad", "slug": "no spaces", "cost_mode": "x"})
    assert response.status_code == 200
    form = response.context["form"]
    assert "slug" in form.errors and "cost_mode" in form.errors
    html = response.content.decode()
    assert 'id="id_slug_error"' in html and 'id="id_cost_mode_error"' in html
    # The service's own check (a slug in use) lands on its field too.
    response = client.post(
        "/tenants/add/", {"name": "Dup", "slug": "acme", "cost_mode": "balanced"}
    )
    assert response.status_code == 200 and "slug" in response.context["form"].errors
    assert 'id="id_slug_error"' in response.content.decode()
    htmx = client.post("/tenants/add/", {"name": "", "slug": "ok-slug"}, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 422 and b"<html" not in htmx.content
    assert 'id="id_name_error"' in htmx.content.decode()


# --- API keys -------------------------------------------------------------------------------


def test_key_list_filters_and_search(admin_user, two_tenants):
    acme, globex, key_a, key_b = two_tenants
    revoked, _ = api_key_create(tenant=acme, name="old-key")
    revoked.revoked_at = timezone.now()
    revoked.save()
    expiring, _ = api_key_create(
        tenant=globex, name="soon", expires_at=timezone.now() + timedelta(days=3)
    )
    client = signed_in(admin_user)

    def names(query: str) -> set[str]:
        response = client.get("/keys/" + query)
        assert response.status_code == 200
        return {k.name for k in response.context["page"].rows}

    assert names("") == {"acme-key", "globex-key", "old-key", "soon"}
    assert names("?tenant=acme") == {"acme-key", "old-key"}
    assert names("?status=revoked") == {"old-key"}
    assert names("?status=active") == {"acme-key", "globex-key", "soon"}
    assert names("?expiry=7d") == {"soon"}
    assert names("?q=glob") == {"globex-key"}
    assert names(f"?q={key_a.prefix}") == {"acme-key"}
    assert names("?status=bogus") == set()  # an invalid filter matches nothing, no 500


def test_tenant_admin_lists_only_their_keys_and_cannot_reach_others(two_tenants):
    acme, globex, key_a, key_b = two_tenants
    client = signed_in(tenant_admin_of(acme))
    listed = client.get("/keys/")
    assert [k.name for k in listed.context["page"].rows] == ["acme-key"]
    # The other tenant in a filter is not a valid choice: nothing is listed.
    assert list(client.get(f"/keys/?tenant={globex.slug}").context["page"].rows) == []
    for path in ("", "edit/", "rotate/", "revoke/"):
        assert client.get(f"/keys/{key_b.pk}/{path}").status_code == 404, path
    for path in ("edit/", "rotate/", "revoke/"):
        assert client.post(f"/keys/{key_b.pk}/{path}", {"name": "x"}).status_code == 404
    key_b.refresh_from_db()
    assert key_b.revoked_at is None and key_b.name == "globex-key"
    # Nor create a key for it.
    response = client.post("/keys/add/", {"tenant": "globex", "name": "sneaky"})
    assert response.status_code == 200 and "tenant" in response.context["form"].errors
    assert not ApiKey.objects.filter(name="sneaky").exists()
    # Its own keys: yes.
    assert client.get(f"/keys/{key_a.pk}/").status_code == 200
    assert client.post(f"/keys/{key_a.pk}/revoke/").status_code == 303


def test_viewer_sees_keys_but_may_not_change_them(two_tenants):
    _, _, key_a, _ = two_tenants
    client = signed_in(with_role("ro", roles.READ_ONLY))
    page = client.get(f"/keys/{key_a.pk}/")
    assert page.status_code == 200
    assert not page.context["may_revoke"] and b"/revoke/" not in page.content
    assert client.get("/keys/add/").status_code == 403
    assert client.get(f"/keys/{key_a.pk}/revoke/").status_code == 403
    assert client.post(f"/keys/{key_a.pk}/revoke/").status_code == 403
    assert client.post(f"/keys/{key_a.pk}/rotate/").status_code == 403
    assert client.post(f"/keys/{key_a.pk}/edit/", {"name": "x"}).status_code == 403


def test_signed_out_pages_redirect_and_posts_get_401(two_tenants):
    _, _, key_a, _ = two_tenants
    client = Client()
    page = client.get("/keys/")
    assert page.status_code == 302 and page["Location"].startswith(settings.LOGIN_URL)
    assert client.post("/keys/add/", {"name": "x"}).status_code == 401
    assert client.post(f"/keys/{key_a.pk}/revoke/").status_code == 401


def test_created_key_is_shown_once_never_stored_and_works_on_v1(
    client: Client,
    admin_user,
    gateway,  # noqa: F811
):
    client.force_login(admin_user)
    response = client.post(
        "/keys/add/",
        {"tenant": "acme", "name": "console-key", "allowed_models": "sim-fast, fast"},
    )
    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]
    plaintext = secret_of(response)
    html = response.content.decode()
    assert 'class="secret-once"' in html and 'data-copy="#secret-value"' in html
    key = ApiKey.objects.get(name="console-key")
    assert key.allowed_models == ["sim-fast", "fast"] and key.created_by == admin_user
    assert plaintext.startswith(key.prefix)

    # Nowhere else: not in a cookie, the session (messages included), the database or a page.
    assert all(plaintext not in morsel.value for morsel in response.cookies.values())
    assert all(plaintext not in morsel.value for morsel in client.cookies.values())
    for session in Session.objects.all():
        assert plaintext not in str(session.get_decoded())
    assert plaintext not in str(list(ApiKey.objects.values()))
    for path in (f"/keys/{key.pk}/", "/keys/", "/keys/add/", f"/tenants/{key.tenant_id}/"):
        again = client.get(path)
        assert again.status_code == 200
        assert plaintext not in again.content.decode(), path
    assert key.prefix in client.get(f"/keys/{key.pk}/").content.decode()
    assert AuditEvent.objects.filter(event_type="api_key.created", resource_id=str(key.pk))

    # It authenticates on /v1, and the request is counted in the key's usage.
    answer = async_to_sync(call)("POST", "/v1/chat/completions", json=CHAT, key=plaintext)
    assert answer.status == 200, answer.body
    async_to_sync(flush_logs)()
    detail = client.get(f"/keys/{key.pk}/")
    day = detail.context["usage"][0][1]
    assert day.requests == 1 and day.tokens > 0 and day.cost_usd > 0
    assert detail.context["last_used"] is not None


def test_htmx_create_swaps_the_form_for_the_secret(client: Client, admin_user, two_tenants):
    client.force_login(admin_user)
    response = client.post(
        "/keys/add/", {"tenant": "acme", "name": "via-htmx"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 201 and b"<html" not in response.content
    assert b'id="console-form"' in response.content and b"secret-once" in response.content


def test_rotate_shows_the_new_key_once_and_the_old_one_stops(
    client: Client,
    admin_user,
    gateway,  # noqa: F811
):
    client.force_login(admin_user)
    old = gateway.api_key
    assert async_to_sync(call)("GET", "/v1/models", key=gateway.key).status == 200
    confirm = client.get(f"/keys/{old.pk}/rotate/", HTTP_HX_REQUEST="true")
    assert confirm.status_code == 200 and b"<form" in confirm.content
    response = client.post(f"/keys/{old.pk}/rotate/")
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    plaintext = secret_of(response)
    old.refresh_from_db()
    assert old.revoked_at is not None
    new = ApiKey.objects.get(tenant=gateway.tenant, name=old.name, revoked_at__isnull=True)
    assert plaintext.startswith(new.prefix)
    assert AuditEvent.objects.filter(event_type="api_key.rotated", resource_id=str(old.pk))
    assert async_to_sync(call)("GET", "/v1/models", key=gateway.key).status == 401
    assert async_to_sync(call)("GET", "/v1/models", key=plaintext).status == 200
    assert plaintext not in client.get(f"/keys/{new.pk}/").content.decode()
    # A revoked key cannot be rotated again: a message, no 500.
    again = client.post(f"/keys/{old.pk}/rotate/", follow=True)
    assert again.status_code == 200 and b"cannot be rotated" in again.content


def test_revoke_takes_effect_and_is_audited(client: Client, admin_user, gateway):  # noqa: F811
    client.force_login(admin_user)
    key = gateway.api_key
    response = client.post(f"/keys/{key.pk}/revoke/")
    assert response.status_code == 303 and response["Location"] == f"/keys/{key.pk}/"
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditEvent.objects.filter(event_type="api_key.revoked", resource_id=str(key.pk))
    answer = async_to_sync(call)("GET", "/v1/models", key=gateway.key)
    assert answer.status == 401
    page = client.get(f"/keys/{key.pk}/")
    assert page.context["status"] == "revoked" and not page.context["may_revoke"]


def test_edit_allowed_models_and_expiry(admin_user, two_tenants):
    _, _, key_a, _ = two_tenants
    client = signed_in(admin_user)
    expires = (timezone.now() + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        f"/keys/{key_a.pk}/edit/",
        {"name": "acme-key", "allowed_models": "gpt-4o mini", "expires_at": expires},
    )
    assert response.status_code == 303
    key_a.refresh_from_db()
    assert key_a.allowed_models == ["gpt-4o", "mini"] and key_a.expires_at is not None
    assert AuditEvent.objects.filter(event_type="api_key.updated", resource_id=str(key_a.pk))


def test_key_form_errors_are_next_to_their_fields(admin_user, two_tenants):
    client = signed_in(admin_user)
    past = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = client.post("/keys/add/", {"tenant": "acme", "name": "acme-key", "expires_at": past})
    assert response.status_code == 200
    assert "expires_at" in response.context["form"].errors
    response = client.post("/keys/add/", {"tenant": "acme", "name": "acme-key"})
    assert "name" in response.context["form"].errors  # a live key has this name
    assert 'id="id_name_error"' in response.content.decode()
    response = client.post("/keys/add/", {"tenant": "nope", "name": "n\x00ul"})
    errors = response.context["form"].errors
    assert "tenant" in errors and "name" in errors
    assert ApiKey.objects.count() == 2


def test_revoked_key_cannot_be_edited(admin_user, two_tenants):
    _, _, key_a, _ = two_tenants
    client = signed_in(admin_user)
    client.post(f"/keys/{key_a.pk}/revoke/")
    response = client.post(f"/keys/{key_a.pk}/edit/", {"name": "renamed"})
    assert response.status_code == 200
    assert b"A revoked key cannot be changed." in response.content


def test_unknown_ids_are_404_not_500(admin_user):
    client = signed_in(admin_user)
    assert client.get("/keys/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert client.get("/keys/not-a-uuid/").status_code == 404
    assert client.get("/tenants/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_without_any_key_permission_pages_are_403_not_404(staff_user, two_tenants):
    acme, _, key_a, _ = two_tenants
    client = signed_in(staff_user)
    for path in (
        "/tenants/",
        f"/tenants/{acme.pk}/",
        f"/tenants/{acme.pk}/edit/",
        "/keys/",
        f"/keys/{key_a.pk}/",
        f"/keys/{key_a.pk}/revoke/",
    ):
        assert client.get(path).status_code == 403, path
    assert client.post(f"/keys/{key_a.pk}/rotate/").status_code == 403


# --- projects -------------------------------------------------------------------------------


def test_a_tenant_admin_makes_a_project_and_gives_it_a_key(two_tenants):
    from django.urls import reverse

    from apps.tenants.models import Project

    acme, globex, key_a, _ = two_tenants
    theirs = Project.objects.create(tenant=globex, slug="secret-plans")
    admin = signed_in(tenant_admin_of(acme))
    made = admin.post(reverse("tenants:project-add"), {"tenant": "acme", "slug": "web", "name": ""})
    assert made.status_code == 303
    project = Project.objects.get(tenant=acme, slug="web")
    assert project.name == "web"
    detail = admin.get(reverse("tenants:project-detail", args=[project.pk])).content.decode()
    assert "No key belongs to this project yet" in detail
    assert admin.get(reverse("tenants:project-detail", args=[theirs.pk])).status_code == 404

    # The key form offers the viewer's projects only; another tenant's is refused.
    form = admin.get(reverse("tenants:apikey-add"), {"tenant": "acme", "project": str(project.pk)})
    page = form.content.decode()
    assert "acme / web" in page and "secret-plans" not in page
    created = admin.post(
        reverse("tenants:apikey-add"),
        {"tenant": "acme", "project": str(project.pk), "name": "shop"},
    )
    assert created.status_code == 201
    assert ApiKey.objects.get(name="shop").project == project
    refused = admin.post(
        reverse("tenants:apikey-add"), {"tenant": "acme", "project": str(theirs.pk), "name": "x"}
    )
    assert refused.status_code == 200 and "project" in refused.context["form"].errors

    # An existing key moves into the project from its edit page.
    edit = reverse("tenants:apikey-edit", args=[key_a.pk])
    assert admin.post(edit, {"name": "acme-key", "project": str(project.pk)}).status_code == 303
    key_a.refresh_from_db()
    assert key_a.project == project
    tenant_page = admin.get(reverse("tenants:tenant-detail", args=[acme.pk])).content.decode()
    assert "2 live keys" in tenant_page

    # Deleting the project leaves both keys working under the tenant.
    assert admin.post(reverse("tenants:project-delete", args=[project.pk])).status_code == 303
    assert not ApiKey.objects.filter(project__isnull=False, tenant=acme).exists()
    assert ApiKey.objects.filter(tenant=acme, revoked_at__isnull=True).count() == 2


# --- plans, time zones, savings baseline, rotation grace ------------------------------------


def test_tenant_plan_time_zone_baseline_and_gain_share_are_edited_and_shown(
    admin_user, two_tenants
):
    acme, _, _, _ = two_tenants
    client = signed_in(admin_user)
    edit = f"/tenants/{acme.pk}/edit/"
    response = client.post(
        edit,
        {
            "name": "Acme",
            "slug": "acme",
            "is_active": "on",
            "cost_mode": "balanced",
            "plan": "premium",
            "time_zone": "Europe/Paris",
            "baseline_model": "gpt-4o",
            "gain_share_percent": "12.5",
        },
    )
    assert response.status_code == 303
    acme.refresh_from_db()
    assert acme.plan == "premium" and acme.time_zone == "Europe/Paris"
    assert acme.baseline_model == "gpt-4o" and acme.gain_share_percent == Decimal("12.5")
    assert AuditEvent.objects.filter(event_type="tenant.updated", resource_id=str(acme.pk))
    form = client.get(edit).context["form"]
    assert form.initial["plan"] == "premium" and form.initial["time_zone"] == "Europe/Paris"
    page = client.get(f"/tenants/{acme.pk}/").content.decode()
    assert "Premium" in page and "Europe/Paris" in page and "gpt-4o" in page
    assert "12.5%" in page and "/budgets/?tenant=acme" in page


def test_tenant_time_zone_and_gain_share_errors_are_next_to_their_fields(admin_user):
    client = signed_in(admin_user)
    base = {"name": "Initech", "slug": "initech", "cost_mode": "balanced"}
    response = client.post("/tenants/add/", {**base, "time_zone": "Mars/Olympus"})
    assert response.status_code == 200 and "time_zone" in response.context["form"].errors
    assert 'id="id_time_zone_error"' in response.content.decode()
    response = client.post("/tenants/add/", {**base, "gain_share_percent": "101"})
    assert "gain_share_percent" in response.context["form"].errors
    response = client.post("/tenants/add/", {**base, "plan": "gold"})
    assert "plan" in response.context["form"].errors
    assert not Tenant.objects.filter(slug="initech").exists()
    # Left empty, the new fields take their defaults.
    assert client.post("/tenants/add/", base).status_code == 303
    tenant = Tenant.objects.get(slug="initech")
    assert tenant.plan == "" and tenant.time_zone == "" and tenant.gain_share_percent == 0


def test_a_key_has_a_plan_on_its_forms_and_page(admin_user, two_tenants):
    acme, _, key_a, _ = two_tenants
    client = signed_in(admin_user)
    assert "The tenant&#x27;s plan" in client.get("/keys/add/").content.decode()
    created = client.post("/keys/add/", {"tenant": "acme", "name": "free-key", "plan": "free"})
    assert created.status_code == 201
    key = ApiKey.objects.get(name="free-key")
    assert key.plan == "free"
    assert "Free" in client.get(f"/keys/{key.pk}/").content.decode()
    edit = f"/keys/{key_a.pk}/edit/"
    assert client.post(edit, {"name": "acme-key", "plan": "enterprise"}).status_code == 303
    key_a.refresh_from_db()
    assert key_a.plan == "enterprise"
    assert client.get(edit).context["form"].initial["plan"] == "enterprise"
    # Back to the tenant's plan, which the key's page then names.
    acme.plan = "premium"
    acme.save()
    assert client.post(edit, {"name": "acme-key", "plan": ""}).status_code == 303
    page = client.get(f"/keys/{key_a.pk}/").content.decode()
    assert 'Premium <span class="muted">(the tenant\'s)</span>' in page


def test_rotation_with_a_grace_period_keeps_the_old_key_until_then(admin_user, two_tenants):
    _, _, key_a, _ = two_tenants
    client = signed_in(admin_user)
    confirm = client.get(f"/keys/{key_a.pk}/rotate/", HTTP_HX_REQUEST="true").content.decode()
    assert 'name="grace_seconds"' in confirm and "24 hours" in confirm and "7 days" in confirm
    assert "(the default)" in confirm
    before = timezone.now()
    response = client.post(f"/keys/{key_a.pk}/rotate/", {"grace_seconds": "3600"})
    assert response.status_code == 200 and "keeps working until" in response.content.decode()
    key_a.refresh_from_db()
    assert key_a.revoked_at is not None
    assert before + timedelta(minutes=59) < key_a.grace_until <= timezone.now() + timedelta(hours=1)
    event = AuditEvent.objects.get(event_type="api_key.rotated", resource_id=str(key_a.pk))
    assert event.data["grace_until"]
    page = client.get(f"/keys/{key_a.pk}/")
    assert page.context["in_grace"] and b"in grace period" in page.content
    # Revoking it ends the grace period at once.
    assert page.context["may_revoke"] and not page.context["may_rotate"]
    listed = client.get("/keys/?tenant=acme").content.decode()
    assert "Grace until" in listed and "Last used" in listed
    # A grace period that is not offered is refused, and nothing is rotated.
    new = ApiKey.objects.get(name="acme-key", revoked_at__isnull=True)
    refused = client.post(f"/keys/{new.pk}/rotate/", {"grace_seconds": "999"}, follow=True)
    assert b"Choose one of the grace periods offered." in refused.content
    new.refresh_from_db()
    assert new.revoked_at is None
    assert client.post(f"/keys/{key_a.pk}/revoke/").status_code == 303
    key_a.refresh_from_db()
    assert key_a.grace_until is None
    assert not client.get(f"/keys/{key_a.pk}/").context["may_revoke"]


def test_rotation_without_a_grace_period_stops_the_old_key_at_once(admin_user, two_tenants):
    _, _, key_a, _ = two_tenants
    client = signed_in(admin_user)
    response = client.post(f"/keys/{key_a.pk}/rotate/", {"grace_seconds": "0"})
    assert response.status_code == 200 and "(revoked)" in response.content.decode()
    key_a.refresh_from_db()
    assert key_a.revoked_at is not None and key_a.grace_until is None


def test_key_pages_show_when_it_was_last_used(admin_user, two_tenants):
    _, _, key_a, _ = two_tenants
    used = timezone.now() - timedelta(hours=3)
    ApiKey.objects.filter(pk=key_a.pk).update(last_used_at=used)
    client = signed_in(admin_user)
    assert client.get(f"/keys/{key_a.pk}/").context["last_used"] == used
    listed = client.get("/keys/?tenant=acme").content.decode()
    assert used.strftime("%Y-%m-%d %H:%M") in listed
