"""The policy evaluator: enabled policies compiled once per configuration snapshot.

Pure Python, no database access when evaluating. `compile_policies` turns policy specs
into an `Evaluator`; `load_evaluator` reads the enabled policies from the database (the
snapshot build, a cold path). docs/policies.md documents the attributes, operators,
effects and the evaluation order implemented here:

1. The policies in scope of a request are the global ones and those of its tenant whose
   scope (projects, keys, end-user groups, classifications) covers the request, walked by
   priority (higher first), a tenant's before a global one at equal priority, then by name.
   Rules are walked in their listed order.
2. An enforced `allow` rule that matches ends the walk for lower-priority policies of the
   same owner (the same tenant, or the global ones): it carves an exception out of the
   general rules below it. Policies of the same priority are still walked, and a tenant's
   allow never skips a global policy.
3. Deny overrides: any enforced `deny` that matches denies the request, whatever the
   priority of the allows that also matched. The first one in walk order is reported.
4. Every other matching effect combines, the strictest winning: redaction modes per entity
   type (block > remove > hash > mask), route constraints (regions intersected, local-only
   if any says so, excluded providers united), the lowest cost cap, the shortest retention,
   the strongest injection guard, the widest egress guard.
5. Rules with `resource.*` conditions decide about deployments, not the request: when their
   request conditions hold, a `deny` removes each deployment its resource conditions match
   (`Decision.deployment_reason`, the routing engine's policy hook).
6. Log-only policies never change the decision: every rule of theirs that matches is
   reported in `Decision.logged`, as what they would have done.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# --- vocabulary --------------------------------------------------------------------------

CLASSIFICATIONS = ("public", "internal", "confidential", "restricted")
CLASSIFICATION_RANK = MappingProxyType({name: i for i, name in enumerate(CLASSIFICATIONS)})
ENTITY_TYPES = ("EMAIL", "PHONE", "CARD", "IBAN", "SSN", "IP", "SECRET", "PERSON", "ADDRESS")
ENDPOINTS = ("chat", "messages", "embeddings", "responses", "realtime")
REDACT_MODES = ("mask", "hash", "remove", "block")
REDACT_STRENGTH = MappingProxyType({m: i for i, m in enumerate(REDACT_MODES)})
GUARD_ACTIONS = ("allow", "flag", "block")
GUARD_STRENGTH = MappingProxyType({a: i for i, a in enumerate(GUARD_ACTIONS)})
EGRESS_MODES = ("mask", "block")
EFFECTS = ("allow", "deny", "redact", "route", "cap_cost", "retention", "guard")
MODES = ("enforce", "log_only")
# Provider kinds whose models run on the gateway's own hardware.
LOCAL_KINDS = frozenset({"ollama", "simulator"})
MAX_PATTERN = 200

# Attribute types: str, set (of strings), int, float, bool, class (an ordered
# classification), any (a hint: whatever the caller sent).
ATTRIBUTES: Mapping[str, str] = MappingProxyType(
    {
        "subject.tenant": "str",
        "subject.project": "str",
        "subject.key": "str",
        "subject.end_user": "str",
        "subject.role": "str",
        "subject.groups": "set",
        "resource.model": "str",
        "resource.provider": "str",
        "resource.region": "str",
        "resource.capabilities": "set",
        "resource.local": "bool",
        "resource.input_price": "float",
        "resource.output_price": "float",
        "request.endpoint": "str",
        "request.classification": "class",
        "request.entities": "set",
        "request.tokens": "int",
        "request.cost_usd": "float",
        "request.hour": "int",
        "request.weekday": "int",
        "request.model": "str",
    }
)
HINT_PREFIX = "request.hints."
# Operators each attribute type accepts.
OPERATORS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "str": frozenset({"eq", "ne", "in", "not_in", "matches", "exists"}),
        "set": frozenset({"contains", "contains_any", "exists"}),
        "int": frozenset(
            {"eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "exists"}
        ),
        "float": frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "between", "exists"}),
        "bool": frozenset({"eq", "ne", "exists"}),
        "class": frozenset(
            {"eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "exists"}
        ),
        "any": frozenset(
            {"eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "matches", "exists"}
        ),
    }
)
ALL_OPERATORS = frozenset().union(*OPERATORS.values()) | {"contains", "contains_any"}
# Attributes whose `between` may wrap around (22..6 is the night).
CYCLIC = MappingProxyType({"request.hour": 24, "request.weekday": 7})


def attribute_type(attr: str) -> str | None:
    if attr.startswith(HINT_PREFIX):
        name = attr[len(HINT_PREFIX) :]
        return "any" if name and name.replace("_", "").replace("-", "").isalnum() else None
    return ATTRIBUTES.get(attr)


def is_resource(attr: str) -> bool:
    return attr.startswith("resource.")


def is_local(dep: Any) -> bool:
    """resource.local: a deployment served by a local runtime (Ollama, the built-in
    simulator), or one whose capabilities say `local`."""
    target = getattr(dep, "target", None)
    return getattr(target, "kind", "") in LOCAL_KINDS or "local" in dep.capabilities


def region_matches(region: str, wanted: Iterable[str]) -> bool:
    """`eu` admits `eu`, `eu-west` and `eu-west-1` (the routing engine's rule)."""
    region = (region or "").lower()
    if not region:
        return False
    return any(region == w or region.startswith(w + "-") for w in wanted)


NO_HINTS: Mapping[str, Any] = MappingProxyType({})

# --- specs and results -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """A policy as the evaluator compiles it (a model row, a file item or a draft).

    `rules` are already validated (apps.policies.validation). Project and key names in the
    scope and in subject conditions may list slugs, names and ids side by side.
    """

    name: str
    rules: tuple[Mapping[str, Any], ...] | list
    id: int = 0
    tenant_id: str | None = None  # None: a global policy
    tenant: str = ""  # the tenant's slug
    priority: int = 0
    mode: str = "enforce"
    enabled: bool = True
    scope: Mapping[str, Any] = field(default_factory=dict)
    version: int = 1


@dataclass(frozen=True, slots=True)
class Facts:
    """What is known of a request before routing."""

    tenant: str = ""
    tenant_id: str = ""
    project: str = ""
    key: str = ""
    end_user: str = ""
    role: str = ""
    groups: frozenset[str] = frozenset()
    endpoint: str = "chat"
    classification: str = "internal"
    entities: frozenset[str] = frozenset()
    tokens: int = 0
    cost_usd: float = 0.0
    hour: int = 0
    weekday: int = 0
    model: str = ""
    hints: Mapping[str, Any] = field(default_factory=lambda: NO_HINTS)


@dataclass(frozen=True, slots=True)
class Match:
    """One rule that matched: which policy, which rule, its effect and why."""

    policy: str
    policy_id: int
    rule: str
    effect: str
    log_only: bool
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "policy_id": self.policy_id,
            "rule": self.rule,
            "effect": self.effect,
            "log_only": self.log_only,
            "why": self.why,
        }


@dataclass(frozen=True, slots=True)
class _RouteRule:
    match: Match
    regions: tuple[str, ...] | None
    local_only: bool
    exclude: frozenset[str]


@dataclass(frozen=True, slots=True)
class _ResourceRule:
    match: Match
    test: Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policies in scope decided for one request (see the module docstring)."""

    denied: Match | None = None
    redact: Mapping[str, str] = field(default_factory=lambda: NO_HINTS)
    regions: tuple[str, ...] | None = None
    local_only: bool = False
    exclude_providers: frozenset[str] = frozenset()
    max_cost_usd: float | None = None
    retention_days: int | None = None
    injection: tuple[float, str] | None = None
    egress: tuple[frozenset[str], str] | None = None
    matched: tuple[Match, ...] = ()
    logged: tuple[Match, ...] = ()
    routes: tuple[_RouteRule, ...] = ()
    resource_rules: tuple[_ResourceRule, ...] = ()

    @property
    def has_resource_rules(self) -> bool:
        return bool(self.resource_rules)

    @property
    def outcome(self) -> str:
        """A one-word summary: denied, constrained (anything but a plain allow), allowed."""
        if self.denied is not None:
            return "denied"
        if (
            self.redact
            or self.routes
            or self.resource_rules
            or self.max_cost_usd is not None
            or self.retention_days is not None
            or self.injection is not None
            or self.egress is not None
        ):
            return "constrained"
        return "allowed"

    def deployment_reason(self, dep: Any) -> str | None:
        """Why the policies keep this request away from `dep` (naming the policy), or
        None. The routing engine groups deployments by this text, so it does not name
        the deployment."""
        for route in self.routes:
            label = f"policy '{route.match.policy}'"
            if route.local_only and not is_local(dep):
                return f"{label} allows local models only"
            if route.exclude and dep.provider_name in route.exclude:
                return f"{label} excludes provider {dep.provider_name}"
            if route.regions is not None and not region_matches(dep.region, route.regions):
                allowed = ", ".join(route.regions) or "(none)"
                return f"{label} allows regions {allowed} only"
        for rule in self.resource_rules:
            if rule.test(dep):
                return f"policy '{rule.match.policy}' rule '{rule.match.rule}': {rule.match.why}"
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary for the request log, the audit event and simulations. A
        denial names its policy under `name` and its message under `reason` (what the
        compliance report groups denials by)."""
        out: dict[str, Any] = {"outcome": self.outcome}
        if self.denied is not None:
            out["name"] = self.denied.policy
            out["id"] = self.denied.policy_id
            out["reason"] = self.denied.why or self.denied.policy
            out["denied"] = self.denied.to_dict()
        if self.redact:
            out["redact"] = dict(sorted(self.redact.items()))
        if self.regions is not None:
            out["regions"] = list(self.regions)
        if self.local_only:
            out["local_only"] = True
        if self.exclude_providers:
            out["exclude_providers"] = sorted(self.exclude_providers)
        if self.max_cost_usd is not None:
            out["max_cost_usd"] = self.max_cost_usd
        if self.retention_days is not None:
            out["retention_days"] = self.retention_days
        if self.injection is not None:
            out["injection"] = {"threshold": self.injection[0], "action": self.injection[1]}
        if self.egress is not None:
            out["egress"] = {"entities": sorted(self.egress[0]), "mode": self.egress[1]}
        if self.resource_rules:
            out["deployment_rules"] = [r.match.to_dict() for r in self.resource_rules]
        out["matched"] = [m.to_dict() for m in self.matched]
        if self.logged:
            out["logged"] = [m.to_dict() for m in self.logged]
        return out


ALLOW = Decision()


# --- compiling conditions ----------------------------------------------------------------

# How each attribute is read: from the request's Facts (`f`) or a deployment (`d`).
_READ = {
    "subject.tenant": "f.tenant",
    "subject.project": "f.project",
    "subject.key": "f.key",
    "subject.end_user": "f.end_user",
    "subject.role": "f.role",
    "subject.groups": "f.groups",
    "request.endpoint": "f.endpoint",
    "request.classification": "f.classification",
    "request.entities": "f.entities",
    "request.tokens": "f.tokens",
    "request.cost_usd": "f.cost_usd",
    "request.hour": "f.hour",
    "request.weekday": "f.weekday",
    "request.model": "f.model",
    "resource.model": "d.public_name",
    "resource.provider": "d.provider_name",
    "resource.region": "d.region",
    "resource.capabilities": "d.capabilities",
    "resource.local": "_local(d)",
    "resource.input_price": "float(d.prices.input)",
    "resource.output_price": "float(d.prices.output)",
}
_ORDERED = frozenset({"gt", "gte", "lt", "lte", "between"})


def _hint_test(op: str, value: Any) -> Callable[[Any], bool]:
    """A hint's test: hints are whatever the caller sent, so a value of the wrong type
    simply does not match."""
    if op == "exists":
        return (lambda v: v is not None) if value else (lambda v: v is None)
    if op == "matches":
        pattern = re.compile(value)
        return lambda v: isinstance(v, str) and pattern.search(v) is not None
    if op in ("in", "not_in"):
        values = tuple(value)
        inside = (lambda v: v in values) if op == "in" else (lambda v: v not in values)

        def member(v: Any) -> bool:
            try:
                return inside(v)
            except TypeError:
                return op == "not_in"

        return member
    compare: Callable[[Any], bool] = {
        "eq": lambda v: v == value,
        "ne": lambda v: v != value,
        "gt": lambda v: v > value,
        "gte": lambda v: v >= value,
        "lt": lambda v: v < value,
        "lte": lambda v: v <= value,
        "between": lambda v: value[0] <= v <= value[1],
    }[op]

    def safe(v: Any) -> bool:
        if op in _ORDERED and (isinstance(v, bool) or not isinstance(v, int | float)):
            return False
        try:
            return bool(compare(v))
        except TypeError:
            return op == "ne"

    return safe


class _Names:
    """Constants bound to names in generated code (values are never spliced into it)."""

    def __init__(self) -> None:
        self.env: dict[str, Any] = {"_local": is_local, "_rank": CLASSIFICATION_RANK}

    def bind(self, value: Any) -> str:
        name = f"_c{len(self.env)}"
        self.env[name] = value
        return name


def condition_expr(cond: Mapping[str, Any], names: _Names, x: str | None = None) -> str:
    """A Python expression testing one (validated) condition. `x`, when given, is the
    expression of the attribute's value; otherwise it is read from `f` or `d`."""
    attr, op, value = cond["attr"], cond["op"], cond.get("value")
    kind = attribute_type(attr)
    if kind == "any":
        name = attr[len(HINT_PREFIX) :]
        read = x or f"f.hints.get({names.bind(name)})"
        return f"{names.bind(_hint_test(op, value))}({read})"
    read = x or _READ[attr]
    if kind == "class" and op in _ORDERED:
        read = f"_rank.get({read}, -1)"
        value = (
            [CLASSIFICATION_RANK[v] for v in value]
            if isinstance(value, list)
            else CLASSIFICATION_RANK[value]
        )
    if op == "exists":
        return f"bool({read})" if value else f"(not {read})"
    if op in ("eq", "ne"):
        return f"({read} {'==' if op == 'eq' else '!='} {names.bind(value)})"
    if op in ("in", "not_in"):
        members = frozenset(value)
        if kind == "str" and attr in ("resource.region", "resource.provider"):
            members = frozenset(str(v).lower() for v in value)
            read = f"{read}.lower()"
        return f"({read} {'in' if op == 'in' else 'not in'} {names.bind(members)})"
    if op == "contains":
        if isinstance(value, list):
            return f"({names.bind(frozenset(value))} <= {read})"
        return f"({names.bind(value)} in {read})"
    if op == "contains_any":
        return f"(not {names.bind(frozenset(value))}.isdisjoint({read}))"
    if op in ("gt", "gte", "lt", "lte"):
        symbol = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
        return f"({read} {symbol} {names.bind(value)})"
    if op == "between":
        low, high = names.bind(value[0]), names.bind(value[1])
        if attr in CYCLIC and value[0] > value[1]:
            return f"({read} >= {low} or {read} <= {high})"
        return f"({low} <= {read} <= {high})"
    if op == "matches":
        return f"({names.bind(re.compile(value))}.search({read}) is not None)"
    raise ValueError(f"unknown operator {op!r}")


def _function(exprs: list[str], arg: str, names: _Names) -> Callable[[Any], bool] | None:
    """One function testing every expression (short-circuiting), or None for none."""
    if not exprs:
        return None
    source = f"lambda {arg}: " + " and ".join(exprs)
    return eval(source, names.env)  # noqa: S307 - source built from the registry only


def value_test(cond: Mapping[str, Any]) -> Callable[[Any], bool]:
    """The condition as a test of one attribute value (for validation's reasoning)."""
    names = _Names()
    return eval("lambda x: " + condition_expr(cond, names, x="x"), names.env)  # noqa: S307


def describe(cond: Mapping[str, Any]) -> str:
    value = cond.get("value")
    if isinstance(value, list):
        value = "[" + ", ".join(str(v) for v in value) + "]"
    if cond["op"] == "exists":
        return f"{cond['attr']} {'exists' if value else 'is absent'}"
    return f"{cond['attr']} {cond['op']} {value}"


# --- compiling policies ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rule:
    match: Match
    test: Callable[[Facts], bool] | None  # None: no request conditions
    resource: Callable[[Any], bool] | None  # a deny over resource attributes
    effect: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Policy:
    name: str
    owner: str  # the tenant id, or "" for a global policy
    priority: int
    log_only: bool
    scope: Callable[[Facts], bool] | None
    rules: tuple[_Rule, ...]
    order: tuple


def _scope_test(scope: Mapping[str, Any], names: _Names) -> Callable[[Facts], bool] | None:
    exprs = []
    for dimension, read in (
        ("projects", "f.project"),
        ("keys", "f.key"),
        ("classifications", "f.classification"),
    ):
        values = scope.get(dimension) or ()
        if values:
            exprs.append(f"({read} in {names.bind(frozenset(str(v) for v in values))})")
    groups = scope.get("groups") or ()
    if groups:
        exprs.append(f"(not {names.bind(frozenset(groups))}.isdisjoint(f.groups))")
    return _function(exprs, "f", names)


def _compile_rule(spec: PolicySpec, index: int, rule: Mapping[str, Any], names: _Names) -> _Rule:
    effect = dict(rule.get("effect") or {"type": "allow"})
    when = list(rule.get("when") or ())
    request = [c for c in when if not is_resource(c["attr"])]
    resource = [c for c in when if is_resource(c["attr"])]
    why = effect.get("message") if effect["type"] == "deny" else ""
    described = " and ".join(describe(c) for c in when) or "always"
    match = Match(
        policy=spec.name,
        policy_id=spec.id,
        rule=str(rule.get("id") or f"rule-{index + 1}"),
        effect=effect["type"],
        log_only=spec.mode == "log_only",
        why=why or described,
    )
    return _Rule(
        match=match,
        test=_function([condition_expr(c, names) for c in request], "f", names),
        resource=_function([condition_expr(c, names) for c in resource], "d", names),
        effect=effect,
    )


def _compile_policy(spec: PolicySpec, names: _Names) -> _Policy:
    owner = spec.tenant_id or ""
    return _Policy(
        name=spec.name,
        owner=owner,
        priority=int(spec.priority),
        log_only=spec.mode == "log_only",
        scope=_scope_test(spec.scope or {}, names),
        rules=tuple(_compile_rule(spec, i, r, names) for i, r in enumerate(spec.rules)),
        # Higher priority first; a tenant's before a global one; then by name and id.
        order=(-int(spec.priority), 0 if owner else 1, spec.name, spec.id),
    )


class Evaluator:
    """The compiled policies, indexed by tenant (each tenant's list holds the global
    policies and its own, in walk order)."""

    __slots__ = ("_global", "_by_tenant", "_count")

    def __init__(self, policies: Iterable[_Policy] = ()) -> None:
        ordered = sorted(policies, key=lambda p: p.order)
        self._count = len(ordered)
        self._global = tuple(p for p in ordered if not p.owner)
        tenants: dict[str, list[_Policy]] = {}
        for p in ordered:
            if p.owner:
                tenants.setdefault(p.owner, [])
        for owner in tenants:
            tenants[owner] = [p for p in ordered if not p.owner or p.owner == owner]
        self._by_tenant: dict[str, tuple[_Policy, ...]] = {k: tuple(v) for k, v in tenants.items()}

    def __len__(self) -> int:
        return self._count

    def alias(self, slug: str, tenant_id: str) -> None:
        """Let requests naming the tenant by slug find its policies too."""
        if tenant_id in self._by_tenant:
            self._by_tenant[slug] = self._by_tenant[tenant_id]

    def policies_for(self, facts: Facts) -> tuple[_Policy, ...]:
        by_tenant = self._by_tenant
        return (
            by_tenant.get(facts.tenant_id) or by_tenant.get(facts.tenant) or self._global
            if by_tenant
            else self._global
        )

    def evaluate(self, facts: Facts) -> Decision:
        policies = self.policies_for(facts)
        if not policies:
            return ALLOW
        matched: list[_Rule] = []
        logged: list[Match] = []
        armed: list[_Rule] = []
        stop: dict[str, int] | None = None
        for policy in policies:
            if stop is not None:
                floor = stop.get(policy.owner)
                if floor is not None and policy.priority < floor and not policy.log_only:
                    continue
            scope = policy.scope
            if scope is not None and not scope(facts):
                continue
            for rule in policy.rules:
                test = rule.test
                if test is not None and not test(facts):
                    continue
                if policy.log_only:
                    logged.append(rule.match)
                elif rule.resource is not None:
                    armed.append(rule)
                else:
                    matched.append(rule)
                    if rule.match.effect == "allow":
                        if stop is None:
                            stop = {}
                        stop.setdefault(policy.owner, policy.priority)
        if not matched and not logged and not armed:
            return ALLOW
        return _decide(matched, logged, armed)


def _intersect(current: tuple[str, ...] | None, regions: tuple[str, ...]) -> tuple[str, ...]:
    """Regions inside both lists (a region or region prefix such as `eu` on either side)."""
    if current is None:
        return regions
    kept = [r for r in current if region_matches(r, regions)]
    kept += [r for r in regions if region_matches(r, current) and r not in kept]
    return tuple(kept)


def _decide(matched: list[_Rule], logged: list[Match], armed: list[_Rule]) -> Decision:
    denied: Match | None = None
    redact: dict[str, str] = {}
    regions: tuple[str, ...] | None = None
    local_only = False
    exclude: set[str] = set()
    max_cost: float | None = None
    retention: int | None = None
    injection: tuple[float, str] | None = None
    egress_types: set[str] = set()
    egress_mode: str | None = None
    routes: list[_RouteRule] = []
    for rule in matched:
        effect = rule.effect
        kind = effect["type"]
        if kind == "deny":
            if denied is None:
                denied = rule.match
        elif kind == "redact":
            mode = effect["mode"]
            for entity in effect["entities"]:
                known = redact.get(entity)
                if known is None or REDACT_STRENGTH[mode] > REDACT_STRENGTH[known]:
                    redact[entity] = mode
        elif kind == "route":
            wanted = tuple(r.lower() for r in effect["regions"]) if "regions" in effect else None
            if wanted is not None:
                regions = _intersect(regions, wanted)
            local_only = local_only or bool(effect.get("local_only"))
            excluded = frozenset(effect.get("exclude_providers") or ())
            exclude |= excluded
            routes.append(_RouteRule(rule.match, wanted, bool(effect.get("local_only")), excluded))
        elif kind == "cap_cost":
            cap = float(effect["max_usd"])
            max_cost = cap if max_cost is None else min(max_cost, cap)
        elif kind == "retention":
            days = int(effect["days"])
            retention = days if retention is None else min(retention, days)
        elif kind == "guard":
            guard = effect.get("injection")
            if guard:
                pair = (float(guard["threshold"]), guard["action"])
                if (
                    injection is None
                    or GUARD_STRENGTH[pair[1]] > GUARD_STRENGTH[injection[1]]
                    or (pair[1] == injection[1] and pair[0] < injection[0])
                ):
                    injection = pair
            out = effect.get("egress")
            if out:
                egress_types |= set(out["entities"])
                if egress_mode is None or out["mode"] == "block":
                    egress_mode = out["mode"]
    star = redact.get("*")
    if star is not None:
        for entity, mode in redact.items():
            if REDACT_STRENGTH[star] > REDACT_STRENGTH[mode]:
                redact[entity] = star
    return Decision(
        denied=denied,
        redact=MappingProxyType(redact) if redact else ALLOW.redact,
        regions=regions,
        local_only=local_only,
        exclude_providers=frozenset(exclude),
        max_cost_usd=max_cost,
        retention_days=retention,
        injection=injection,
        egress=(frozenset(egress_types), egress_mode) if egress_mode else None,
        matched=tuple(r.match for r in matched),
        logged=tuple(logged),
        routes=tuple(routes),
        resource_rules=tuple(_ResourceRule(r.match, r.resource) for r in armed),
    )


EMPTY = Evaluator()


def compile_policies(policies: Iterable[PolicySpec]) -> Evaluator:
    """The enabled policies among `policies`, compiled (specs already validated)."""
    names = _Names()
    enabled = [p for p in policies if p.enabled]
    if not enabled:
        return EMPTY
    evaluator = Evaluator(_compile_policy(p, names) for p in enabled)
    for spec in enabled:
        if spec.tenant_id and spec.tenant:
            evaluator.alias(spec.tenant, spec.tenant_id)
    return evaluator


def load_evaluator() -> Evaluator:
    """The enabled policies of the database, compiled (the snapshot build; a cold path).

    Projects and keys named by slug or key name, in scopes and subject conditions, are
    compiled as their ids too, since requests carry ids.
    """
    from apps.policies.selectors import policy_specs

    return compile_policies(policy_specs(enabled_only=True))
