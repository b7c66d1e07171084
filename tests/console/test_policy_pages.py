"""Console pages of policies: every page renders for a security admin; a tenant admin sees and
writes only their tenant's policies; a read-only user sees them but changes nothing; an
auditor and an outsider are refused. The editor shows every validation problem next to its
field without saving, a simulation gives the engine's decision and why, and an impact preview
counts the logged requests of the draft's tenant whose decision would change."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.policies import services
from apps.policies.models import Policy
from apps.policies.views import HIDDEN
from apps.routing.models import RequestLog
from apps.tenants import roles
from apps.tenants.services import api_key_create, project_create, tenant_create

pytestmark = pytest.mark.django_db

NO_SECRETS = [
    {
        "id": "no-secrets",
        "when": [{"attr": "request.entities", "op": "contains", "value": "SECRET"}],
        "effect": {"type": "deny", "message": "Secrets never leave."},
    }
]
EU_ONLY = [{"id": "eu", "when": [], "effect": {"type": "route", "regions": ["eu"]}}]
NIGHT = [
    {
        "id": "night",
        "when": [{"attr": "request.hour", "op": "between", "value": [22, 6]}],
        "effect": {"type": "deny", "message": "Closed at night."},
    }
]
RESTRICTED = [
    {
        "id": "no-restricted",
        "when": [{"attr": "request.classification", "op": "eq", "value": "restricted"}],
        "effect": {"type": "deny", "message": "Restricted data stays home."},
    }
]


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def with_role(username: str, role: str):
    user = get_user_model().objects.create_user(username)
    roles.user_roles_set(user=user, roles=[role], actor=None, source="cli")
    return user


def tenant_role(tenant, username: str, role: str):
    user = get_user_model().objects.create_user(username)
    roles.tenant_role_set(user=user, tenant=tenant, role=role, actor=None, source="cli")
    return user


@pytest.fixture
def world():
    """Acme and Globex; a global policy, one of acme's and one of globex's; the cast."""
    acme = tenant_create(slug="acme", name="Acme")
    globex = tenant_create(slug="globex", name="Globex")
    web = project_create(tenant=acme, slug="web", name="Web shop")
    key_a, _ = api_key_create(tenant=acme, name="acme-key", project=web)
    key_b, _ = api_key_create(tenant=globex, name="globex-key")
    w = SimpleNamespace(acme=acme, globex=globex, web=web, key_a=key_a, key_b=key_b)
    w.global_policy = services.policy_create(
        tenant=None, name="no-secrets", priority=100, rules=NO_SECRETS
    )
    w.acme_policy = services.policy_create(
        tenant=acme,
        name="acme-eu",
        description="Acme's requests stay in the EU.",
        scope={"projects": ["web"]},
        rules=EU_ONLY,
    )
    w.globex_policy = services.policy_create(tenant=globex, name="globex-night", rules=NIGHT)
    w.security = with_role("sam", roles.SECURITY_ADMIN)
    w.read_only = with_role("rita", roles.READ_ONLY)
    w.auditor = with_role("aude", roles.AUDITOR)
    w.tenant_admin = tenant_role(acme, "tina", roles.TENANT_ADMIN)
    w.outsider = get_user_model().objects.create_user("otto")
    return w


def editor_data(policy: Policy | None = None, **changes) -> dict:
    """The editor's fields as a browser posts them."""
    data = {
        "name": "draft",
        "description": "",
        "mode": "enforce",
        "priority": "0",
        "enabled": "on",
        "scope_projects": "",
        "scope_keys": "",
        "scope_groups": "",
        "rules": "[]",
    }
    if policy is not None:
        data.update(
            name=policy.name,
            description=policy.description,
            mode=policy.mode,
            priority=str(policy.priority),
            rules=json.dumps(policy.rules),
            policy=str(policy.pk),
            scope_projects=", ".join(policy.scope.get("projects", [])),
            scope_keys=", ".join(policy.scope.get("keys", [])),
            scope_groups=", ".join(policy.scope.get("groups", [])),
        )
    for name, value in changes.items():
        data[name] = json.dumps(value) if name == "rules" and not isinstance(value, str) else value
    return data


