"""Applying declarative configuration: create, idempotence, updates, prune, dry run, errors."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.providers.models import ModelDeployment, Provider
from apps.tenants.keys import hash_key
from apps.tenants.models import ApiKey, Tenant
from atp_site.lib.config_file import ConfigError, apply_config

pytestmark = pytest.mark.django_db

CI_KEY = "atp_ci-key-from-the-environment-7Qz4Kp"
LITERAL_PROVIDER_KEY = "sk-literal-provider-key"

DOCUMENT = """
version: 1
providers:
  - name: openai
    kind: openai
    base_url: https://api.openai.com/v1
    api_key: env:OPENAI_API_KEY
    region: us
    timeouts: {connect: 5, first_byte: 60, total: 600}
    models:
      - name: gpt-4o-mini
        aliases: [fast]
        prices: {input: 0.15, output: 0.60, cached_input: 0.075}
        context_window: 128000
        max_output_tokens: 16384
        capabilities: [chat, tools, vision, json, streaming]
        quality: 0.7
        region: us
      - name: gpt-4o
        upstream: gpt-4o-2024-08-06
        prices: {input: 2.5, output: 10}
        quality: 0.9
  - name: local
    kind: simulator
    api_key: sk-literal-provider-key
    models:
      - name: sim
tenants:
  - slug: acme
    name: Acme Corp
    api_keys:
      - name: ci
        key: env:ACME_CI_KEY
        allowed_models: [gpt-4o-mini]
        expires_at: 2099-01-01T00:00:00Z
      - name: dev
