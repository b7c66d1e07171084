"""Trying policies without enforcing them: simulation of one sample request, and the impact
preview of a draft over the latest logged requests.

Both compile the policies in hand (the enabled ones of the database, with drafts in place
of or beside them) with the same evaluator the gateway runs, so what they report is what
the gateway would do. Cold paths: a few queries each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC
from types import SimpleNamespace
from typing import Any

from django.core.exceptions import ValidationError

from apps.policies import selectors
from apps.policies.detection import ENTITY_TYPES
from apps.policies.engine import (
    CLASSIFICATIONS,
    ENDPOINTS,
    Decision,
    Evaluator,
    Facts,
    PolicySpec,
    compile_policies,
)
from apps.policies.validation import errors_by_field, has_errors, validate_policy

MAX_REPLAY = 10_000
LISTED_CHANGES = 200
FACT_KEYS = frozenset(
    {
        "tenant",
        "project",
        "key",
        "end_user",
        "role",
        "groups",
        "endpoint",
        "classification",
        "entities",
        "tokens",
        "cost_usd",
        "hour",
        "weekday",
        "model",
        "hints",
    }
)


# --- facts -------------------------------------------------------------------------------


def facts_from(data: Mapping[str, Any], *, tenant: Any = None) -> Facts:
    """A sample request (the attributes' short names, as in docs/policies.md) as Facts;
    a ValidationError names the first bad field."""
    unknown = set(data) - FACT_KEYS
    if unknown:
        raise ValidationError(
            {sorted(unknown)[0]: f"Unknown attribute; expected {sorted(FACT_KEYS)}."}
        )

    def text(name: str, default: str = "") -> str:
        value = data.get(name, default)
        if not isinstance(value, str):
            raise ValidationError({name: "Must be a string."})
        return value

    def strings(name: str, allowed: Iterable[str] | None = None) -> frozenset[str]:
        value = data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValidationError({name: "Must be a list of strings."})
        if allowed is not None and (bad := set(value) - set(allowed)):
            raise ValidationError({name: f"Unknown: {', '.join(sorted(bad))}."})
        return frozenset(value)

    def number(name: str, low: float, high: float, *, whole: bool) -> Any:
        value = data.get(name, 0)
        kinds = int if whole else int | float
        if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
            raise ValidationError({name: f"Must be a number between {low} and {high}."})
        return value

    classification = text("classification", "internal")
    if classification not in CLASSIFICATIONS:
        raise ValidationError({"classification": f"One of {', '.join(CLASSIFICATIONS)}."})
    endpoint = text("endpoint", "chat")
    if endpoint not in ENDPOINTS:
        raise ValidationError({"endpoint": f"One of {', '.join(ENDPOINTS)}."})
    hints = data.get("hints", {})
    if not isinstance(hints, dict):
        raise ValidationError({"hints": "Must be an object."})
    return Facts(
        tenant=tenant.slug if tenant is not None else text("tenant"),
        tenant_id=str(tenant.pk) if tenant is not None else "",
        project=text("project"),
        key=text("key"),
        end_user=text("end_user"),
        role=text("role"),
        groups=strings("groups"),
        endpoint=endpoint,
        classification=classification,
        entities=strings("entities", ENTITY_TYPES),
        tokens=number("tokens", 0, 10**9, whole=True),
        cost_usd=float(number("cost_usd", 0, 10**6, whole=False)),
        hour=number("hour", 0, 23, whole=True),
        weekday=number("weekday", 0, 6, whole=True),
        model=text("model"),
        hints=hints,
    )


_ENDPOINT_OF = (
    ("embeddings", "embeddings"),
    ("messages", "messages"),
    ("realtime", "realtime"),
    ("responses", "responses"),
    ("chat", "chat"),
    ("ask", "ask"),
    ("route", "ask"),
)


def logged_endpoint(name: str) -> str:
    """The policy endpoint of a request-log endpoint (`chat.completions` -> `chat`)."""
    for part, endpoint in _ENDPOINT_OF:
        if part in (name or ""):
            return endpoint
    return "chat"


def facts_of_log(row: Any) -> Facts:
    """What the gateway knew of a logged request before routing, as far as the log says
    (`classification` and `redactions` where the log has them, else the defaults)."""
    created = row.created_at.astimezone(UTC)
    key = row.api_key if row.api_key_id else None
    tenant = row.tenant if row.tenant_id else None
    redactions = getattr(row, "redactions", None) or {}
    entities = frozenset(k for k in redactions if isinstance(k, str) and k in ENTITY_TYPES)
    classification = getattr(row, "classification", "") or (
        getattr(tenant, "data_classification", "") if tenant else ""
    )
    return Facts(
        tenant=tenant.slug if tenant else "",
        tenant_id=str(row.tenant_id) if row.tenant_id else "",
        project=str(key.project_id) if key is not None and key.project_id else "",
        key=str(row.api_key_id) if row.api_key_id else "",
        end_user=row.end_user or "",
        endpoint=logged_endpoint(row.endpoint),
        classification=classification if classification in CLASSIFICATIONS else "internal",
        entities=entities,
        tokens=int(row.input_tokens or 0),
        cost_usd=float(row.cost_usd or 0),
        hour=created.hour,
        weekday=created.weekday(),
        model=row.requested_model or row.model or "",
    )


# --- policies in hand --------------------------------------------------------------------


def draft_spec(draft: Mapping[str, Any], *, tenant: Any = None, index: int = 0) -> PolicySpec:
    """A validated draft as a spec (a ValidationError lists its errors). A draft takes the
    place of the stored policy of its tenant with its name."""
    problems = validate_policy(draft, with_others=False)
    if has_errors(problems):
        raise ValidationError(errors_by_field(problems))
    from apps.policies.services import with_rule_ids

    spec = PolicySpec(
        name=str(draft.get("name") or f"draft-{index + 1}"),
        rules=with_rule_ids(list(draft.get("rules") or [])),
        id=-(index + 1),
        tenant_id=str(tenant.pk) if tenant is not None else None,
        tenant=tenant.slug if tenant is not None else "",
        priority=int(draft.get("priority") or 0),
        mode=draft.get("mode") or "enforce",
        enabled=bool(draft.get("enabled", True)),
        scope=dict(draft.get("scope") or {}),
    )
    projects, keys = selectors._named([spec])
    if not projects and not keys:
        return spec
    return selectors.with_ids(spec, selectors._aliases(projects, keys))


def _stored(tenant: Any, replaced: set[tuple[str | None, str]]) -> list[PolicySpec]:
    tenant_id = str(tenant.pk) if tenant is not None else None
    return [
        spec
        for spec in selectors.policy_specs(enabled_only=True)
        if (spec.tenant_id is None or spec.tenant_id == tenant_id)
        and (spec.tenant_id, spec.name) not in replaced
    ]


def evaluator_with(drafts: list[PolicySpec], tenant: Any) -> Evaluator:
    replaced = {(d.tenant_id, d.name) for d in drafts}
    return compile_policies([*_stored(tenant, replaced), *drafts])


def _deployments() -> list[Any]:
    """The enabled deployments, shaped like the snapshot's DeploymentInfo as far as the
    policies read it."""
    from apps.providers.models import ModelDeployment

    rows = ModelDeployment.objects.select_related("provider").filter(
        enabled=True, provider__enabled=True
    )
    return [
        SimpleNamespace(
            id=str(dep.pk),
            public_name=dep.public_name,
            provider_name=dep.provider.name,
            region=dep.region or dep.provider.region,
            capabilities=frozenset(dep.capabilities or ()),
            prices=SimpleNamespace(input=dep.input_price, output=dep.output_price),
            target=SimpleNamespace(kind=dep.provider.kind),
        )
        for dep in rows
    ]


def simulate(
    *, request: Mapping[str, Any], tenant: Any = None, drafts: Iterable[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """The decision for one sample request: matched rules and why, what log-only policies
    would have done, and which deployments the policies would keep it from."""
    facts = facts_from(request, tenant=tenant)
    specs = [draft_spec(d, tenant=tenant, index=i) for i, d in enumerate(drafts)]
    evaluator = evaluator_with(specs, tenant)
    decision = evaluator.evaluate(facts)
    return {
        "decision": decision.to_dict(),
        "outcome": decision.outcome,
        "denied": decision.denied.to_dict() if decision.denied else None,
        "matched": [m.to_dict() for m in decision.matched],
        "logged": [m.to_dict() for m in decision.logged],
        "evaluated": [
            {"name": p.name, "tenant": p.tenant or None, "priority": p.priority, "mode": p.mode}
            for p in evaluator.policies_for(facts)
        ],
        "deployments": _deployment_outcomes(decision),
    }


def _deployment_outcomes(decision: Decision) -> list[dict[str, Any]]:
    if decision.denied is not None:
        return []
    if not (decision.routes or decision.has_resource_rules):
        return []
    out = []
    for dep in _deployments():
        reason = decision.deployment_reason(dep)
        out.append(
            {
                "model": dep.public_name,
                "provider": dep.provider_name,
                "region": dep.region,
                "allowed": reason is None,
                "reason": reason,
            }
        )
    return out


# --- impact preview ----------------------------------------------------------------------


def _summary(decision: Decision) -> dict[str, Any]:
    out: dict[str, Any] = {"outcome": decision.outcome}
    if decision.denied is not None:
        out["policy"] = decision.denied.policy
        out["rule"] = decision.denied.rule
    rules = sorted({f"{m.policy}/{m.rule}" for m in decision.matched})
    if rules:
        out["rules"] = rules
    return out


def impact(*, draft: Mapping[str, Any], tenant: Any = None, last: int = 1000) -> dict[str, Any]:
    """Replay the latest `last` logged requests of the draft's scope (its tenant's, or every
    tenant's for a global draft) against the enabled policies without and with the draft;
    report how many would change outcome, and which."""
    if isinstance(last, bool) or not isinstance(last, int) or not 1 <= last <= MAX_REPLAY:
        raise ValidationError({"last": f"A whole number from 1 to {MAX_REPLAY}."})
    spec = draft_spec(draft, tenant=tenant)
    before = evaluator_with([], tenant)
    replaced = {(spec.tenant_id, spec.name)}
    after = compile_policies([*_stored(tenant, replaced), spec])
    rows = selectors.recent_requests(tenant_id=tenant.pk if tenant is not None else None, last=last)
    totals = {"before": Counter(), "after": Counter()}
    changed = []
    for row in rows:
        facts = facts_of_log(row)
        was, now = _summary(before.evaluate(facts)), _summary(after.evaluate(facts))
        totals["before"][was["outcome"]] += 1
        totals["after"][now["outcome"]] += 1
        if was != now:
            changed.append(
                {
                    "request_id": row.request_id,
                    "created_at": row.created_at.isoformat(),
                    "tenant": facts.tenant,
                    "model": facts.model,
                    "before": was,
                    "after": now,
                }
            )
    outcomes = ("allowed", "constrained", "denied")
    return {
        "policy": spec.name,
        "replayed": len(rows),
        "changed": len(changed),
        "before": {o: totals["before"][o] for o in outcomes},
        "after": {o: totals["after"][o] for o in outcomes},
        "requests": changed[:LISTED_CHANGES],
        "truncated": len(changed) > LISTED_CHANGES,
    }
