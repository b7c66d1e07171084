"""The configuration file's `limits`, `budgets` and `notifiers` sections, and the tenants
section's plan and savings settings: apply, idempotence, export round trip, prune, errors."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest
import yaml

from apps.audit.models import AuditEvent
from apps.costs import services
from apps.costs.models import Budget, Notifier, RateLimit, Scope
from apps.tenants.models import ApiKey, Tenant
from apps.tenants.services import api_key_rotate
from atp_site.lib.config_file import ConfigError, apply_config, export_config, export_config_yaml

pytestmark = pytest.mark.django_db

HOOK_SECRET = "whsec-from-the-environment-5Tq9"
ENV = {"OPS_WEBHOOK_SECRET": HOOK_SECRET}

DOCUMENT = """
version: 1
tenants:
  - slug: acme
    plan: premium
    time_zone: Europe/Paris
    baseline_model: gpt-4o
    gain_share_percent: 12.5
    projects:
      - {slug: web}
    api_keys:
      - {name: ci, plan: free}
      - {name: batch}
  - slug: globex
limits:
  - plan: free
    requests_per_minute: 60
    tokens_per_minute: 100000
  - tenant: acme
    requests_per_minute: 600
    cost_per_hour_usd: 25.5
  - tenant: acme
    project: web
    max_concurrent: 8
  - tenant: acme
    api_key: ci
    tokens_per_minute: 5000
budgets:
  - tenant: acme
    name: monthly
    limit_usd: 500
    thresholds: [100, 50, 80, 50]
  - tenant: acme
    name: web-daily
    project: web
    period: daily
    limit_usd: 20.25
    time_zone: America/New_York
    action: downgrade
    downgrade_to: cheap-model
  - tenant: globex
    name: monthly
    api_key: null
    limit_usd: 100
    action: alert
    enabled: false
notifiers:
  - name: finance
    kind: email
    tenant: acme
    target: [cfo@acme.example, ap@acme.example]
  - name: ops
    kind: webhook
    target: https://hooks.example/atp
    secret: env:OPS_WEBHOOK_SECRET
