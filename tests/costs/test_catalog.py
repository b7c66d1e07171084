"""The pricing catalog: price history from every path, costing at the price in force when a
request started, the catalog refresh (file and URL), flagged and stale prices, the `prices`
configuration section and the price API."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
import yaml
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.costs import catalog
from apps.costs.models import PriceVersion
from apps.costs.pricing import Prices, cost_usd
from apps.providers import services
from apps.providers.adapters.base import Usage
from apps.providers.models import ModelDeployment
from apps.routing.models import RequestLog
from apps.routing.snapshot import build_snapshot, holder
from atp_site.lib.config_file import ConfigError, apply_config, export_config
from tests.conftest import client_for
from tests.routing.conftest import call, flush_logs, gateway  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

CATALOG = "apps.costs.catalog"


def versions(deployment) -> list[PriceVersion]:
    return list(PriceVersion.objects.filter(deployment=deployment).order_by("effective_from"))


def prices_of(version) -> tuple:
    return tuple(getattr(version, name) for name in catalog.PRICE_FIELDS)


def events(event_type: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=event_type).order_by("sequence"))


@pytest.fixture
def openai_model(db):
    """An OpenAI deployment of a dated gpt-4o-mini, created ten days ago."""
    with time_machine.travel(timezone.now() - timedelta(days=10), tick=False):
        provider = services.provider_create(
            name="openai", kind="openai", base_url="https://api.openai.example/v1"
        )
        return services.deployment_create(
            provider=provider,
            public_name="gpt-4o-mini",
            upstream_model="gpt-4o-mini-2024-07-18",
            input_price="0.15",
            output_price="0.6",
            cached_input_price="0.075",
        )


def write_catalog(path, models, *, as_of: str | None = None):
    as_of = as_of or timezone.now().date().isoformat()
    path.write_text(json.dumps({"version": 1, "as_of": as_of, "models": models}))
    return str(path)


def entry(upstream: str, kind: str = "openai", **prices) -> dict:
    return {"match": {"provider_kind": kind, "upstream_model": upstream}, "prices": prices}


# --- history: every path records a version ---------------------------------------------------


def test_creating_a_deployment_starts_its_history_at_its_creation(openai_model):
    [first] = versions(openai_model)
    assert first.effective_from == openai_model.created_at
    assert prices_of(first)[:3] == (Decimal("0.15"), Decimal("0.6"), Decimal("0.075"))
    assert first.source == PriceVersion.Source.MANUAL


def test_the_price_service_records_a_version_and_other_changes_do_not(openai_model):
    services.deployment_update(deployment=openai_model, weight=5)
    assert len(versions(openai_model)) == 1
    services.deployment_set_prices(deployment=openai_model, input_price="0.2")
    history = versions(openai_model)
    assert len(history) == 2
    assert history[-1].input_price == Decimal("0.2")
    assert history[-1].effective_from > history[0].effective_from
    # The same prices again are not a change.
    services.deployment_set_prices(deployment=openai_model, input_price="0.200")
    assert len(versions(openai_model)) == 2


def test_a_deployment_older_than_the_history_gets_its_previous_prices_first(db):
    provider = services.provider_create(name="p", kind="openai", base_url="https://x.test/v1")
    with time_machine.travel(timezone.now() - timedelta(days=3), tick=False):
        old = ModelDeployment.objects.create(
            provider=provider, public_name="m", upstream_model="m", input_price=1, output_price=2
        )
    services.deployment_set_prices(deployment=old, input_price="3")
    baseline, change = versions(old)
    assert baseline.effective_from == old.created_at and baseline.input_price == 1
    assert change.input_price == 3
    assert catalog.price_at(old.pk, timezone.now() - timedelta(days=1)).input == 1
    assert catalog.price_at(old.pk, timezone.now()).input == 3


def test_the_api_records_a_version_with_who_changed_it(openai_model, manager_user):
    url = f"/api/v1/deployments/{openai_model.pk}/prices/"
    response = client_for(manager_user).post(url, {"output_price": "0.7"}, format="json")
    assert response.status_code == 200, response.content
    latest = versions(openai_model)[-1]
    assert latest.output_price == Decimal("0.7")
    assert latest.source == PriceVersion.Source.MANUAL and "manager" in latest.note


def test_the_console_records_a_version(openai_model, admin_user):
    client = Client()
    client.force_login(admin_user)
    url = reverse("providers:deployment-prices", args=[openai_model.pk])
    done = client.post(url, {"input_price": "0.1", "output_price": "0.4"})
    assert done.status_code == 303
    latest = versions(openai_model)[-1]
    assert (latest.input_price, latest.output_price) == (Decimal("0.1"), Decimal("0.4"))
    # The form's blank field clears the cached rate: that is recorded too.
    assert latest.cached_input_price is None


def test_the_configuration_file_records_versions_as_its_own(db):
    document = {
        "version": 1,
        "providers": [
            {
                "name": "openai",
                "kind": "openai",
                "base_url": "https://api.openai.example/v1",
                "models": [{"name": "gpt-4.1", "prices": {"input": 2, "output": 8}}],
            }
        ],
    }
    apply_config(document)
    deployment = ModelDeployment.objects.get(public_name="gpt-4.1")
    document["providers"][0]["models"][0]["prices"]["input"] = 1.5
    apply_config(document)
    created, changed = versions(deployment)
    assert created.source == changed.source == PriceVersion.Source.CONFIG
    assert changed.input_price == Decimal("1.5")


def test_the_catalog_refresh_records_versions_as_the_catalogs(openai_model, tmp_path):
    source = write_catalog(
        tmp_path / "c.json", [entry("gpt-4o-mini", input=0.14, output=0.6, cached_input=0.075)]
    )
    report = catalog.price_catalog_refresh(source=source)
    assert [c["model"] for c in report.changed] == ["gpt-4o-mini"]
    latest = versions(openai_model)[-1]
    assert latest.source == PriceVersion.Source.CATALOG and latest.input_price == Decimal("0.14")
    assert "c.json" in latest.note
    openai_model.refresh_from_db()
    assert openai_model.input_price == Decimal("0.14")


# --- costing at the price in force when the request started -----------------------------------


def test_prices_at_takes_the_latest_upcoming_version_started_by_then():
    now = datetime(2027, 1, 1, tzinfo=UTC)
    first, second = Prices(input=2, output=3), Prices(input=4, output=5)

    class Dep:
        prices = Prices(input=1, output=1)
        upcoming_prices = (
            (now.timestamp(), first),
            ((now + timedelta(days=1)).timestamp(), second),
        )

    assert catalog.prices_at(Dep, now - timedelta(seconds=1)) is Dep.prices
    assert catalog.prices_at(Dep, now) is first
    assert catalog.prices_at(Dep, now + timedelta(days=2)) is second


def test_the_snapshot_carries_current_and_upcoming_prices(openai_model):
    start = timezone.now() + timedelta(hours=1)
    catalog.price_version_schedule(
        deployment=openai_model,
        prices={"input_price": "0.1", "output_price": "0.4"},
        effective_from=start,
    )
    [info] = build_snapshot(1).models["gpt-4o-mini"]
    assert info.prices.input == Decimal("0.15")
    assert info.upcoming_prices == ((start.timestamp(), Prices(input="0.1", output="0.4")),)
    # Once started, the version is the snapshot's current price, promoted or not.
    with time_machine.travel(start + timedelta(minutes=1), tick=False):
        [later] = build_snapshot(2).models["gpt-4o-mini"]
    assert later.prices == Prices(input="0.1", output="0.4") and later.upcoming_prices == ()


@pytest.mark.django_db(transaction=True)
async def test_a_request_after_a_future_version_starts_is_costed_at_it_without_a_rebuild(
    gateway,  # noqa: F811
):
    chat = {"model": "sim-fast", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
    start = timezone.now() + timedelta(hours=2)
    await sync_to_async(catalog.price_version_schedule)(
        deployment=gateway.deployment,
        prices={"input_price": "10", "output_price": "20"},
        effective_from=start,
        source=PriceVersion.Source.MANUAL,
    )
    before = await call("POST", "/v1/chat/completions", json=chat, key=gateway.key)
    assert before.status == 200, before.body
    snapshot = holder._snapshot
    with time_machine.travel(start + timedelta(seconds=5), tick=True):
        after = await call("POST", "/v1/chat/completions", json=chat, key=gateway.key)
    assert after.status == 200, after.body
    assert holder._snapshot is snapshot  # no rebuild: the snapshot already knew
    await flush_logs()

    old, new = Prices(input="1", output="2"), Prices(input="10", output="20")
    for response, prices in ((before, old), (after, new)):
        usage = response.json()["usage"]
        log = await RequestLog.objects.aget(request_id=response.headers["x-request-id"])
        expected = cost_usd(Usage(usage["prompt_tokens"], usage["completion_tokens"]), prices)
        assert log.cost_usd == expected > 0
        assert Decimal(response.headers["x-atp-cost-usd"]) == expected
        # The version in force at the logged start is the one the request was costed at.
        in_force = await sync_to_async(catalog.price_at)(gateway.deployment.pk, log.created_at)
        assert in_force == prices
    assert log.created_at >= start


def test_a_version_in_force_is_promoted_to_the_current_prices_by_the_refresh(
    openai_model, tmp_path
):
    start = timezone.now() + timedelta(days=1)
    catalog.price_version_schedule(
        deployment=openai_model,
        prices={"input_price": "0.12", "output_price": "0.5", "cached_input_price": "0.06"},
        effective_from=start,
    )
    source = write_catalog(tmp_path / "empty.json", [])
    with time_machine.travel(start + timedelta(hours=1), tick=False):
        report = catalog.price_catalog_refresh(source=source)
    assert [p["model"] for p in report.promoted] == ["gpt-4o-mini"]
    openai_model.refresh_from_db()
    assert openai_model.input_price == Decimal("0.12")
    assert len(versions(openai_model)) == 2  # promotion records nothing new


def test_a_version_cannot_start_in_the_past(openai_model):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="past"):
        catalog.price_version_schedule(
            deployment=openai_model,
            prices={"input_price": 1, "output_price": 1},
            effective_from=timezone.now() - timedelta(hours=1),
        )


# --- the refresh --------------------------------------------------------------------------------


def test_the_bundled_catalog_is_valid_and_dated():
    bundled = catalog.catalog_load("")
    assert bundled.source == "bundled" and bundled.as_of.year >= 2025
    kinds = {e.provider_kind for e in bundled.entries}
    assert kinds == {"openai", "anthropic", "gemini"}
    names = {e.upstream_model for e in bundled.entries}
    assert {"gpt-4o", "gpt-4o-mini", "gpt-4.1", "o3", "o4-mini", "text-embedding-3-small"} <= names
    assert {
        "claude-sonnet-4-5",
        "claude-haiku-4-5",
        "claude-opus-4-1",
        "claude-3-5-sonnet",
    } <= names
    assert {"gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.0-flash"} <= names


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("gemini-2.0-flash-001", "gemini-2.0-flash"),
        ("gpt-4o-audio-preview", None),
    ],
)
def test_dated_model_names_match_their_family(upstream, expected):
    from apps.providers.models import Provider

    bundled = catalog.catalog_load("")
    kind = "anthropic" if upstream.startswith("claude") else "openai"
    kind = "gemini" if upstream.startswith("gemini") else kind
    deployment = ModelDeployment(provider=Provider(name="x", kind=kind), upstream_model=upstream)
    found = bundled.entry_for(deployment)
    assert (found.upstream_model if found else None) == expected


def test_refresh_from_a_file_changes_only_what_differs(openai_model, tmp_path):
    other = services.deployment_create(
        provider=openai_model.provider,
        public_name="embed",
        upstream_model="text-embedding-3-small",
        input_price="0.02",
        output_price="0",
    )
    source = write_catalog(
        tmp_path / "catalog.json",
        [
            entry("gpt-4o-mini", input=0.165, output=0.66),
            entry("text-embedding-3-small", input=0.02, output=0),
            entry("gpt-4o-mini", kind="anthropic", input=99, output=99),
        ],
    )
    report = catalog.price_catalog_refresh(source=source).as_dict()
    assert report["matched"] == 2
    [changed] = report["changed"]
    assert changed["model"] == "gpt-4o-mini" and changed["change_percent"] == 10.0
    assert changed["after"] == {
        "input": "0.165",
        "output": "0.66",
        "cached_input": "0.075",  # left out of the entry: kept
        "cache_write": None,
        "reasoning": None,
    }
    assert report["flagged"] == [] and len(versions(other)) == 1
    # Again: nothing to do.
    assert catalog.price_catalog_refresh(source=source).changed == []


def test_an_admin_price_newer_than_the_catalog_is_kept(openai_model, tmp_path):
    services.deployment_set_prices(deployment=openai_model, input_price="0.13")
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    source = write_catalog(
        tmp_path / "c.json", [entry("gpt-4o-mini", input=0.15, output=0.6)], as_of=yesterday
    )
    report = catalog.price_catalog_refresh(source=source)
    assert report.changed == [] and [k["model"] for k in report.kept] == ["gpt-4o-mini"]
    openai_model.refresh_from_db()
    assert openai_model.input_price == Decimal("0.13")


def test_a_future_catalog_entry_schedules_a_version_once(openai_model, tmp_path):
    start = (timezone.now() + timedelta(days=30)).replace(microsecond=0)
    model = entry("gpt-4o-mini", input=0.14, output=0.55)
    model["effective_from"] = start.isoformat()
    source = write_catalog(tmp_path / "c.json", [model])
    report = catalog.price_catalog_refresh(source=source)
    assert report.changed[0]["effective_from"] == start.isoformat()
    scheduled = versions(openai_model)[-1]
    assert scheduled.effective_from == start and scheduled.source == "catalog"
    openai_model.refresh_from_db()
    assert openai_model.input_price == Decimal("0.15")  # not yet
    assert catalog.price_catalog_refresh(source=source).changed == []
    assert len(versions(openai_model)) == 2


class _CatalogHandler(BaseHTTPRequestHandler):
    body = b""
    status = 200
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).requests.append(self.path)
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def catalog_server():
    """A catalog served over HTTP on 127.0.0.1, stopped after the test."""
    handler = type("Handler", (_CatalogHandler,), {"requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.timeout = 5
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield handler, f"http://127.0.0.1:{server.server_port}/prices.json?token=s3cret"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_refresh_from_a_url(openai_model, catalog_server, settings):
    handler, url = catalog_server
    handler.body = json.dumps(
        {
            "version": 1,
            "as_of": timezone.now().date().isoformat(),
            "models": [entry("gpt-4o-mini", input=0.16, output=0.6)],
        }
    ).encode()
    settings.ATP_PRICE_CATALOG = url
    report = catalog.price_catalog_refresh()
    assert handler.requests == ["/prices.json?token=s3cret"]
    assert report.source.startswith("http://127.0.0.1:") and "s3cret" not in report.source
    assert report.changed[0]["after"]["input"] == "0.16"
    assert "s3cret" not in versions(openai_model)[-1].note


def test_an_unreachable_or_invalid_catalog_changes_nothing(openai_model, catalog_server, settings):
    handler, url = catalog_server
    handler.status = 500
    settings.ATP_PRICE_CATALOG = url
    with pytest.raises(catalog.CatalogUnavailable, match="HTTP 500"):
        catalog.price_catalog_refresh()
    handler.status, handler.body = 200, b'{"version": 1, "as_of": "2026-01-01", "models": [{}]}'
    with pytest.raises(catalog.CatalogError, match=r"models\[0\]"):
        catalog.price_catalog_refresh()
    assert len(versions(openai_model)) == 1


def test_a_change_above_the_threshold_is_flagged_once_and_not_applied(
    openai_model, tmp_path, settings, caplog
):
    settings.ATP_PRICE_CHANGE_ALERT_PERCENT = 20
    source = write_catalog(tmp_path / "c.json", [entry("gpt-4o-mini", input=0.3, output=0.6)])
    with caplog.at_level(logging.WARNING, logger=CATALOG):
        report = catalog.price_catalog_refresh(source=source)
    [flag] = report.flagged
    assert flag["change_percent"] == 100.0 and flag["applied"] is False
    assert report.changed == []
    openai_model.refresh_from_db()
    assert openai_model.input_price == Decimal("0.15")
    [event] = events("price.change_flagged")
    assert event.resource_id == str(openai_model.pk)
    assert event.data["after"]["input"] == "0.3" and event.data["before"]["input"] == "0.15"
    assert "left for an admin" in caplog.text
    # Flagged again in the report, audited once.
    assert len(catalog.price_catalog_refresh(source=source).flagged) == 1
    assert len(events("price.change_flagged")) == 1


def test_flagged_changes_apply_when_so_configured(openai_model, tmp_path, settings):
    settings.ATP_PRICE_CATALOG_AUTO_APPLY_FLAGGED = True
    source = write_catalog(tmp_path / "c.json", [entry("gpt-4o-mini", input=0.3, output=0.6)])
    report = catalog.price_catalog_refresh(source=source)
    assert report.flagged[0]["applied"] is True and len(report.changed) == 1
    openai_model.refresh_from_db()
    assert openai_model.input_price == Decimal("0.3")
    assert len(events("price.change_flagged")) == 1


def test_an_unpriced_deployment_is_filled_in_without_a_flag(db, tmp_path):
    provider = services.provider_create(name="oa", kind="openai", base_url="https://x.test/v1")
    with time_machine.travel(timezone.now() - timedelta(days=2), tick=False):
        deployment = services.deployment_create(
            provider=provider, public_name="o3", upstream_model="o3", input_price=0, output_price=0
        )
    source = write_catalog(tmp_path / "c.json", [entry("o3", input=2, output=8, cached_input=0.5)])
    report = catalog.price_catalog_refresh(source=source)
    assert report.flagged == [] and report.changed[0]["change_percent"] is None
    deployment.refresh_from_db()
    assert (deployment.input_price, deployment.output_price) == (2, 8)


def test_a_stale_price_is_warned_of_once_per_period(openai_model, tmp_path, settings, caplog):
    settings.ATP_PRICE_STALE_DAYS = 5
    source = write_catalog(tmp_path / "none.json", [])
    with caplog.at_level(logging.WARNING, logger=CATALOG):
        report = catalog.price_catalog_refresh(source=source)
    [stale] = report.stale
    assert stale["model"] == "gpt-4o-mini" and stale["days"] == 10 and stale["warned_now"]
    assert "not confirmed for 10 days" in caplog.text
    [event] = events("price.stale")
    assert event.resource_id == str(openai_model.pk)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=CATALOG):
        again = catalog.price_catalog_refresh(source=source)
    assert again.stale[0]["warned_now"] is False and "not confirmed" not in caplog.text
    assert len(events("price.stale")) == 1
    # A period later it is warned of again.
    with time_machine.travel(timezone.now() + timedelta(days=6), tick=False):
        catalog.price_catalog_refresh(source=source)
    assert len(events("price.stale")) == 2


def test_the_catalog_or_an_admin_confirms_a_price(openai_model, tmp_path, settings):
    settings.ATP_PRICE_STALE_DAYS = 5
    same = write_catalog(
        tmp_path / "c.json", [entry("gpt-4o-mini", input=0.15, output=0.6, cached_input=0.075)]
    )
    assert catalog.price_catalog_refresh(source=same).stale == []
    # A version of the same prices is an admin's confirmation.
    catalog.price_version_schedule(
        deployment=openai_model,
        prices=catalog.field_prices(openai_model),
    )
    empty = write_catalog(tmp_path / "none.json", [])
    assert catalog.price_catalog_refresh(source=empty).stale == []
    assert events("price.stale") == []


def test_the_task_runs_the_refresh(openai_model, tmp_path, settings):
    from apps.costs.tasks import refresh_prices

    settings.ATP_PRICE_CATALOG = write_catalog(
        tmp_path / "c.json", [entry("gpt-4o-mini", input=0.16, output=0.6)]
    )
    result = refresh_prices.apply().get()
    assert result["changed"][0]["model"] == "gpt-4o-mini"


def test_the_refresh_runs_daily():
    from celery.schedules import crontab

    from atp_site.celery import app

    entry_ = app.conf.beat_schedule["costs-refresh-prices"]
    assert entry_["task"] == "costs.refresh_prices" and isinstance(entry_["schedule"], crontab)


# --- the `prices` configuration section ---------------------------------------------------------

FILE = """
version: 1
providers:
  - name: openai
    kind: openai
    base_url: https://api.openai.example/v1
    models:
      - name: gpt-4o-mini
        prices: {input: 0.15, output: 0.6}
