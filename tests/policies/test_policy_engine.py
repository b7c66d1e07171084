"""The policy evaluator (apps.policies.engine) and validation (apps.policies.validation):
evaluation order, log-only, scope, every operator, every effect's merge, deployments."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest

from apps.policies.engine import (
    ALLOW,
    EMPTY,
    Facts,
    PolicySpec,
    compile_policies,
)
from apps.policies.validation import has_errors, validate_policy

T1, T2 = "tenant-1", "tenant-2"


def rule(*when, effect=None, id=None):
    out = {"when": list(when), "effect": effect or {"type": "deny", "message": "no"}}
    if id:
        out["id"] = id
    return out


def cond(attr, op, value=True):
    return {"attr": attr, "op": op, "value": value}


def policy(name, *rules, tenant=None, priority=0, mode="enforce", scope=None, id=0):
    return PolicySpec(
        name=name,
        rules=list(rules),
        id=id,
        tenant_id=tenant,
        tenant=f"slug-{tenant}" if tenant else "",
        priority=priority,
        mode=mode,
        scope=scope or {},
    )


def facts(**kw):
    kw.setdefault("tenant_id", T1)
    kw.setdefault("tenant", f"slug-{kw['tenant_id']}")
    return Facts(**kw)


def dep(name="m", provider="openai", region="us-east-1", kind="openai", caps=(), price="1"):
    return SimpleNamespace(
        public_name=name,
        provider_name=provider,
        region=region,
        capabilities=frozenset(caps),
        prices=SimpleNamespace(input=Decimal(price), output=Decimal(price)),
        target=SimpleNamespace(kind=kind),
    )


def evaluate(specs, **kw):
    return compile_policies(specs).evaluate(facts(**kw))


# --- nothing to do -------------------------------------------------------------------------


def test_no_policies_allow_everything_cheaply():
    assert len(EMPTY) == 0
    assert EMPTY.evaluate(facts()) is ALLOW
    assert compile_policies([]) is EMPTY
    assert ALLOW.deployment_reason(dep()) is None
    assert ALLOW.to_dict() == {"outcome": "allowed", "matched": []}


def test_disabled_policies_are_not_compiled():
    spec = policy("off", rule())
    spec = PolicySpec(**{**{f: getattr(spec, f) for f in spec.__slots__}, "enabled": False})
    assert len(compile_policies([spec])) == 0


# --- order ---------------------------------------------------------------------------------


def test_deny_wins_over_an_allow_of_higher_priority_from_another_owner():
    specs = [
        policy("tenant-allow", rule(effect={"type": "allow"}), tenant=T1, priority=100),
        policy("global-deny", rule(effect={"type": "deny", "message": "stop"}), priority=1),
    ]
    decision = evaluate(specs)
    assert decision.denied is not None and decision.denied.policy == "global-deny"
    assert decision.denied.why == "stop"
    assert decision.outcome == "denied"


def test_deny_wins_over_an_allow_at_the_same_priority():
    specs = [
        policy("a-allow", rule(effect={"type": "allow"}), priority=5),
        policy("b-deny", rule(), priority=5),
    ]
    assert evaluate(specs).denied.policy == "b-deny"


def test_an_allow_skips_lower_priority_policies_of_its_owner_only():
    specs = [
        policy(
            "vip",
            rule(cond("subject.groups", "contains", "vip"), effect={"type": "allow"}),
            tenant=T1,
            priority=10,
        ),
        policy("tenant-deny", rule(), tenant=T1, priority=1),
        policy(
            "global-redact", rule(effect={"type": "redact", "entities": ["EMAIL"], "mode": "mask"})
        ),
    ]
    vip = evaluate(specs, groups=frozenset({"vip"}))
    assert vip.denied is None
    assert dict(vip.redact) == {"EMAIL": "mask"}  # the global policy still applies
    assert [m.policy for m in vip.matched] == ["vip", "global-redact"]
    other = evaluate(specs)
    assert other.denied.policy == "tenant-deny"


def test_a_tenant_allow_never_skips_a_global_deny():
    specs = [
        policy("escape", rule(effect={"type": "allow"}), tenant=T1, priority=1000),
        policy("global", rule(), priority=-5),
    ]
    assert evaluate(specs).denied.policy == "global"


def test_matches_come_in_walk_order():
    specs = [
        policy("low", rule(effect={"type": "retention", "days": 9}), priority=1),
        policy("high-global", rule(effect={"type": "retention", "days": 7}), priority=5),
        policy("high-tenant", rule(effect={"type": "retention", "days": 8}), tenant=T1, priority=5),
        policy("b", rule(effect={"type": "retention", "days": 6}), priority=5),
    ]
    decision = evaluate(specs)
    assert [m.policy for m in decision.matched] == ["high-tenant", "b", "high-global", "low"]
    assert decision.retention_days == 6


def test_the_first_deny_in_walk_order_is_reported():
    specs = [
        policy("second", rule(effect={"type": "deny", "message": "2"}), priority=1),
        policy("first", rule(effect={"type": "deny", "message": "1"}), priority=2),
    ]
    assert evaluate(specs).denied.policy == "first"


# --- log-only --------------------------------------------------------------------------------


def test_log_only_policies_report_and_change_nothing():
    specs = [
        policy("trial", rule(effect={"type": "deny", "message": "would"}), mode="log_only"),
        policy(
            "redact",
            rule(effect={"type": "redact", "entities": ["*"], "mode": "hash"}),
            mode="log_only",
        ),
    ]
    decision = evaluate(specs)
    assert decision.denied is None and not decision.redact
    assert [(m.policy, m.log_only) for m in decision.logged] == [("redact", True), ("trial", True)]
    assert decision.matched == ()
    assert decision.outcome == "allowed"
    assert decision.to_dict()["logged"][1]["why"] == "would"


def test_a_log_only_allow_does_not_skip_anything():
    specs = [
        policy(
            "trial-allow", rule(effect={"type": "allow"}), tenant=T1, priority=9, mode="log_only"
        ),
        policy("deny", rule(), tenant=T1, priority=1),
    ]
    assert evaluate(specs).denied.policy == "deny"


# --- scope -----------------------------------------------------------------------------------


def test_requests_see_global_policies_and_their_tenants_only():
    specs = [
        policy("mine", rule(effect={"type": "cap_cost", "max_usd": 1}), tenant=T1),
        policy("theirs", rule(), tenant=T2),
        policy("everyone", rule(effect={"type": "retention", "days": 3})),
    ]
    evaluator = compile_policies(specs)
    mine = evaluator.evaluate(facts())
    assert mine.denied is None and mine.max_cost_usd == 1 and mine.retention_days == 3
    assert evaluator.evaluate(facts(tenant_id=T2)).denied.policy == "theirs"
    stranger = evaluator.evaluate(facts(tenant_id="t3"))
    assert [m.policy for m in stranger.matched] == ["everyone"]


def test_a_request_naming_its_tenant_by_slug_finds_its_policies():
    evaluator = compile_policies([policy("mine", rule(), tenant=T1)])
    assert evaluator.evaluate(Facts(tenant=f"slug-{T1}")).denied is not None


@pytest.mark.parametrize(
    ("scope", "kw", "applies"),
    [
        ({"projects": ["p1"]}, {"project": "p1"}, True),
        ({"projects": ["p1"]}, {"project": "p2"}, False),
        ({"keys": ["k1"]}, {"key": "k1"}, True),
        ({"keys": ["k1"]}, {}, False),
        ({"groups": ["a", "b"]}, {"groups": frozenset({"b", "c"})}, True),
        ({"groups": ["a"]}, {"groups": frozenset({"c"})}, False),
        ({"classifications": ["restricted"]}, {"classification": "restricted"}, True),
        ({"classifications": ["restricted"]}, {"classification": "internal"}, False),
        ({"projects": ["p1"], "keys": ["k1"]}, {"project": "p1", "key": "k2"}, False),
    ],
)
def test_scope(scope, kw, applies):
    decision = evaluate([policy("scoped", rule(), scope=scope)], **kw)
    assert (decision.denied is not None) is applies
    # The specialised and the unspecialised walks agree.
    decision = evaluate([policy("scoped", rule(), scope=scope)], endpoint="unknown", **kw)
    assert (decision.denied is not None) is applies


# --- operators -------------------------------------------------------------------------------

OPERATOR_CASES = [
    (cond("subject.role", "eq", "admin"), {"role": "admin"}, {"role": "dev"}),
    (cond("subject.role", "ne", "admin"), {"role": "dev"}, {"role": "admin"}),
    (
        cond("request.endpoint", "in", ["chat", "messages"]),
        {"endpoint": "messages"},
        {"endpoint": "embeddings"},
    ),
    (cond("request.model", "not_in", ["gpt-4o"]), {"model": "llama"}, {"model": "gpt-4o"}),
    (
        cond("subject.groups", "contains", "hr"),
        {"groups": frozenset({"hr", "x"})},
        {"groups": frozenset({"x"})},
    ),
    (
        cond("request.entities", "contains", ["EMAIL", "PHONE"]),
        {"entities": frozenset({"EMAIL", "PHONE"})},
        {"entities": frozenset({"EMAIL"})},
    ),
    (
        cond("request.entities", "contains_any", ["CARD", "IBAN"]),
        {"entities": frozenset({"IBAN"})},
        {"entities": frozenset({"EMAIL"})},
    ),
    (cond("request.tokens", "gt", 100), {"tokens": 101}, {"tokens": 100}),
    (cond("request.tokens", "gte", 100), {"tokens": 100}, {"tokens": 99}),
    (cond("request.cost_usd", "lt", 0.5), {"cost_usd": 0.49}, {"cost_usd": 0.5}),
    (cond("request.cost_usd", "lte", 0.5), {"cost_usd": 0.5}, {"cost_usd": 0.51}),
    (cond("request.hour", "between", [9, 17]), {"hour": 17}, {"hour": 18}),
    (cond("request.hour", "between", [22, 6]), {"hour": 2}, {"hour": 12}),
    (cond("request.weekday", "in", [5, 6]), {"weekday": 6}, {"weekday": 0}),
    (
        cond("request.classification", "gte", "confidential"),
        {"classification": "restricted"},
        {"classification": "internal"},
    ),
    (
        cond("request.classification", "lt", "internal"),
        {"classification": "public"},
        {"classification": "internal"},
    ),
    (
        cond("request.classification", "between", ["internal", "confidential"]),
        {"classification": "internal"},
        {"classification": "restricted"},
    ),
    (cond("request.model", "matches", "^gpt-4"), {"model": "gpt-4o"}, {"model": "o1-gpt-4"}),
    (cond("subject.end_user", "exists", True), {"end_user": "u1"}, {"end_user": ""}),
    (cond("subject.end_user", "exists", False), {"end_user": ""}, {"end_user": "u1"}),
    (cond("request.hints.tier", "eq", "fast"), {"hints": {"tier": "fast"}}, {"hints": {"tier": 3}}),
    (
        cond("request.hints.budget", "gt", 5),
        {"hints": {"budget": 6}},
        {"hints": {"budget": "lots"}},
    ),
    (
        cond("request.hints.tier", "exists", True),
        {"hints": {"tier": None, "x": 1} | {"tier": "a"}},
        {"hints": {}},
    ),
    (
        cond("request.hints.tier", "in", ["a", "b"]),
        {"hints": {"tier": "b"}},
        {"hints": {"tier": ["a"]}},
    ),
    (
        cond("request.hints.tier", "matches", "^a"),
        {"hints": {"tier": "ab"}},
        {"hints": {"tier": 1}},
    ),
]


@pytest.mark.parametrize(("condition", "yes", "no"), OPERATOR_CASES, ids=lambda c: str(c)[:50])
def test_each_operator(condition, yes, no):
    assert not has_errors(
        validate_policy({"name": "p", "rules": [rule(condition)]}, with_others=False)
    )
    specs = [policy("p", rule(condition))]
    assert evaluate(specs, **yes).denied is not None
    assert evaluate(specs, **no).denied is None


def test_an_unknown_classification_never_satisfies_an_ordered_test():
    specs = [policy("p", rule(cond("request.classification", "lte", "restricted")))]
    assert evaluate(specs, classification="bogus").denied is None
    assert evaluate(specs, classification="public").denied is not None


# --- effects ---------------------------------------------------------------------------------


def test_redaction_modes_merge_to_the_strongest():
    specs = [
        policy(
            "a", rule(effect={"type": "redact", "entities": ["EMAIL", "PHONE"], "mode": "mask"})
        ),
        policy("b", rule(effect={"type": "redact", "entities": ["EMAIL"], "mode": "remove"})),
        policy("c", rule(effect={"type": "redact", "entities": ["PHONE"], "mode": "hash"})),
        policy("d", rule(effect={"type": "redact", "entities": ["EMAIL"], "mode": "hash"})),
    ]
    assert dict(evaluate(specs).redact) == {"EMAIL": "remove", "PHONE": "hash"}


def test_a_star_redaction_raises_every_named_type_to_its_mode():
    specs = [
        policy("all", rule(effect={"type": "redact", "entities": ["*"], "mode": "hash"})),
        policy("email", rule(effect={"type": "redact", "entities": ["EMAIL"], "mode": "mask"})),
        policy("card", rule(effect={"type": "redact", "entities": ["CARD"], "mode": "block"})),
    ]
    assert dict(evaluate(specs).redact) == {"*": "hash", "EMAIL": "hash", "CARD": "block"}


def test_route_constraints_combine():
    specs = [
        policy("eu", rule(effect={"type": "route", "regions": ["eu"]})),
        policy(
            "two",
            rule(
                effect={
                    "type": "route",
                    "regions": ["eu-west-1", "us-east-1"],
                    "exclude_providers": ["x"],
                }
            ),
        ),
        policy(
            "local",
            rule(
                cond("request.classification", "eq", "restricted"),
                effect={"type": "route", "local_only": True},
            ),
        ),
        policy("no-y", rule(effect={"type": "route", "exclude_providers": ["y"]})),
    ]
    internal = evaluate(specs)
    assert internal.regions == ("eu-west-1",)
    assert internal.exclude_providers == frozenset({"x", "y"})
    assert internal.local_only is False
    assert evaluate(specs, classification="restricted").local_only is True


def test_disjoint_regions_leave_none():
    specs = [
        policy("eu", rule(effect={"type": "route", "regions": ["eu"]})),
        policy("us", rule(effect={"type": "route", "regions": ["us"]})),
    ]
    decision = evaluate(specs)
    assert decision.regions == ()
    assert "allows regions" in decision.deployment_reason(dep(region="eu-west-1"))


def test_the_lowest_cap_and_the_shortest_retention_win():
    specs = [
        policy(
            "a",
            rule(effect={"type": "cap_cost", "max_usd": 0.5}),
            rule(effect={"type": "retention", "days": 30}),
        ),
        policy(
            "b",
            rule(effect={"type": "cap_cost", "max_usd": 0.05}),
            rule(effect={"type": "retention", "days": 90}),
        ),
    ]
    decision = evaluate(specs)
    assert decision.max_cost_usd == 0.05 and decision.retention_days == 30


def test_guards_take_the_strongest_action_then_the_lowest_threshold():
    specs = [
        policy(
            "flag",
            rule(effect={"type": "guard", "injection": {"threshold": 0.3, "action": "flag"}}),
        ),
        policy(
            "block-9",
            rule(effect={"type": "guard", "injection": {"threshold": 0.9, "action": "block"}}),
        ),
        policy(
            "block-7",
            rule(
                effect={
                    "type": "guard",
                    "injection": {"threshold": 0.7, "action": "block"},
                    "egress": {"entities": ["SECRET"], "mode": "mask"},
                }
            ),
        ),
        policy(
            "egress",
            rule(effect={"type": "guard", "egress": {"entities": ["EMAIL"], "mode": "block"}}),
        ),
    ]
    decision = evaluate(specs)
    assert decision.injection == (0.7, "block")
    assert decision.egress == (frozenset({"SECRET", "EMAIL"}), "block")


def test_to_dict_names_the_denial_for_the_compliance_report():
    decision = evaluate(
        [policy("no-secrets", rule(effect={"type": "deny", "message": "secrets stay"}), id=7)]
    )
    record = decision.to_dict()
    assert record["outcome"] == "denied"
    assert (record["name"], record["id"], record["reason"]) == ("no-secrets", 7, "secrets stay")
    import json

    json.dumps(record)


# --- deployments -----------------------------------------------------------------------------


def test_deployment_reason_names_the_policy():
    specs = [
        policy(
            "residency",
            rule(
                cond("request.classification", "gte", "confidential"),
                effect={"type": "route", "regions": ["eu"]},
            ),
        ),
        policy("no-acme", rule(effect={"type": "route", "exclude_providers": ["acme-ai"]})),
    ]
    decision = evaluate(specs, classification="confidential")
    assert decision.deployment_reason(dep(region="eu-central-1")) is None
    assert decision.deployment_reason(dep(region="us-east-1")) == (
        "policy 'residency' allows regions eu only"
    )
    assert (
        decision.deployment_reason(dep(provider="acme-ai", region="eu-west-1"))
        == "policy 'no-acme' excludes provider acme-ai"
    )


def test_local_only_keeps_local_runtimes():
    decision = evaluate([policy("local", rule(effect={"type": "route", "local_only": True}))])
    assert decision.deployment_reason(dep(kind="ollama")) is None
    assert decision.deployment_reason(dep(kind="simulator")) is None
    assert decision.deployment_reason(dep(caps=["local"])) is None
    assert decision.deployment_reason(dep()) == "policy 'local' allows local models only"


def test_a_deny_over_resource_attributes_removes_deployments_not_the_request():
    specs = [
        policy(
            "pricey",
            rule(
                cond("request.classification", "eq", "internal"),
                cond("resource.input_price", "gt", 10),
                effect={"type": "deny", "message": "too expensive"},
                id="cap",
            ),
        ),
        policy(
            "no-vision-on-x",
            rule(
                cond("resource.provider", "in", ["X"]),
                cond("resource.capabilities", "contains", "vision"),
            ),
        ),
    ]
    decision = evaluate(specs)
    assert decision.denied is None and decision.has_resource_rules
    assert decision.deployment_reason(dep(price="5")) is None
    assert (
        decision.deployment_reason(dep(price="15")) == "policy 'pricey' rule 'cap': too expensive"
    )
    assert decision.deployment_reason(dep(provider="x", caps=["vision"])) is not None
    assert decision.deployment_reason(dep(provider="x")) is None
    # Its request condition gates it.
    public = evaluate(specs, classification="public")
    assert public.deployment_reason(dep(price="15")) is None


# --- validation ------------------------------------------------------------------------------


def problems(draft, **kw):
    kw.setdefault("with_others", False)
    return validate_policy({"name": "p", **draft}, **kw)


def codes(found):
    return {(p["path"], p["code"]) for p in found}


def test_unknown_attributes_and_bad_operators_are_errors():
    found = problems(
        {
            "rules": [
                rule(
                    cond("request.colour", "eq", "red"),
                    cond("request.tokens", "matches", "x"),
                    cond("subject.role", "like", "a"),
                )
            ]
        }
    )
    assert codes(found) == {
        ("rules[0].when[0].attr", "unknown_attribute"),
        ("rules[0].when[1].op", "bad_operator"),
        ("rules[0].when[2].op", "bad_operator"),
    }


@pytest.mark.parametrize(
    "condition",
    [
        cond("request.classification", "eq", "secret"),
        cond("request.entities", "contains", "NAME"),
        cond("request.hour", "eq", 24),
        cond("request.tokens", "gt", "many"),
        cond("request.endpoint", "in", "chat"),
        cond("request.model", "matches", "("),
        cond("request.model", "matches", "a" * 201),
        cond("resource.local", "eq", "yes"),
        cond("request.tokens", "between", [1]),
        {"attr": "request.model", "op": "eq"},
    ],
)
def test_bad_values_are_errors(condition):
    found = problems({"rules": [rule(condition)]})
    assert has_errors(found), found


@pytest.mark.parametrize(
    "when",
    [
        [cond("request.endpoint", "in", [])],
        [cond("subject.role", "eq", "a"), cond("subject.role", "eq", "b")],
        [cond("subject.role", "eq", "a"), cond("subject.role", "ne", "a")],
        [cond("subject.role", "in", ["a", "b"]), cond("subject.role", "not_in", ["a", "b"])],
        [cond("request.tokens", "gt", 5), cond("request.tokens", "lt", 3)],
        [cond("request.tokens", "lt", 0)],
        [
            cond("request.classification", "gte", "restricted"),
            cond("request.classification", "lt", "confidential"),
        ],
        [cond("request.entities", "contains_any", [])],
        [cond("request.entities", "contains", "EMAIL"), cond("request.entities", "exists", False)],
        [cond("request.cost_usd", "between", [2, 1])],
        [cond("request.tokens", "gt", 5), cond("request.tokens", "lt", 6)],
    ],
)
def test_contradictory_rules_are_errors(when):
    found = problems({"rules": [rule(*when)]})
    assert any(p["code"] == "contradiction" for p in found), found


def test_satisfiable_rules_pass():
    found = problems(
        {
            "rules": [
                rule(cond("request.tokens", "gt", 5), cond("request.tokens", "lt", 7)),
                rule(cond("request.cost_usd", "gt", 5), cond("request.cost_usd", "lt", 5.01)),
                rule(cond("request.hour", "between", [22, 6]), cond("request.hour", "ne", 23)),
                rule(cond("subject.role", "in", ["a", "b"]), cond("subject.role", "ne", "a")),
            ]
        }
    )
    assert found == []


def test_resource_conditions_need_a_deny():
    found = problems(
        {"rules": [rule(cond("resource.region", "eq", "eu"), effect={"type": "allow"})]}
    )
    assert codes(found) == {("rules[0].when[0].attr", "resource_condition")}


@pytest.mark.parametrize(
    "effect",
    [
        {"type": "explode"},
        {"type": "redact", "entities": ["EMAIL"], "mode": "shred"},
        {"type": "redact", "entities": ["SHOE"], "mode": "mask"},
        {"type": "route"},
        {"type": "cap_cost", "max_usd": 0},
        {"type": "retention", "days": -1},
        {"type": "guard"},
        {"type": "guard", "injection": {"threshold": 2, "action": "block"}},
        {"type": "deny", "colour": "red"},
    ],
)
def test_bad_effects_are_errors(effect):
    assert has_errors(problems({"rules": [rule(effect=effect)]}))


def test_rules_after_an_unconditional_deny_are_unreachable():
    found = problems(
        {"rules": [rule(id="all"), rule(cond("subject.role", "eq", "x"), effect={"type": "allow"})]}
    )
    assert [(p["path"], p["code"], p["severity"]) for p in found] == [
        ("rules[1]", "unreachable", "warning")
    ]


def test_a_policy_under_an_unconditional_deny_of_higher_priority_is_unreachable():
    others = [policy("lockdown", rule(), priority=10)]
    draft = {
        "priority": 1,
        "rules": [rule(cond("subject.role", "eq", "x"), effect={"type": "allow"})],
    }
    found = problems(draft, others=others, with_others=True, tenant_id=T1)
    assert [(p["code"], p["severity"]) for p in found] == [("unreachable", "warning")]
    assert "lockdown" in found[0]["message"]
    # Not when the deny is narrower than the draft, of another tenant, or only logs.
    narrower = [policy("lockdown", rule(), priority=10, scope={"groups": ["g"]})]
    assert problems(draft, others=narrower, with_others=True, tenant_id=T1) == []
    elsewhere = [policy("lockdown", rule(), priority=10, tenant=T2)]
    assert problems(draft, others=elsewhere, with_others=True, tenant_id=T1) == []
    trial = [policy("lockdown", rule(), priority=10, mode="log_only")]
    assert problems(draft, others=trial, with_others=True, tenant_id=T1) == []


def test_a_policy_under_an_unconditional_allow_of_its_owner_is_unreachable():
    others = [policy("open", rule(effect={"type": "allow"}), tenant=T1, priority=10)]
    draft = {"priority": 1, "rules": [rule()]}
    found = problems(draft, others=others, with_others=True, tenant_id=T1)
    assert [p["code"] for p in found] == ["unreachable"]
    # A tenant's allow does not shadow a global policy.
    assert problems(draft, others=others, with_others=True, tenant_id=None) == []
