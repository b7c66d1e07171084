"""The configuration file's `policies` section: apply, idempotence, export round trip,
prune, errors reported at their path, audit events and the evaluator of the result."""

from __future__ import annotations

import copy

import pytest
import yaml

from apps.audit.models import AuditEvent
from apps.policies.engine import Facts, load_evaluator
from apps.policies.models import Policy
from atp_site.lib.config_file import ConfigError, apply_config, export_config

pytestmark = pytest.mark.django_db

DOCUMENT = """
version: 1
tenants:
  - slug: acme
    projects:
      - {slug: web}
  - slug: globex
policies:
  - name: eu-residency
    description: Restricted data stays in the EU.
    priority: 10
    scope: {classifications: [restricted]}
    rules:
      - id: eu-only
        when: [{attr: request.classification, op: eq, value: restricted}]
        effect: {type: route, regions: [eu]}
  - name: no-secrets
    tenant: acme
    priority: 5
    scope: {projects: [web]}
    rules:
      - id: deny-secrets
        when: [{attr: request.entities, op: contains, value: SECRET}]
        effect: {type: deny, message: Secrets stay home.}
  - name: no-secrets
    tenant: globex
    mode: log_only
    rules:
      - when: [{attr: request.entities, op: contains, value: SECRET}]
        effect: {type: deny}
"""


def document():
    return yaml.safe_load(DOCUMENT)


def test_apply_creates_policies_through_the_services():
    report = apply_config(document())
    assert report.count("created") >= 3
    acme = Policy.objects.get(tenant__slug="acme", name="no-secrets")
    assert acme.priority == 5 and acme.rules[0]["id"] == "deny-secrets"
    trial = Policy.objects.get(tenant__slug="globex")
    assert trial.mode == "log_only" and trial.rules[0]["id"] == "rule-1"
    assert Policy.objects.get(tenant=None).scope == {"classifications": ["restricted"]}
    assert AuditEvent.objects.filter(event_type="policy.created").count() == 3


def test_the_applied_policies_are_what_the_gateway_evaluates():
    apply_config(document())
    acme = Policy.objects.get(tenant__slug="acme")
    project = acme.tenant.projects.get(slug="web")
    evaluator = load_evaluator()
    assert len(evaluator) == 3
    secret = Facts(
        tenant="acme",
        tenant_id=str(acme.tenant_id),
        project=str(project.pk),  # requests carry the project's id; the file names its slug
        entities=frozenset({"SECRET"}),
    )
    decision = evaluator.evaluate(secret)
    assert decision.denied is not None and decision.denied.why == "Secrets stay home."
    other_project = Facts(tenant_id=str(acme.tenant_id), entities=frozenset({"SECRET"}))
    assert evaluator.evaluate(other_project).denied is None


def test_applying_twice_changes_nothing():
    apply_config(document())
    again = apply_config(document())
    assert not again.changed
    assert Policy.objects.get(tenant=None).version == 1


def test_export_round_trips():
    apply_config(document())
    exported = export_config()
    assert [p["name"] for p in exported["policies"]] == ["eu-residency", "no-secrets", "no-secrets"]
    before = {
        (p.tenant_id, p.name): (p.rules, p.scope, p.priority, p.mode, p.description)
        for p in Policy.objects.all()
    }
    Policy.objects.all().delete()
    apply_config(copy.deepcopy(exported))
    after = {
        (p.tenant_id, p.name): (p.rules, p.scope, p.priority, p.mode, p.description)
        for p in Policy.objects.all()
    }
    assert after == before
    assert not apply_config(copy.deepcopy(exported)).changed


def test_a_changed_item_updates_and_bumps_the_version():
    apply_config(document())
    data = document()
    data["policies"][0]["rules"][0]["effect"]["regions"] = ["eu-west-1"]
    report = apply_config(data)
    assert report.count("updated") == 1
    policy = Policy.objects.get(tenant=None)
    assert policy.version == 2 and policy.rules[0]["effect"]["regions"] == ["eu-west-1"]
    assert AuditEvent.objects.filter(event_type="policy.updated").count() == 1


def test_prune_deletes_policies_the_file_does_not_name():
    apply_config(document())
    data = document()
    data["policies"] = data["policies"][:1]
    apply_config(data, prune=True)
    assert list(Policy.objects.values_list("name", flat=True)) == ["eu-residency"]
    assert AuditEvent.objects.filter(event_type="policy.deleted").count() == 2


def test_a_bad_rule_is_reported_at_its_path_and_nothing_is_applied():
    data = document()
    data["policies"][1]["rules"][0]["when"][0]["op"] = "resembles"
    with pytest.raises(ConfigError) as caught:
        apply_config(data)
    assert caught.value.path == "policies[1].rules[0].when[0].op"
    assert not Policy.objects.exists()


def test_duplicate_policies_and_unknown_tenants_are_errors():
    data = document()
    data["policies"].append(copy.deepcopy(data["policies"][1]))
    with pytest.raises(ConfigError, match="duplicate policy 'acme/no-secrets'"):
        apply_config(data)
    data = document()
    data["policies"][1]["tenant"] = "initech"
    with pytest.raises(ConfigError, match="no tenant with slug 'initech'"):
        apply_config(data)


def test_a_loaded_evaluator_makes_no_query(django_assert_num_queries):
    apply_config(document())
    acme = Policy.objects.get(tenant__slug="acme")
    evaluator = load_evaluator()
    with django_assert_num_queries(0):
        for classification in ("internal", "restricted"):
            evaluator.evaluate(
                Facts(
                    tenant_id=str(acme.tenant_id),
                    classification=classification,
                    entities=frozenset({"SECRET"}),
                )
            )