def sample(**fields) -> dict:
    data = {
        "sample_endpoint": "chat",
        "sample_classification": "internal",
        "sample_tokens": "100",
        "sample_hour": "12",
        "sample_weekday": "2",
    }
    data.update({f"sample_{k}": v for k, v in fields.items()})
    return data


def listed(response) -> set[str]:
    assert response.status_code == 200, response.content[:500]
    return {p.name for p in response.context["page"].rows}


# --- every page -----------------------------------------------------------------------------


def test_every_page_renders_with_a_heading_and_no_inline_script_for_a_security_admin(world):
    client = signed_in(world.security)
    pages = [
        reverse("policies:policy-list"),
        reverse("policies:policy-add"),
        reverse("policies:policy-simulate"),
    ]
    for policy in (world.global_policy, world.acme_policy, world.globex_policy):
        for name in ("detail", "edit", "delete"):
            pages.append(reverse(f"policies:policy-{name}", args=[policy.pk]))
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.content.decode()
        assert "<h1>" in html, path
        assert "<script>" not in html and "style=" not in html, path


def test_the_menu_offers_policies_to_those_who_may_see_them(world):
    html = signed_in(world.read_only).get("/").content.decode()
    assert reverse("policies:policy-list") in html
    html = signed_in(world.auditor).get("/").content.decode()
    assert reverse("policies:policy-list") not in html


def test_the_list_shows_scope_priority_mode_and_rule_count_and_filters(world):
    client = signed_in(world.security)
    response = client.get(reverse("policies:policy-list"))
    assert listed(response) == {"no-secrets", "acme-eu", "globex-night"}
    html = response.content.decode()
    assert "projects web" in html and "all requests" in html
    assert listed(client.get(reverse("policies:policy-list"), {"tenant": "acme"})) == {"acme-eu"}
    assert listed(client.get(reverse("policies:policy-list"), {"owner": "global"})) == {
        "no-secrets"
    }
    services.policy_update(policy=world.globex_policy, mode="log_only", enabled=False)
    assert listed(client.get(reverse("policies:policy-list"), {"mode": "log_only"})) == {
        "globex-night"
    }
    assert listed(client.get(reverse("policies:policy-list"), {"enabled": "false"})) == {
        "globex-night"
    }