prices:
  - provider: openai
    model: gpt-4o-mini
    effective_from: 2099-01-01T00:00:00Z
    prices: {input: 0.1, output: 0.4, cached_input: 0.05}
    note: Announced price cut
"""


def test_the_prices_section_applies_exports_and_round_trips(db):
    report = apply_config(yaml.safe_load(FILE))
    assert ("price version", "created") in [(c.kind, c.action) for c in report.changes]
    deployment = ModelDeployment.objects.get(public_name="gpt-4o-mini")
    scheduled = versions(deployment)[-1]
    assert scheduled.effective_from == datetime(2099, 1, 1, tzinfo=UTC)
    assert scheduled.source == "config" and scheduled.note == "Announced price cut"
    assert scheduled.cached_input_price == Decimal("0.05")

    exported = export_config()
    assert exported["prices"] == [
        {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "effective_from": datetime(2099, 1, 1, tzinfo=UTC),
            "prices": {"input": 0.1, "output": 0.4, "cached_input": 0.05},
            "note": "Announced price cut",
        }
    ]
    again = apply_config(exported, prune=True)
    assert not again.changed, again.lines()
    assert not apply_config(yaml.safe_load(FILE)).changed


def test_the_prices_section_updates_and_prunes_only_future_versions(db):
    apply_config(yaml.safe_load(FILE))
    deployment = ModelDeployment.objects.get(public_name="gpt-4o-mini")
    document = yaml.safe_load(FILE)
    document["prices"][0]["prices"]["input"] = 0.11
    changed = apply_config(document)
    [change] = [c for c in changed.changes if c.kind == "price version"]
    assert change.action == "updated" and change.fields == ("input_price",)
    document["prices"] = []
    pruned = apply_config(document, prune=True)
    assert [c.action for c in pruned.changes if c.kind == "price version"] == ["deleted"]
    assert [v.effective_from.year for v in versions(deployment)] == [timezone.now().year]
    assert events("price.cancelled")


def test_past_prices_in_the_file_cannot_rewrite_history(db):
    document = yaml.safe_load(FILE)
    apply_config(document)
    # Superseded on a model created since: left alone.
    document["prices"].append(
        {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "effective_from": "2020-01-01T00:00:00Z",
            "prices": {"input": 9, "output": 9},
        }
    )
    report = apply_config(document)
    assert ("price version", "unchanged", ("superseded",)) in [
        (c.kind, c.action, c.fields) for c in report.changes
    ]
    deployment = ModelDeployment.objects.get(public_name="gpt-4o-mini")
    with pytest.raises(ConfigError, match=r"prices\[0\].model"):
        apply_config({"version": 1, "prices": [{**document["prices"][0], "model": "nope"}]})
    assert len(versions(deployment)) == 2


def test_a_file_whose_providers_prices_lag_its_version_in_force_is_refused(db):
    start = timezone.now() + timedelta(days=1)
    document = yaml.safe_load(FILE)
    document["prices"][0]["effective_from"] = start.isoformat()
    apply_config(document)
    deployment = ModelDeployment.objects.get(public_name="gpt-4o-mini")
    with time_machine.travel(start + timedelta(days=1), tick=False):
        catalog.price_versions_promote()
        # The file still gives the old prices under providers: applying it would undo the
        # version now in force.
        with pytest.raises(ConfigError, match="under providers"):
            apply_config(document)
        deployment.refresh_from_db()
        assert deployment.input_price == Decimal("0.1")
        # Brought up to date, it applies and changes nothing.
        document["providers"][0]["models"][0]["prices"] = {
            "input": 0.1,
            "output": 0.4,
            "cached_input": 0.05,
        }
        assert not apply_config(document).changed


def test_the_prices_section_checks_its_values(db):
    bad = yaml.safe_load(FILE)
    bad["prices"][0]["prices"] = {"input": -1, "output": 1}
    with pytest.raises(ConfigError, match=r"prices\[0\].prices.input: must be a number >= 0"):
        apply_config(bad)
    bad["prices"][0]["prices"] = {"output": 1}
    with pytest.raises(ConfigError, match=r"prices\[0\].prices.input: is required"):
        apply_config(bad)
    assert not ModelDeployment.objects.exists()


# --- the API ------------------------------------------------------------------------------------


def test_the_api_lists_a_deployments_history(openai_model, viewer_user):
    services.deployment_set_prices(deployment=openai_model, input_price="0.2")
    client = client_for(viewer_user)
    listed = client.get("/api/v1/price-versions/", {"deployment": str(openai_model.pk)})
    assert listed.status_code == 200, listed.content
    rows = listed.json()["results"]
    assert [r["input_price"] for r in rows] == ["0.200000", "0.150000"]
    assert rows[0]["provider"] == "openai" and rows[0]["model"] == "gpt-4o-mini"
    assert client.get("/api/v1/price-versions/", {"deployment": "x"}).status_code == 400
    refused = client.post(
        "/api/v1/price-versions/",
        {"deployment": str(openai_model.pk), "input_price": "1", "output_price": "1"},
        format="json",
    )
    assert refused.status_code == 403


def test_the_api_schedules_a_version(openai_model, user_factory, grant):
    cost_admin = grant(
        user_factory(username="cost"),
        "providers.view_modeldeployment",
        "providers.change_deployment_prices",
    )
    client = client_for(cost_admin)
    start = timezone.now() + timedelta(days=7)
    body = {
        "deployment": str(openai_model.pk),
        "effective_from": start.isoformat(),
        "input_price": "0.12",
        "output_price": "0.5",
        "note": "Negotiated",
    }
    created = client.post("/api/v1/price-versions/", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["scheduled"] is True and created.json()["source"] == "manual"
    assert [e.data["prices"]["input"] for e in events("price.scheduled")] == ["0.12"]
    past = {**body, "effective_from": (timezone.now() - timedelta(days=1)).isoformat()}
    refused = client.post("/api/v1/price-versions/", past, format="json")
    assert refused.status_code == 400 and "effective_from" in refused.json()
    missing = {**body, "deployment": "00000000-0000-0000-0000-000000000000"}
    assert client.post("/api/v1/price-versions/", missing, format="json").status_code == 400
    # Now, when left out.
    now = client.post("/api/v1/price-versions/", {**body, "effective_from": None}, format="json")
    assert now.status_code == 201 and now.json()["scheduled"] is False
    openai_model.refresh_from_db()
    assert openai_model.input_price == Decimal("0.12")


def test_the_api_runs_the_refresh(openai_model, manager_user, viewer_user, tmp_path, settings):
    settings.ATP_PRICE_CATALOG = write_catalog(
        tmp_path / "c.json", [entry("gpt-4o-mini", input=0.16, output=0.6)]
    )
    assert client_for(viewer_user).post("/api/v1/price-catalog/refresh").status_code == 403
    response = client_for(manager_user).post("/api/v1/price-catalog/refresh")
    assert response.status_code == 200, response.content
    report = response.json()
    assert set(report) >= {"changed", "flagged", "stale"}
    assert report["changed"][0]["after"]["input"] == "0.16"
    settings.ATP_PRICE_CATALOG = str(tmp_path / "missing.json")
    failed = client_for(manager_user).post("/api/v1/price-catalog/refresh/")
    assert failed.status_code == 502 and failed.json()["code"] == "price_catalog_unavailable"
