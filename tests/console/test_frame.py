"""The console's frame: sign-in rules, permissions, tables (sort, search, keyset pages), assets."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from apps.providers.models import Provider
from atp_site.console.navigation import menu_for

pytestmark = pytest.mark.django_db

STATIC = Path(settings.BASE_DIR) / "static"


def test_signed_out_page_redirects_to_sign_in(client: Client):
    response = client.get("/providers/?q=x")
    assert response.status_code == 302
    assert response["Location"].startswith(settings.LOGIN_URL)
    assert "next=/providers/%3Fq%3Dx" in response["Location"]


def test_signed_out_htmx_request_gets_401_and_a_redirect(client: Client):
    response = client.get("/providers/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="console-table")
    assert response.status_code == 401
    assert response["HX-Redirect"] == settings.LOGIN_URL


def test_without_the_permission_403_page(client: Client, staff_user):
    client.force_login(staff_user)
    response = client.get("/providers/")
    assert response.status_code == 403
    assert b"You may not open this page" in response.content


def test_unknown_console_path_is_an_html_404_and_api_stays_json(client: Client, admin_user):
    client.force_login(admin_user)
    page = client.get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
    api = client.get("/api/v1/no-such-thing/")
    assert api.status_code == 404 and api.json() == {"detail": "Not found."}


def test_menu_shows_only_what_the_viewer_may_open(grant, staff_user, admin_user):
    assert menu_for(staff_user) == [] or all(
        item.label == "Overview" or item.label == "Admin tokens"
        for _, items in menu_for(staff_user)
        for item in items
    )
    grant(staff_user, "providers.view_provider")
    labels = [i.label for _, items in menu_for(staff_user) for i in items]
    assert "Providers" in labels and "Routes" not in labels
    everything = [i.label for _, items in menu_for(admin_user) for i in items]
    assert "Providers" in everything and "Overview" in everything


def test_list_empty_state_search_sort_and_keyset_pages(
    client: Client, admin_user, provider_factory
):
    client.force_login(admin_user)
    empty = client.get("/providers/")
    assert empty.status_code == 200
    assert b"No providers yet" in empty.content

    for i in range(7):
        provider_factory(name=f"p{i:02d}", region="eu" if i % 2 else "us")
    page = client.get("/providers/?sort=name")
    assert page.status_code == 200
    names = [r.name for r in page.context["page"].rows]
    assert names == [f"p{i:02d}" for i in range(7)]

    class Small(page.context["table"].__class__):
        per_page = 3

    from django.http import QueryDict

    table = Small(Provider.objects.all(), QueryDict("sort=-name"))
    first = table.page()
    assert [r.name for r in first.rows] == ["p06", "p05", "p04"]
    second = Small(Provider.objects.all(), QueryDict(table.page_query(first.next_cursor))).page()
    assert [r.name for r in second.rows] == ["p03", "p02", "p01"]
    third = Small(Provider.objects.all(), QueryDict(table.page_query(second.next_cursor))).page()
    assert [r.name for r in third.rows] == ["p00"] and third.next_cursor is None
    back = Small(
        Provider.objects.all(), QueryDict(table.page_query(third.prev_cursor, before=True))
    ).page()
    assert [r.name for r in back.rows] == ["p03", "p02", "p01"]
    assert first.prev_cursor is None

    found = client.get("/providers/?q=p03", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="console-table")
    assert found.status_code == 200
    assert [r.name for r in found.context["page"].rows] == ["p03"]
    assert b"<html" not in found.content  # the fragment, not the page
    assert b'hx-swap-oob="true"' in found.content  # the result count is announced

    bad_cursor = client.get("/providers/?cursor=%%%garbage")
    assert bad_cursor.status_code == 200


def test_every_asset_is_served_locally(client: Client, admin_user):
    client.force_login(admin_user)
    html = client.get("/").content.decode()
    assert "http://" not in html.replace("http://testserver", "") and "https://" not in html
    for path in (
        "vendor/htmx/htmx.min.js",
        "vendor/htmx-ext-ws/ws.min.js",
        "vendor/uplot/uPlot.iife.min.js",
        "vendor/inter/inter-latin-wght-normal.woff2",
        "vendor/lucide/icons.svg",
        "console/console.css",
        "console/console.js",
    ):
        assert (STATIC / path).is_file(), path


def test_templates_hold_no_inline_script_or_style():
    for template in (Path(settings.BASE_DIR) / "templates").rglob("*.html"):
        if "drf_spectacular" in template.parts or "admin" in template.parts:
            continue
        text = template.read_text()
        assert "<script>" not in text and '<script type="text/javascript">' not in text, template
        assert ' style="' not in text and "<style" not in text, template
        assert " onclick=" not in text and " hx-on" not in text, template