"""


@pytest.fixture
def document(monkeypatch) -> dict:
    monkeypatch.setenv("ACME_CI_KEY", CI_KEY)
    return yaml.safe_load(DOCUMENT)


def test_apply_creates_everything(document):
    report = apply_config(document)

    assert report.count("created") == 8
    openai = Provider.objects.get(name="openai")
    assert (openai.api_key_env, openai.has_stored_api_key) == ("OPENAI_API_KEY", False)
    assert (openai.connect_timeout, openai.total_timeout) == (5.0, 600.0)
    local = Provider.objects.get(name="local")
    assert local.has_stored_api_key and local.api_key_env == ""
    mini = ModelDeployment.objects.get(public_name="gpt-4o-mini")
    assert mini.upstream_model == "gpt-4o-mini"
    assert (mini.input_price, mini.cached_input_price) == (Decimal("0.15"), Decimal("0.075"))
    assert mini.aliases == ["fast"] and mini.quality_score == 0.7
    assert ModelDeployment.objects.get(public_name="gpt-4o").upstream_model == "gpt-4o-2024-08-06"

    ci = ApiKey.objects.get(name="ci")
    assert ci.key_hash == hash_key(CI_KEY) and ci.allowed_models == ["gpt-4o-mini"]
    dev_change = next(c for c in report.changes if c.name == "acme/dev")
    assert ApiKey.objects.get(name="dev").key_hash == hash_key(dev_change.secret)
    # A key supplied by the file is never echoed back.
    assert CI_KEY not in "\n".join(report.lines())


def test_second_apply_changes_nothing(document, django_capture_on_commit_callbacks):
    apply_config(document)
    with django_capture_on_commit_callbacks() as callbacks:
        report = apply_config(copy.deepcopy(document))
    assert not report.changed
    assert report.count("unchanged") == len(report.changes) == 8
    assert all(c.secret is None for c in report.changes)
    assert callbacks == []
    assert ApiKey.objects.count() == 2


def test_changed_fields_update_in_place(document):
    apply_config(document)
    before = ModelDeployment.objects.get(public_name="gpt-4o-mini").pk
    document["providers"][0]["models"][0]["prices"]["input"] = 0.2
    document["providers"][0]["models"][0]["aliases"] = ["fast", "cheap"]
    document["providers"][1]["api_key"] = "env:LOCAL_API_KEY"
    document["tenants"][0]["name"] = "Acme Corporation"
    document["tenants"][0]["api_keys"][1]["allowed_models"] = ["gpt-4o"]

    report = apply_config(document)

    updated = {(c.name, c.fields) for c in report.changes if c.action == "updated"}
    assert updated == {
        ("openai/gpt-4o-mini", ("aliases", "input_price")),
        ("local", ("api_key",)),
        ("acme", ("name",)),
        ("acme/dev", ("allowed_models",)),
    }
    mini = ModelDeployment.objects.get(public_name="gpt-4o-mini")
    assert mini.pk == before and mini.input_price == Decimal("0.2")
    local = Provider.objects.get(name="local")
    assert (local.api_key_env, local.has_stored_api_key) == ("LOCAL_API_KEY", False)
    assert Tenant.objects.get().name == "Acme Corporation"


def test_a_different_key_in_the_file_replaces_the_stored_one(document, monkeypatch):
    apply_config(document)
    old = ApiKey.objects.get(name="ci")
    monkeypatch.setenv("ACME_CI_KEY", "atp_the-new-ci-key-9f2Kx7Lm4Qv8Rw3")

    report = apply_config(document)

    assert [c.action for c in report.changes if c.name == "acme/ci"] == ["replaced"]
    old.refresh_from_db()
    assert old.is_revoked
    new = ApiKey.objects.get(name="ci", revoked_at__isnull=True)
    assert new.key_hash == hash_key("atp_the-new-ci-key-9f2Kx7Lm4Qv8Rw3")


def test_prune_removes_what_the_file_no_longer_lists(document, tenant_factory):
    apply_config(document)
    tenant_factory(slug="stray")
    document["providers"][0]["models"].pop()  # gpt-4o
    document["providers"].pop()  # local
    document["tenants"][0]["api_keys"].pop()  # dev

    kept = apply_config(copy.deepcopy(document))
    assert not kept.changed and Provider.objects.count() == 2

    report = apply_config(document, prune=True)

    done = {(c.kind, c.name, c.action) for c in report.changes if c.action != "unchanged"}
    assert done == {
        ("deployment", "openai/gpt-4o", "deleted"),
        ("provider", "local", "deleted"),
        ("api key", "acme/dev", "revoked"),
        ("tenant", "stray", "deleted"),
    }
    assert list(Provider.objects.values_list("name", flat=True)) == ["openai"]
    assert list(ModelDeployment.objects.values_list("public_name", flat=True)) == ["gpt-4o-mini"]
    assert ApiKey.objects.get(name="dev").is_revoked
    assert list(Tenant.objects.values_list("slug", flat=True)) == ["acme"]


def test_prune_leaves_sections_absent_from_the_file_alone(document):
    apply_config(document)
    report = apply_config({"version": 1, "tenants": document["tenants"]}, prune=True)
    assert not report.changed
    assert Provider.objects.count() == 2


def test_dry_run_reports_but_changes_nothing(document, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        report = apply_config(document, dry_run=True)
    assert report.count("created") == 8
    assert all(c.secret is None for c in report.changes)
    assert "Dry run" in report.summary()
    assert not Provider.objects.exists() and not Tenant.objects.exists()
    assert callbacks == []


def _set(document: dict, path: tuple, value) -> None:
    target = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("providers", 0, "models", 0, "prices", "input"),
            -1,
            "providers[0].models[0].prices.input: must be a number >= 0",
        ),
        (("providers", 1, "kind"), "skynet", "providers[1].kind: must be one of"),
        (("providers", 0, "modles"), [], "providers[0].modles: unknown key"),
        (("providers", 0, "models", 1, "name"), "gpt-4o-mini", "duplicate model name"),
        (("providers", 0, "models", 0, "quality"), 2, "models[0].quality: must be a number"),
        (("providers", 0, "timeouts", "connect"), 0, "providers[0].timeouts.connect"),
        (("providers", 0, "base_url"), None, "providers[0].base_url: A base URL is required"),
        (
            ("tenants", 0, "api_keys", 0, "key"),
            "short",
            "api_keys[0].key: key 'ci' must be at least 32",
        ),
        (("tenants", 0, "api_keys", 0, "expires_at"), "soon", "expires_at: must be a date"),
        (
            ("tenants", 0, "api_keys", 0, "expires_at"),
            "2001-01-01T00:00:00Z",
            "tenants[0].api_keys[0].expires_at: Must be in the future",
        ),
        (("tenants", 0, "slug"), "Not A Slug", "tenants[0].slug:"),
        (("version",), 2, "version: must be 1"),
    ],
)
def test_invalid_documents_name_the_path_and_apply_nothing(document, path, value, message):
    _set(document, path, value)
    with pytest.raises(ConfigError) as exc:
        apply_config(document)
    assert message in str(exc.value)
    assert not Provider.objects.exists()
    assert not Tenant.objects.exists()


def test_missing_environment_variable_for_a_key_is_an_error(document, monkeypatch):
    monkeypatch.delenv("ACME_CI_KEY")
    with pytest.raises(ConfigError) as exc:
        apply_config(document)
    assert str(exc.value) == (
        "tenants[0].api_keys[0].key: environment variable ACME_CI_KEY is not set"
    )


def test_provider_env_reference_is_never_resolved(document, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-should-not-be-stored")
    apply_config(document)
    stored = " ".join(str(v) for v in Provider.objects.values_list("api_key_encrypted", flat=True))
    assert "sk-from-env" not in stored
    assert Provider.objects.get(name="openai").api_key_encrypted == ""


def test_command_applies_and_prints_the_report(document, tmp_path, capsys):
    path = tmp_path / "atp.yaml"
    path.write_text(yaml.safe_dump(document))
    call_command("atp_apply", str(path))
    out = capsys.readouterr().out
    assert "provider openai: created" in out
    assert "key (shown once" in out
    call_command("atp_apply", str(path), "--dry-run")
    assert "Dry run, nothing applied: 0 created" in capsys.readouterr().out


def test_command_exits_2_on_an_invalid_file(tmp_path):
    path = tmp_path / "atp.yaml"
    path.write_text("version: 1\nproviders:\n  - name: x\n    kind: openai\n    bogus: 1\n")
    with pytest.raises(CommandError) as exc:
        call_command("atp_apply", str(path))
    assert exc.value.returncode == 2
    assert "providers[0].bogus: unknown key" in str(exc.value)
    with pytest.raises(CommandError) as exc:
        call_command("atp_apply", str(tmp_path / "missing.yaml"))
    assert exc.value.returncode == 2


# --- routes, retention policies and tenant settings -----------------------------------------

ROUTES_DOCUMENT = """
version: 1
tenants:
  - slug: acme
    store_bodies: true
    cost_mode: aggressive
    preferred_regions: [eu]
    carbon_aware: true