def test_the_list_costs_the_same_queries_for_three_policies_as_for_thirteen(
    world, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = signed_in(world.security)
    with CaptureQueriesContext(connection) as few:
        listed(client.get(reverse("policies:policy-list")))
    for i in range(10):
        services.policy_create(tenant=world.acme if i % 2 else None, name=f"more-{i}", rules=NIGHT)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(listed(client.get(reverse("policies:policy-list")))) == 13


def test_the_detail_page_reads_its_rules_and_links_its_history(world):
    response = signed_in(world.security).get(
        reverse("policies:policy-detail", args=[world.global_policy.pk])
    )
    html = response.content.decode()
    assert "request.entities contains SECRET" in html
    assert "deny (&quot;Secrets never leave.&quot;)" in html
    event = AuditEvent.objects.get(
        event_type="policy.created", resource_id=str(world.global_policy.pk)
    )
    assert reverse("audit:event-detail", args=[event.sequence]) in html


# --- who may do what ------------------------------------------------------------------------


def test_a_tenant_admin_sees_and_writes_only_their_tenants_policies(world):
    client = signed_in(world.tenant_admin)
    assert listed(client.get(reverse("policies:policy-list"))) == {"acme-eu"}
    assert listed(client.get(reverse("policies:policy-list"), {"tenant": "globex"})) == set()
    for policy in (world.globex_policy, world.global_policy):
        for name in ("detail", "edit", "delete"):
            assert (
                client.get(reverse(f"policies:policy-{name}", args=[policy.pk])).status_code == 404
            )
        answer = client.post(
            reverse("policies:policy-edit", args=[policy.pk]), editor_data(policy, priority="7")
        )
        assert answer.status_code == 404
    assert (
        client.get(reverse("policies:policy-edit", args=[world.acme_policy.pk])).status_code == 200
    )

    # A new policy: acme's only; another tenant, or every tenant, is not a choice.
    form = client.get(reverse("policies:policy-add")).context["form"]
    assert [t.slug for t in form.fields["tenant"].queryset] == ["acme"]
    for tenant in ("globex", ""):
        answer = client.post(
            reverse("policies:policy-add"), editor_data(name="sneaky", tenant=tenant)
        )
        assert answer.status_code == 200 and answer.context["form"].errors["tenant"]
    assert not Policy.objects.filter(name="sneaky").exists()
    answer = client.post(
        reverse("policies:policy-add"),
        editor_data(name="acme-restricted", tenant="acme", rules=RESTRICTED),
    )
    made = Policy.objects.get(name="acme-restricted")
    assert answer.status_code == 303 and made.tenant == world.acme
    assert answer["Location"] == reverse("policies:policy-detail", args=[made.pk])


def test_a_read_only_user_views_and_simulates_but_changes_nothing(world):
    client = signed_in(world.read_only)
    assert listed(client.get(reverse("policies:policy-list"))) == {
        "no-secrets",
        "acme-eu",
        "globex-night",
    }
    policy = world.acme_policy
    detail = client.get(reverse("policies:policy-detail", args=[policy.pk]))
    assert detail.status_code == 200
    assert reverse("policies:policy-edit", args=[policy.pk]) not in detail.content.decode()
    assert client.get(reverse("policies:policy-simulate")).status_code == 200
    refused = [
        client.get(reverse("policies:policy-add")),
        client.post(reverse("policies:policy-add"), editor_data(name="x")),
        client.get(reverse("policies:policy-edit", args=[policy.pk])),
        client.post(reverse("policies:policy-edit", args=[policy.pk]), editor_data(policy)),
        client.post(reverse("policies:policy-delete", args=[policy.pk])),
        client.post(reverse("policies:policy-validate"), editor_data(policy)),
        client.post(reverse("policies:policy-impact"), editor_data(policy)),
        client.post(
            reverse("policies:policy-simulate"),
            {**sample(), **editor_data(policy), "with_draft": "1"},
        ),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert Policy.objects.get(pk=policy.pk).version == 1


@pytest.mark.parametrize("who", ["auditor", "outsider"])
def test_an_auditor_and_an_outsider_are_refused(world, who):
    client = signed_in(getattr(world, who))
    pk = world.acme_policy.pk
    for path in (
        reverse("policies:policy-list"),
        reverse("policies:policy-add"),
        reverse("policies:policy-simulate"),
        reverse("policies:policy-detail", args=[pk]),
        reverse("policies:policy-edit", args=[pk]),
        reverse("policies:policy-delete", args=[pk]),
    ):
        assert client.get(path).status_code == 403, path
    for name in ("policy-validate", "policy-impact", "policy-simulate"):
        assert client.post(reverse(f"policies:{name}"), editor_data()).status_code == 403


def test_signed_out_visitors_are_sent_to_sign_in(world):
    answer = Client().get(reverse("policies:policy-list"))
    assert answer.status_code == 302 and "next=" in answer["Location"]
    assert Client().post(reverse("policies:policy-validate")).status_code == 401


# --- the editor -----------------------------------------------------------------------------


BROKEN = [
    {
        "id": "broken",
        "when": [
            {"attr": "request.colour", "op": "eq", "value": "red"},
            {"attr": "request.tokens", "op": "matches", "value": "x"},
        ],
        "effect": {"type": "deny"},
    },
    {
        "id": "never",
        "when": [
            {"attr": "request.tokens", "op": "gt", "value": 100},
            {"attr": "request.tokens", "op": "lt", "value": 50},
        ],
        "effect": {"type": "deny"},
    },
]


def test_saving_a_broken_draft_shows_every_problem_next_to_its_field_and_saves_nothing(world):
    client = signed_in(world.security)
    policy = world.acme_policy
    answer = client.post(
        reverse("policies:policy-edit", args=[policy.pk]),
        editor_data(policy, rules=BROKEN, scope_classifications="secret"),
    )
    assert answer.status_code == 200
    errors = answer.context["form"].errors
    rules = " ".join(errors["rules"])
    assert "rules[0].when[0].attr: unknown attribute 'request.colour'" in rules
    assert "rules[0].when[1].op:" in rules and "not 'matches'" in rules
    assert "rules[1].when:" in rules and "contradict" in rules
    assert "scope_classifications" in errors
    html = answer.content.decode()
    assert 'id="id_rules_error"' in html and "request.colour" in html
    assert Policy.objects.get(pk=policy.pk).rules == EU_ONLY

    # Through htmx: the form partial with its errors, 422.
    answer = client.post(
        reverse("policies:policy-edit", args=[policy.pk]),
        editor_data(policy, rules="[{not json"),
        HTTP_HX_REQUEST="true",
    )
    assert answer.status_code == 422
    assert "Not valid JSON or YAML" in answer.content.decode()
    assert "<h1>" not in answer.content.decode()


def test_validate_lists_errors_and_warnings_without_saving(world):
    client = signed_in(world.security)
    policy = world.acme_policy
    answer = client.post(
        reverse("policies:policy-validate"),
        editor_data(policy, rules=BROKEN),
        HTTP_HX_REQUEST="true",
    )
    assert answer.status_code == 200
    problems = answer.context["problems"]
    assert {p["path"] for p in problems} == {
        "rules[0].when[0].attr",
        "rules[0].when[1].op",
        "rules[1].when",
    }
    unreachable = [
        {"id": "all", "when": [], "effect": {"type": "deny"}},
        {
            "id": "late",
            "when": [{"attr": "request.tokens", "op": "gt", "value": 5}],
            "effect": {"type": "deny"},
        },
    ]
    answer = client.post(
        reverse("policies:policy-validate"), editor_data(policy, rules=unreachable)
    )
    [warning] = answer.context["problems"]
    assert warning["severity"] == "warning" and warning["path"] == "rules[1]"
    answer = client.post(reverse("policies:policy-validate"), editor_data(policy, rules=NIGHT))
    assert answer.context["problems"] == [] and 'data-problems="none"' in answer.content.decode()
    # A new policy's draft: its tenant comes from the form.
    answer = client.post(
        reverse("policies:policy-validate"), editor_data(name="bad name!", tenant="acme")
    )
    assert [p["path"] for p in answer.context["problems"]] == ["name"]
    assert Policy.objects.get(pk=policy.pk).version == 1


def test_a_valid_edit_is_saved_audited_and_warnings_are_told(world):
    client = signed_in(world.security)
    policy = world.acme_policy
    rules = [
        {"id": "all", "when": [], "effect": {"type": "route", "regions": ["eu"]}},
        {"id": "cap", "when": [], "effect": {"type": "cap_cost", "max_usd": 0.5}},
    ]
    answer = client.post(
        reverse("policies:policy-edit", args=[policy.pk]),
        editor_data(
            policy,
            rules=rules,
            priority="5",
            scope_groups="staff, contractors",
            scope_classifications=["internal", "confidential"],
        ),
        HTTP_HX_REQUEST="true",
    )
    assert answer.status_code == 204
    assert answer["HX-Redirect"] == reverse("policies:policy-detail", args=[policy.pk])
    policy.refresh_from_db()
    assert policy.priority == 5 and policy.version == 2 and policy.rules == rules
    assert policy.scope == {
        "projects": ["web"],
        "groups": ["staff", "contractors"],
        "classifications": ["internal", "confidential"],
    }
    assert AuditEvent.objects.filter(
        event_type="policy.updated", resource_id=str(policy.pk)
    ).exists()


def test_yaml_rules_are_accepted(world):
    client = signed_in(world.security)
    text = "- id: yaml-rule\n  when:\n    - {attr: request.tokens, op: gt, value: 1000}\n  effect: {type: deny}\n"
    answer = client.post(reverse("policies:policy-add"), editor_data(name="from-yaml", rules=text))
    assert answer.status_code == 303
    assert Policy.objects.get(name="from-yaml").rules[0]["when"][0]["value"] == 1000


def test_delete_asks_then_deletes(world):
    client = signed_in(world.security)
    path = reverse("policies:policy-delete", args=[world.globex_policy.pk])
    assert "Delete this policy?" in client.get(path, HTTP_HX_REQUEST="true").content.decode()
    answer = client.post(path)
    assert answer.status_code == 303 and answer["Location"] == reverse("policies:policy-list")
    assert not Policy.objects.filter(pk=world.globex_policy.pk).exists()
    assert AuditEvent.objects.filter(event_type="policy.deleted").exists()


# --- simulation -----------------------------------------------------------------------------


def simulate(client, data) -> dict:
    answer = client.post(reverse("policies:policy-simulate"), data, HTTP_HX_REQUEST="true")
    assert answer.status_code == 200, answer.content[:800]
    return answer.context["result"]


def test_a_simulation_gives_the_decision_and_the_rules_that_matched(world):
    client = signed_in(world.security)
    result = simulate(client, sample(tenant="acme", entities=["SECRET", "EMAIL"]))
    assert result["outcome"] == "denied"
    assert result["decision"]["name"] == "no-secrets"
    assert [(m["policy"], m["rule"]) for m in result["matched"]] == [("no-secrets", "no-secrets")]
    assert result["matched"][0]["why"] == "Secrets never leave."

    # The project by slug: acme-eu's scope names it so.
    result = simulate(client, sample(tenant="acme", project="web"))
    assert result["outcome"] == "constrained"
    assert result["decision"]["regions"] == ["eu"]
    assert [m["rule"] for m in result["matched"]] == ["eu"]
    assert [p["name"] for p in result["in_scope"]] == ["no-secrets", "acme-eu"]
    # Another project of acme's is out of acme-eu's scope.
    assert simulate(client, sample(tenant="acme", project="other"))["outcome"] == "allowed"

    # globex-night between 22 and 6 (wrapping around midnight).
    assert simulate(client, sample(tenant="globex", hour="23"))["outcome"] == "denied"
    assert simulate(client, sample(tenant="globex", hour="7"))["outcome"] == "allowed"


def test_a_simulation_with_the_draft_shows_what_it_changes(world):
    client = signed_in(world.security)
    policy = world.acme_policy
    data = {
        **sample(tenant="acme", project="web", classification="restricted"),
        **editor_data(policy, rules=RESTRICTED),
        "with_draft": "1",
    }
    result = simulate(client, data)
    assert result["outcome"] == "denied" and result["changed"] is True
    assert result["before"]["outcome"] == "constrained"
    assert result["matched"][0]["draft"] is True
    # The draft governs acme's requests: a sample of globex's is refused.
    answer = client.post(
        reverse("policies:policy-simulate"),
        {**data, "sample_tenant": "globex"},
        HTTP_HX_REQUEST="true",
    )
    assert answer.status_code == 422 and answer.context["sample_form"].errors["sample_tenant"]
    # A broken draft is not simulated: its problems are told instead.
    answer = client.post(
        reverse("policies:policy-simulate"),
        {**data, "rules": json.dumps(BROKEN)},
        HTTP_HX_REQUEST="true",
    )
    assert answer.status_code == 422 and answer.context["result"] is None
    assert "request.colour" in answer.content.decode()


def test_a_tenant_admin_simulates_their_tenant_only_and_sees_no_global_rule(world):
    client = signed_in(world.tenant_admin)
    form = client.get(reverse("policies:policy-simulate")).context["sample_form"]
    assert [t.slug for t in form.fields["sample_tenant"].queryset] == ["acme"]
    result = simulate(client, sample(tenant="acme", entities=["SECRET"]))
    assert result["outcome"] == "denied"
    [match] = result["matched"]
    assert match["policy"] == "no-secrets" and match["why"] == HIDDEN and match["rule"] == ""
    html = client.post(
        reverse("policies:policy-simulate"), sample(tenant="acme", entities=["SECRET"])
    ).content.decode()
    assert "request.entities contains" not in html
    answer = client.post(reverse("policies:policy-simulate"), sample(tenant="globex"))
    assert answer.status_code == 400 and answer.context["sample_form"].errors["sample_tenant"]


# --- impact preview -------------------------------------------------------------------------


def log(tenant, n: int, *, classification: str, key=None) -> list[RequestLog]:
    return [
        RequestLog.objects.create(
            request_id=f"{tenant.slug}-{classification}-{i}",
            endpoint="chat.completions",
            tenant=tenant,
            api_key=key,
            status=RequestLog.Status.SUCCESS,
            http_status=200,
            classification=classification,
            created_at=timezone.now().replace(hour=12),
        )
        for i in range(n)
    ]


def test_the_impact_preview_counts_the_tenants_requests_whose_decision_would_change(world):
    restricted = log(world.acme, 3, classification="restricted", key=world.key_a)
    log(world.acme, 4, classification="internal", key=world.key_a)
    log(world.globex, 5, classification="restricted", key=world.key_b)
    client = signed_in(world.security)
    data = editor_data(name="acme-restricted", tenant="acme", rules=RESTRICTED, last="100")
    answer = client.post(reverse("policies:policy-impact"), data, HTTP_HX_REQUEST="true")
    assert answer.status_code == 200, answer.content[:800]
    impact = answer.context["impact"]
    assert impact["replayed"] == 7  # acme's only
    assert impact["changed"] == 3 and impact["outcome_changed"] == 3
    # acme-eu routes every request of project web to the EU: constrained before.
    assert impact["before"] == {"allowed": 0, "constrained": 7, "denied": 0}
    assert impact["after"] == {"allowed": 0, "constrained": 4, "denied": 3}
    assert {r["request_id"] for r in impact["requests"]} == {r.request_id for r in restricted}
    html = answer.content.decode()
    assert "globex-" not in html
    # The security admin sees every tenant's requests (tenants.view_tenant): linked.
    assert reverse("routing:requestlog-detail", args=[restricted[0].pk]) in html

    # In log-only mode no decision changes.
    answer = client.post(reverse("policies:policy-impact"), {**data, "mode": "log_only"})
    assert answer.context["impact"]["changed"] == 0

    # Only the latest `last` requests are replayed.
    answer = client.post(reverse("policies:policy-impact"), {**data, "last": "2"})
    assert answer.context["impact"]["replayed"] == 2


def test_a_tenant_admin_previews_impact_on_their_tenant_with_links_to_its_requests(world):
    restricted = log(world.acme, 2, classification="restricted", key=world.key_a)
    log(world.globex, 2, classification="restricted", key=world.key_b)
    client = signed_in(world.tenant_admin)
    data = editor_data(world.acme_policy, rules=RESTRICTED)
    answer = client.post(reverse("policies:policy-impact"), data, HTTP_HX_REQUEST="true")
    impact = answer.context["impact"]
    assert impact["replayed"] == 2 and impact["changed"] == 2
    assert reverse("routing:requestlog-detail", args=[restricted[0].pk]) in answer.content.decode()
    # Another tenant's policy is not theirs to preview.
    data = editor_data(world.globex_policy, rules=RESTRICTED)
    assert client.post(reverse("policies:policy-impact"), data).status_code == 404


def test_the_impact_preview_refuses_a_broken_draft(world):
    client = signed_in(world.security)
    data = editor_data(world.acme_policy, rules=BROKEN)
    answer = client.post(reverse("policies:policy-impact"), data, HTTP_HX_REQUEST="true")
    assert answer.status_code == 422 and answer.context["impact"] is None
    assert re.search(r"rules\[0\]\.when\[0\]\.attr", answer.content.decode())