"""


@pytest.fixture
def document() -> dict:
    return yaml.safe_load(DOCUMENT)


def _apply(document: dict, **kwargs):
    return apply_config(document, environ=ENV, **kwargs)


def _changes(report, kind: str) -> dict[str, str]:
    return {c.name: c.action for c in report.changes if c.kind == kind}


def test_apply_creates_limits_budgets_notifiers_and_tenant_settings(document):
    report = _apply(document)

    assert _changes(report, "rate limit") == {
        "plan free": "created",
        "tenant acme": "created",
        "project acme/web": "created",
        "key acme/ci": "created",
    }
    assert _changes(report, "budget") == {
        "acme/monthly": "created",
        "acme/web-daily": "created",
        "globex/monthly": "created",
    }
    assert _changes(report, "notifier") == {"finance": "created", "ops": "created"}

    acme = Tenant.objects.get(slug="acme")
    assert (acme.plan, acme.time_zone, acme.baseline_model) == (
        "premium",
        "Europe/Paris",
        "gpt-4o",
    )
    assert acme.gain_share_percent == Decimal("12.5")
    assert ApiKey.objects.get(name="ci").plan == "free"
    assert ApiKey.objects.get(name="batch").plan == ""

    plan = RateLimit.objects.get(scope=Scope.PLAN)
    assert (plan.plan, plan.requests_per_minute, plan.tokens_per_minute) == ("free", 60, 100000)
    assert RateLimit.objects.get(scope=Scope.TENANT).cost_per_hour_usd == Decimal("25.5")
    assert RateLimit.objects.get(scope=Scope.PROJECT).project.slug == "web"
    assert RateLimit.objects.get(scope=Scope.KEY).api_key.name == "ci"

    monthly = Budget.objects.get(tenant=acme, name="monthly")
    assert (monthly.scope, monthly.period, monthly.thresholds) == (
        "tenant",
        "monthly",
        [50, 80, 100],
    )
    daily = Budget.objects.get(name="web-daily")
    assert (daily.scope, daily.project.slug, daily.action) == ("project", "web", "downgrade")
    assert daily.limit_usd == Decimal("20.25") and daily.time_zone == "America/New_York"
    assert not Budget.objects.get(tenant__slug="globex").enabled

    finance, ops = Notifier.objects.order_by("name")
    assert finance.target == "cfo@acme.example, ap@acme.example" and finance.tenant == acme
    assert (ops.kind, ops.secret, ops.tenant) == ("webhook", HOOK_SECRET, None)


def test_applying_again_changes_nothing(document, django_capture_on_commit_callbacks):
    _apply(document)
    with django_capture_on_commit_callbacks() as callbacks:
        report = _apply(copy.deepcopy(document), prune=True)
    assert not report.changed, report.lines()
    assert not callbacks  # nothing written, no configuration version bumped


def test_changes_update_in_place(document):
    _apply(document)
    ids = {r.pk for r in RateLimit.objects.all()} | {b.pk for b in Budget.objects.all()}
    document["limits"][1]["requests_per_minute"] = 700
    del document["limits"][1]["cost_per_hour_usd"]
    document["budgets"][0]["limit_usd"] = 750
    document["budgets"][0]["thresholds"] = [90]
    document["notifiers"][0]["enabled"] = False
    document["tenants"][0]["plan"] = "enterprise"

    report = _apply(document)

    assert _changes(report, "rate limit")["tenant acme"] == "updated"
    changed = {c.name: c.fields for c in report.changes if c.action == "updated"}
    assert changed["tenant acme"] == ("cost_per_hour_usd", "requests_per_minute")
    assert changed["acme/monthly"] == ("limit_usd", "thresholds")
    assert changed["finance"] == ("enabled",)
    assert changed["acme"] == ("plan",)
    assert {r.pk for r in RateLimit.objects.all()} | {b.pk for b in Budget.objects.all()} == ids
    limit = RateLimit.objects.get(scope=Scope.TENANT)
    assert (limit.requests_per_minute, limit.cost_per_hour_usd) == (700, None)


def test_a_budget_moved_to_another_target_is_replaced(document):
    _apply(document)
    old = Budget.objects.get(name="monthly", tenant__slug="acme")
    document["budgets"][0]["api_key"] = "batch"
    report = _apply(document)
    assert _changes(report, "budget")["acme/monthly"] == "replaced"
    new = Budget.objects.get(name="monthly", tenant__slug="acme")
    assert new.pk != old.pk and (new.scope, new.api_key.name) == ("key", "batch")


def test_a_notifier_secret_is_kept_when_omitted_and_replaced_when_changed(document):
    _apply(document)
    del document["notifiers"][1]["secret"]
    assert _changes(_apply(document), "notifier")["ops"] == "unchanged"
    assert Notifier.objects.get(name="ops").secret == HOOK_SECRET
    document["notifiers"][1]["secret"] = "env:OTHER_SECRET"
    report = apply_config(document, environ={"OTHER_SECRET": "rotated-secret"})
    assert [c.fields for c in report.changes if c.name == "ops"] == [("secret",)]
    assert Notifier.objects.get(name="ops").secret == "rotated-secret"
    assert "rotated-secret" not in "\n".join(report.lines())
    assert HOOK_SECRET not in str(list(AuditEvent.objects.values()))


def test_a_notifier_changing_kind_or_tenant_is_replaced(document):
    _apply(document)
    document["notifiers"][0]["tenant"] = "globex"
    report = _apply(document)
    assert _changes(report, "notifier")["finance"] == "replaced"
    assert Notifier.objects.get(name="finance").tenant.slug == "globex"


def test_export_round_trip_changes_nothing(document):
    _apply(document)
    exported = export_config()

    assert exported["limits"][0] == {
        "plan": "free",
        "requests_per_minute": 60,
        "tokens_per_minute": 100000,
    }
    assert {"tenant": "acme", "api_key": "ci", "tokens_per_minute": 5000} in exported["limits"]
    web = next(b for b in exported["budgets"] if b["name"] == "web-daily")
    assert web["project"] == "web" and web["limit_usd"] == 20.25
    acme = exported["tenants"][0]
    assert (acme["plan"], acme["gain_share_percent"]) == ("premium", 12.5)
    assert {"name": "ci", "prefix": ApiKey.objects.get(name="ci").prefix, "plan": "free"} in acme[
        "api_keys"
    ]
    assert "plan" not in exported["tenants"][1]

    report = apply_config(exported, prune=True, environ={"NOTIFIER_OPS_SECRET": HOOK_SECRET})
    assert not report.changed, report.lines()
    assert export_config() == exported


def test_export_never_writes_a_notifier_secret(document):
    _apply(document)
    text = export_config_yaml()
    assert HOOK_SECRET not in text
    ops = next(n for n in yaml.safe_load(text)["notifiers"] if n["name"] == "ops")
    assert ops["secret"] == "env:NOTIFIER_OPS_SECRET"
    assert "notifier ops: its signing secret is not exported; set NOTIFIER_OPS_SECRET" in text
    finance = next(n for n in yaml.safe_load(text)["notifiers"] if n["name"] == "finance")
    assert "secret" not in finance


def test_prune_removes_what_the_file_no_longer_lists(document):
    _apply(document)
    services.notifier_create(name="extra", kind="email", target="x@example.com")
    smaller = copy.deepcopy(document)
    smaller["limits"] = smaller["limits"][:1]
    smaller["budgets"] = smaller["budgets"][:1]
    smaller["notifiers"] = []

    report = _apply(smaller, prune=True)

    assert _changes(report, "rate limit") == {
        "plan free": "unchanged",
        "tenant acme": "deleted",
        "project acme/web": "deleted",
        "key acme/ci": "deleted",
    }
    assert _changes(report, "budget")["globex/monthly"] == "deleted"
    assert set(_changes(report, "notifier").values()) == {"deleted"}
    assert RateLimit.objects.count() == Budget.objects.count() == 1
    assert not Notifier.objects.exists()


def test_without_prune_or_without_the_section_nothing_is_removed(document):
    _apply(document)
    _apply({"version": 1, "limits": [], "budgets": [], "notifiers": []})
    _apply({"version": 1, "tenants": document["tenants"]}, prune=True)
    assert RateLimit.objects.count() == 4 and Budget.objects.count() == 3
    assert Notifier.objects.count() == 2


def test_rows_on_a_revoked_key_are_neither_exported_nor_pruned(document):
    _apply(document)
    ci = ApiKey.objects.get(name="ci")
    api_key_rotate(api_key=ci, grace_seconds=0)
    exported = export_config()
    assert not [item for item in exported["limits"] if item.get("api_key") == "ci"]

    del document["limits"][3]
    report = _apply(document, prune=True)
    assert "key acme/ci" not in _changes(report, "rate limit")
    assert RateLimit.objects.filter(api_key=ci).exists()


def test_dry_run_reports_but_changes_nothing(document):
    report = _apply(document, dry_run=True)
    assert _changes(report, "budget")["acme/monthly"] == "created"
    assert not RateLimit.objects.exists() and not Budget.objects.exists()
    assert not Notifier.objects.exists() and not Tenant.objects.exists()


def _set(document: dict, path: tuple, value) -> None:
    target = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("limits", 0, "plan"), "gold", "limits[0].plan: must be one of free, premium"),
        (("limits", 0, "tenant"), "acme", "limits[0].plan: a plan's limits name no tenant"),
        (("limits", 1, "tenant"), None, "limits[1].tenant: is required (name a plan or a tenant)"),
        (("limits", 1, "tenant"), "initech", "limits[1].tenant: no tenant with slug 'initech'"),
        (("limits", 2, "project"), "mobile", "limits[2].project: tenant 'acme' has no project"),
        (("limits", 3, "api_key"), "gone", "limits[3].api_key: tenant 'acme' has no live key"),
        (("limits", 2, "api_key"), "ci", "limits[2].api_key: name a project or a key, not both"),
        (("limits", 1, "requests_per_minute"), -5, "limits[1].requests_per_minute: must be"),
        (("limits", 1, "cost_per_hour_usd"), "lots", "limits[1].cost_per_hour_usd: must be"),
        (("limits", 1, "burst"), 5, "limits[1].burst: unknown key"),
        (("limits", 2, "project"), None, "duplicate rate limit target 'tenant acme'"),
        (("budgets", 0, "limit_usd"), None, "budgets[0].limit_usd: is required"),
        (("budgets", 0, "tenant"), None, "budgets[0].tenant: is required (name a tenant)"),
        (("budgets", 0, "plan"), "free", "budgets[0].plan: unknown key"),
        (("budgets", 0, "period"), "hourly", "budgets[0].period: must be one of"),
        (("budgets", 0, "thresholds"), [50, 0], "budgets[0].thresholds[1]: must be a number"),
        (("budgets", 0, "thresholds"), "50", "budgets[0].thresholds: must be a list"),
        (("budgets", 0, "time_zone"), "Mars/Base", "budgets[0].time_zone: 'Mars/Base' is not"),
        (("budgets", 1, "downgrade_to"), "", "budgets[1].downgrade_to: A downgrading budget"),
        (("budgets", 1, "name"), "monthly", "duplicate budget (tenant/name) 'acme/monthly'"),
        (("notifiers", 0, "target"), "not-mail", "notifiers[0].target: 'not-mail' is not an"),
        (("notifiers", 0, "kind"), "pigeon", "notifiers[0].kind: must be one of email, webhook"),
        (("notifiers", 0, "tenant"), "initech", "notifiers[0].tenant: no tenant with slug"),
        (("notifiers", 1, "secret"), "env:MISSING_SECRET", "notifiers[1].secret: environment"),
        (("notifiers", 1, "secret"), "env:DATABASE_URL", "notifiers[1].secret: DATABASE_URL is"),
        (("notifiers", 1, "secret"), None, "notifiers[1].secret: A webhook needs a signing secret"),
        (("notifiers", 1, "target"), "hooks.example", "notifiers[1].target: A webhook's target"),
        (("notifiers", 1, "name"), "finance", "duplicate notifier name 'finance'"),
        (("tenants", 0, "plan"), "gold", "tenants[0].plan: must be one of"),
        (("tenants", 0, "time_zone"), "Nowhere", "tenants[0].time_zone: 'Nowhere' is not"),
        (("tenants", 0, "gain_share_percent"), 150, "tenants[0].gain_share_percent: Ensure"),
        (("tenants", 0, "api_keys", 0, "plan"), "gold", "tenants[0].api_keys[0].plan: must be"),
    ],
)
def test_invalid_documents_name_the_path_and_apply_nothing(document, path, value, message):
    _set(document, path, value)
    with pytest.raises(ConfigError) as exc:
        _apply(document)
    assert message in str(exc.value)
    assert not Tenant.objects.exists() and not RateLimit.objects.exists()
    assert not Budget.objects.exists() and not Notifier.objects.exists()