routes:
  - name: team/coding
    description: Code first
    strategy: learned
    tier: high
    candidates: [code-model, frontier]
    candidate_filter: {capabilities: [tools], min_quality: 0.6}
    fallbacks: [cheap]
    retry: {max_attempts: 3, initial_backoff_ms: 50, multiplier: 2, jitter: 0.2}
    timeouts: {connect: 2, total: 120}
    challenger: new-model
    challenger_share: 0.1
    cache_ttl_seconds: 300
  - name: atp/fast
    strategy: cheapest
    tier: fast
retention:
  - days: 365
  - classification: requests
    days: 90
  - tenant: acme
    classification: bodies
    days: 7
"""


@pytest.fixture
def routes_document() -> dict:
    return yaml.safe_load(ROUTES_DOCUMENT)


def test_apply_creates_routes_retention_policies_and_tenant_settings(routes_document):
    from apps.audit.models import AuditEvent, RetentionPolicy
    from apps.routing.models import Route

    report = apply_config(routes_document)

    assert report.count("created") == 6
    acme = Tenant.objects.get(slug="acme")
    assert acme.store_bodies and acme.cost_mode == "aggressive" and acme.carbon_aware
    assert acme.preferred_regions == ["eu"]
    coding = Route.objects.get(name="team/coding")
    assert (coding.strategy, coding.tier) == ("learned", "high")
    assert coding.candidates == ["code-model", "frontier"]
    assert coding.retry == {
        "max_attempts": 3,
        "initial_backoff_ms": 50,
        "multiplier": 2,
        "jitter": 0.2,
    }
    assert (coding.challenger, coding.challenger_share) == ("new-model", 0.1)
    fast = Route.objects.get(name="atp/fast")
    assert (fast.exploration_rate, fast.semantic_threshold, fast.candidates) == (0.1, 0.92, [])
    policies = {(p.tenant_id, p.classification, p.days) for p in RetentionPolicy.objects.all()}
    assert policies == {(None, "", 365), (None, "requests", 90), (acme.pk, "bodies", 7)}
    sources = set(
        AuditEvent.objects.filter(resource_type__in=["route", "retention_policy"]).values_list(
            "source", flat=True
        )
    )
    assert sources == {"config"}


def test_routes_and_retention_apply_idempotently_and_update_in_place(routes_document):
    from apps.audit.models import RetentionPolicy
    from apps.routing.models import Route

    apply_config(routes_document)
    assert not apply_config(copy.deepcopy(routes_document)).changed
    route_pk = Route.objects.get(name="team/coding").pk

    routes_document["routes"][0]["tier"] = "balanced"
    routes_document["routes"][0]["retry"] = {"max_attempts": 2}
    routes_document["retention"][2]["days"] = 14
    report = apply_config(routes_document)

    updated = {(c.kind, c.name, c.fields) for c in report.changes if c.action == "updated"}
    assert updated == {
        ("route", "team/coding", ("retry", "tier")),
        ("retention policy", "acme/bodies", ("days",)),
    }
    coding = Route.objects.get(name="team/coding")
    assert coding.pk == route_pk and coding.retry == {"max_attempts": 2}
    assert RetentionPolicy.objects.get(classification="bodies").days == 14


def test_prune_deletes_unlisted_routes_and_policies_only_in_present_sections(routes_document):
    from apps.audit.models import RetentionPolicy
    from apps.routing.models import Route

    apply_config(routes_document)
    routes_document["routes"].pop()  # atp/fast
    routes_document["retention"].pop(0)  # the 365-day default
    report = apply_config(routes_document, prune=True)

    done = {(c.kind, c.name, c.action) for c in report.changes if c.action != "unchanged"}
    assert done == {("route", "atp/fast", "deleted"), ("retention policy", "*/*", "deleted")}
    assert list(Route.objects.values_list("name", flat=True)) == ["team/coding"]
    assert RetentionPolicy.objects.count() == 2

    # A document without the sections leaves them alone, even with --prune.
    assert not apply_config({"version": 1}, prune=True).changed
    assert Route.objects.count() == 1 and RetentionPolicy.objects.count() == 2
    # An empty section prunes everything in it.
    apply_config({"version": 1, "routes": []}, prune=True)
    assert not Route.objects.exists() and RetentionPolicy.objects.count() == 2


def test_dry_run_of_routes_and_retention_changes_nothing(
    routes_document, django_capture_on_commit_callbacks
):
    from apps.audit.models import RetentionPolicy
    from apps.routing.models import Route

    with django_capture_on_commit_callbacks() as callbacks:
        report = apply_config(routes_document, dry_run=True)
    assert report.count("created") == 6
    assert not Route.objects.exists() and not RetentionPolicy.objects.exists()
    assert not Tenant.objects.exists()
    assert callbacks == []


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("routes", 0, "strategy"), "psychic", "routes[0].strategy: must be one of"),
        (("routes", 0, "tier"), "ultra", "routes[0].tier: must be one of"),
        (("routes", 0, "candidates"), "one", "routes[0].candidates: must be a list"),
        (("routes", 0, "retry"), {"max_attempts": 0}, "routes[0].retry: max_attempts: must be"),
        (("routes", 0, "retry"), {"tries": 2}, "routes[0].retry: Unknown key 'tries'"),
        (("routes", 0, "timeouts"), {"total": -1}, "routes[0].timeouts: total: must be"),
        (("routes", 0, "candidate_filter"), {"x": 1}, "routes[0].candidate_filter: Unknown"),
        (("routes", 0, "challenger_share"), 2, "routes[0].challenger_share: must be a number"),
        (("routes", 1, "name"), "team/coding", "duplicate route name 'team/coding'"),
        (("routes", 1, "name"), "bad name", "routes[1].name: Use letters"),
        (("routes", 1, "colour"), "red", "routes[1].colour: unknown key"),
        (("retention", 2, "tenant"), "nobody", "retention[2].tenant: no tenant with slug"),
        (("retention", 0, "days"), 0, "retention[0].days: must be a whole number >= 1"),
        (("retention", 1, "classification"), "", "duplicate retention policy"),
        (("tenants", 0, "cost_mode"), "stingy", "tenants[0].cost_mode: must be one of"),
        (("tenants", 0, "store_bodies"), "yes", "tenants[0].store_bodies: must be true or false"),
    ],
)
def test_invalid_routes_and_retention_name_the_path_and_apply_nothing(
    routes_document, path, value, message
):
    from apps.audit.models import RetentionPolicy
    from apps.routing.models import Route

    _set(routes_document, path, value)
    with pytest.raises(ConfigError) as exc:
        apply_config(routes_document)
    assert message in str(exc.value)
    assert not Route.objects.exists() and not RetentionPolicy.objects.exists()
    assert not Tenant.objects.exists()


def test_each_app_owns_its_sections_applied_in_order():
    """The document's sections come from the apps' config_sections modules, in order."""
    from atp_site.lib.config_file import sections

    found = [(s.key, type(s).__module__) for s in sections()]
    assert found == [
        ("providers", "apps.providers.config_sections"),
        ("prices", "apps.costs.config_sections.prices"),
        ("tenants", "apps.tenants.config_sections"),
        ("routes", "apps.routing.config_sections"),
        ("retention", "apps.audit.config_sections"),
        ("policies", "apps.policies.config_sections"),
        ("limits", "apps.costs.config_sections.limits"),
        ("budgets", "apps.costs.config_sections.limits"),
        ("notifiers", "apps.costs.config_sections.limits"),
    ]
    with pytest.raises(ConfigError, match="unknown key") as refused:
        apply_config({"version": 1, "guardrails": []})
    assert "retention" in str(refused.value) and "providers" in str(refused.value)


PROJECTS = """
version: 1
tenants:
  - slug: acme
    projects:
      - {slug: web, name: Web shop}
      - {slug: batch, description: Nightly jobs}
    api_keys:
      - {name: shop, project: web}
      - {name: loose}
"""


def test_projects_and_their_keys_apply_export_and_prune():
    from apps.tenants.models import ApiKey, Project
    from atp_site.lib.config_file import export_config

    report = apply_config(yaml.safe_load(PROJECTS))
    assert {c.name for c in report.changes if c.kind == "project"} == {"acme/web", "acme/batch"}
    shop = ApiKey.objects.get(name="shop")
    assert shop.project.slug == "web" and ApiKey.objects.get(name="loose").project is None
    exported = export_config()
    tenant = exported["tenants"][0]
    assert tenant["projects"] == [
        {"slug": "batch", "name": "batch", "description": "Nightly jobs"},
        {"slug": "web", "name": "Web shop"},
    ]
    assert {k["name"]: k.get("project") for k in tenant["api_keys"]} == {
        "loose": None,
        "shop": "web",
    }
    assert not apply_config(exported).changed  # the export applies as no change

    # The file moves the key out and drops a project: pruned, its keys keep working.
    smaller = yaml.safe_load(PROJECTS)
    smaller["tenants"][0]["projects"] = [{"slug": "batch"}]
    smaller["tenants"][0]["api_keys"][0].pop("project")
    apply_config(smaller, prune=True)
    assert list(Project.objects.values_list("slug", flat=True)) == ["batch"]
    shop.refresh_from_db()
    assert shop.project is None and shop.revoked_at is None

    wrong = yaml.safe_load(PROJECTS)
    wrong["tenants"][0]["api_keys"][0]["project"] = "nope"
    with pytest.raises(
        ConfigError, match=r"tenants\[0\]\.api_keys\[0\]\.project: .*no project 'nope'"
    ):
        apply_config(wrong)
